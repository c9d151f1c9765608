/** Ctrl-C as an AbortSignal for commands that stop cleanly after the current step. */

/** Runs `fn` with a signal that Ctrl-C aborts (printing `message` to stderr); the handler is removed after. */
export async function withSigintAbort<T>(
  message: string,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write(`\nCtrl-C: ${message}\n`);
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
