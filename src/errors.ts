/**
 * One error type for everything the toolkit reports to a user. `hint` says what to do about it; the CLI
 * prints `error: <message>\n  hint: <hint>` and exits 1 (2 for usage errors).
 */
export class RlpkdError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(message: string, options: { hint?: string; cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RlpkdError';
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A file that is missing, unreadable, or not what it claims to be. */
export class InputFileError extends RlpkdError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.name = 'InputFileError';
  }
}

/** A graph that breaks a structural rule (dangling input, duplicate output, missing opset, ...). */
export class GraphError extends RlpkdError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options);
    this.name = 'GraphError';
  }
}

/** Throws a GraphError when `condition` is false; the message is built lazily. */
export function graphAssert(condition: unknown, message: () => string, hint?: string): asserts condition {
  if (!condition) throw new GraphError(message(), hint === undefined ? {} : { hint });
}
