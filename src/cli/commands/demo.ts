/** `rlpkd demo`: a thin layer over startDemo (the run's bundle + the demo page on a local server). */
import type { Command } from 'commander';
import { startDemo } from '../../deploy/demo-server';
import { integer } from '../option-parsers';

interface DemoCliOptions {
  run: string;
  port: number;
  bundle?: string;
}

/** `rlpkd demo --run RUN [--port P] [--bundle DIR]`: serves until interrupted. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      "serve an offline page that runs a run's policy bundle in the browser (exported on first use)",
    )
    .requiredOption(
      '--run <dir>',
      'run directory created by `rlpkd train` (trained with rl.policy.state: deploy)',
    )
    .option('--port <n>', 'port on 127.0.0.1 (0 picks a free one)', integer(0), 8080)
    .option('--bundle <dir>', 'bundle folder (default <run>/policy-bundle)')
    .action(async (opts: DemoCliOptions) => {
      const server = await startDemo({
        run: opts.run,
        port: opts.port,
        ...(opts.bundle !== undefined ? { bundleDir: opts.bundle } : {}),
      });
      process.stdout.write(
        `${server.exported ? 'exported' : 'reused'} the policy bundle in ${server.bundleDir}\n` +
          `demo page: ${server.url} (Ctrl-C stops it)\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
