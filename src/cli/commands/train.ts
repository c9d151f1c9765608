/** `rlpkd train`: a thin layer over runTraining (config loading, Ctrl-C, exit codes, the summary table). */
import type { Command } from 'commander';
import { demoConfigPath, loadConfig, overrideSets } from '../../config/load-config';
import { runTraining } from '../../distill/pipeline';
import { RlpkdError } from '../../errors';
import type { ExecutionProviderName } from '../../runtime/session';
import { provider } from '../option-parsers';

interface TrainCliOptions {
  config?: string;
  set?: string[];
  ep?: ExecutionProviderName;
  resume?: string;
  runName?: string;
}

/** Exit code of a run stopped with Ctrl-C (128 + SIGINT), after its checkpoint is saved. */
export const INTERRUPTED_EXIT_CODE = 130;

/** `rlpkd train [--config FILE] [--set k=v ...] [--ep cpu|cuda|webgpu|auto] [--resume RUN] [--run-name NAME]`. */
export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'distil the teacher into the student with RL pyramid-level selection: phases 1-4, run directory with ' +
        'checkpoints, metrics and TensorBoard events (no args: the embedded demo, configs/demo.yaml)',
    )
    .option('-c, --config <file>', 'YAML run config (default: configs/demo.yaml)')
    .option('--set <key=value...>', 'override config values by dotted key, e.g. --set rl.ppo.lr=1e-4')
    .option(
      '--ep <provider>',
      'execution provider: cpu | cuda | webgpu | auto (default: run.ep of the config)',
      provider,
    )
    .option(
      '--resume <run>',
      'continue a run directory from its latest checkpoint (uses its resolved config)',
    )
    .option('--run-name <name>', 'run name; the run directory is <run.output_dir>/<name>-<timestamp>/')
    .action(async (opts: TrainCliOptions) => {
      if (opts.resume && (opts.config || opts.set?.length || opts.runName)) {
        throw new RlpkdError('--resume continues a run with its own resolved config', {
          hint: 'drop --config/--set/--run-name (only --ep may change on resume), or start a new run',
        });
      }
      const file = opts.config ?? demoConfigPath();
      const sets = opts.set ?? [];
      const config = opts.resume ? undefined : loadConfig(file, { overrides: sets, requireModelFiles: true });
      // A held-out split named on the command line must exist; one from a YAML file may fall back.
      const requireValSplit =
        overrideSets(sets, 'data.val_split') || overrideSets(sets, 'data.val_annotations');
      const controller = new AbortController();
      let presses = 0;
      const onSigint = () => {
        presses++;
        if (presses === 1) {
          process.stderr.write(
            '\nCtrl-C: saving a checkpoint after the current step (press Ctrl-C again to quit at once)\n',
          );
          controller.abort();
        } else {
          process.exit(INTERRUPTED_EXIT_CODE);
        }
      };
      process.on('SIGINT', onSigint);
      try {
        const result = await runTraining({
          ...(config ? { config, sources: [file, ...sets.map((s) => `--set ${s}`)] } : {}),
          ...(opts.resume ? { resume: opts.resume } : {}),
          ...(opts.ep ? { ep: opts.ep } : {}),
          ...(opts.runName ? { runName: opts.runName } : {}),
          ...(requireValSplit ? { requireValSplit } : {}),
          signal: controller.signal,
        });
        if (result.status === 'interrupted') {
          throw new RlpkdError(`training interrupted; checkpoint saved in ${result.checkpoint}`, {
            hint: `continue with: rlpkd train --resume ${result.runDir}`,
            exitCode: INTERRUPTED_EXIT_CODE,
          });
        }
        process.stdout.write(result.summaryText ?? '');
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
