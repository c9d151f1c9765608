/** `rlpkd teach`: a thin layer over runTeach (config loading, Ctrl-C, the summary table). */
import type { Command } from 'commander';
import { configOrigin, requireModelFile } from '../../config/load-config';
import { loadTeachConfig } from '../../config/teach-schema';
import type { ExecutionProviderName } from '../../runtime/session';
import { runTeach } from '../../teach/teach-model';
import { withSigintAbort } from '../abort-on-sigint';
import { provider } from '../option-parsers';

interface TeachCliOptions {
  config: string;
  set?: string[];
  ep?: ExecutionProviderName;
  runName?: string;
  json?: boolean;
}

/** `rlpkd teach --config FILE [--set k=v ...] [--ep cpu|cuda|webgpu|auto] [--run-name NAME] [--json]`. */
export function registerTeach(program: Command): void {
  program
    .command('teach')
    .description(
      'train a task head (classification, segmentation or FCOS detection) on a backbone, or on the frozen ' +
        'backbone, from labels; evaluate it beside chance; write the task model and the head alone',
    )
    .requiredOption('-c, --config <file>', 'YAML teach config (see configs/teach_demo.yaml)')
    .option('--set <key=value...>', 'override config values by dotted key, e.g. --set teach.epochs=2')
    .option(
      '--ep <provider>',
      'execution provider: cpu | cuda | webgpu | auto (default: run.ep of the config)',
      provider,
    )
    .option('--run-name <name>', 'run name; the run directory is <run.output_dir>/<name>-<timestamp>/')
    .option('--json', 'print the metrics report (teach-metrics.json) instead of the table')
    .action(async (opts: TeachCliOptions) => {
      const sets = opts.set ?? [];
      const config = loadTeachConfig(opts.config, { overrides: sets });
      requireModelFile(
        'teach.backbone',
        config.teach.backbone,
        configOrigin(config, 'teach.backbone'),
        process.cwd(),
      );
      const result = await withSigintAbort(
        'stopping after the current step; the model so far is evaluated',
        (signal) =>
          runTeach({
            config,
            sources: [opts.config, ...sets.map((s) => `--set ${s}`)],
            ...(opts.ep ? { ep: opts.ep } : {}),
            ...(opts.runName ? { runName: opts.runName } : {}),
            signal,
          }),
      );
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ runDir: result.runDir, ...result.report }, null, 2)}\n`
          : result.summaryText,
      );
    });
}
