/** Shared CLI plumbing: turning errors into `error: ...\n  hint: ...` and an exit code. */
import { CommanderError } from 'commander';
import { RlpkdError } from '../errors';

/** Prints an error the way every rlpkd command does and returns the exit code to use. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (err instanceof RlpkdError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  process.stderr.write(`error: ${e?.message ?? String(err)}\n`);
  if (process.env.RLPKD_DEBUG && e?.stack) process.stderr.write(`${e.stack}\n`);
  else
    process.stderr.write(
      '  hint: this looks like a bug in rlpkd; rerun with RLPKD_DEBUG=1 for the stack trace\n',
    );
  return 1;
}

/** Writes one JSON document to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
