/** `rlpkd worker`: serves the ablation jobs of a BullMQ queue until Ctrl-C or SIGTERM. */
import type { Command } from 'commander';
import { startQueueWorker } from '../../sweep/job-queue';
import { positiveInt, positiveNumber } from '../option-parsers';

interface WorkerCliOptions {
  queue: string;
  concurrency: number;
  lockSeconds: number;
  stalledSeconds: number;
}

/** `rlpkd worker --queue redis://HOST:PORT [--concurrency N] [--lock-seconds S] [--stalled-seconds S]`. */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(
      'pull `rlpkd ablate --queue` jobs from a BullMQ queue and run them (any number of workers sharing the ' +
        "ablation folder); a killed worker's job is retried from its last checkpoint",
    )
    .requiredOption('--queue <url>', 'the queue: redis://HOST:PORT (as given to rlpkd ablate)')
    .option('--concurrency <n>', 'jobs run at once by this worker', positiveInt, 1)
    .option(
      '--lock-seconds <s>',
      "a job's lock; when this worker dies, its job goes back to the queue after about this long",
      positiveNumber,
      60,
    )
    .option('--stalled-seconds <s>', 'how often to look for jobs of dead workers', positiveNumber, 30)
    .action(async (opts: WorkerCliOptions) => {
      const say = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      const worker = await startQueueWorker(opts.queue, {
        concurrency: opts.concurrency,
        lockDurationMs: opts.lockSeconds * 1000,
        stalledIntervalMs: opts.stalledSeconds * 1000,
        onEvent: say,
      });
      say(`worker ready on ${opts.queue}`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          say(`${signal}: closing (a running job is abandoned and retried by another worker)`);
          void worker.close(true).then(resolve, resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
