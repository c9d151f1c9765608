/** `rlpkd ablate`: a thin layer over runAblation (config loading, Ctrl-C, the printed table). */
import type { Command } from 'commander';
import { demoConfigPath, loadConfig } from '../../config/load-config';
import { runAblation } from '../../sweep/run-ablation';
import { printJson } from '../run-cli';
import { positiveInt } from '../option-parsers';

interface AblateCliOptions {
  config?: string;
  set?: string[];
  seeds: number;
  quick?: boolean;
  tables?: boolean;
  json?: boolean;
  out?: string;
  queue?: string;
}

/** `rlpkd ablate [--config C] [--set k=v ...] [--seeds N] [--quick] [--tables] [--json] [--out DIR] [--queue redis://H:P]`. */
export function registerAblate(program: Command): void {
  program
    .command('ablate')
    .description(
      'compare every fixed level subset, a random selection at the policy cost and the RL policy from one ' +
        'phase-1 checkpoint per seed: metric, cost, updates, time (table.md/csv, pareto.json)',
    )
    .option('-c, --config <file>', 'YAML run config (default: configs/demo.yaml)')
    .option('--set <key=value...>', 'override config values by dotted key')
    .option('--seeds <n>', 'seeds run.seed, run.seed+1, ... (mean ± std over them)', positiveInt, 1)
    .option('--quick', 'short phases (at most 3/4/2/1 epochs) and NAS searches for a smoke run')
    .option(
      '--tables',
      "also run DARTS-LS, EA-LS, GDAS-LS and the component and gradient ablations; write the paper's " +
        'Tables 1, 2, 4 and 5 (tables.md, table<N>.csv, tables.json)',
    )
    .option('--json', 'print ablation.json instead of the table')
    .option(
      '--out <dir>',
      'ablation directory (default: <run.output_dir>/ablation-<run.name>); a rerun continues it',
    )
    .option(
      '--queue <url>',
      'run the jobs on the BullMQ queue at redis://HOST:PORT, served by `rlpkd worker` processes sharing --out',
    )
    .action(async (opts: AblateCliOptions) => {
      const file = opts.config ?? demoConfigPath();
      const sets = opts.set ?? [];
      const config = loadConfig(file, { overrides: sets, requireModelFiles: true });
      const controller = new AbortController();
      const onSigint = () => {
        process.stderr.write(
          '\nCtrl-C: stopping after the current step; rerun the same command to continue\n',
        );
        controller.abort();
      };
      process.once('SIGINT', onSigint);
      try {
        const r = await runAblation({
          config,
          sources: [file, ...sets.map((s) => `--set ${s}`)],
          seeds: opts.seeds,
          quick: opts.quick ?? false,
          tables: opts.tables ?? false,
          ...(opts.out ? { out: opts.out } : {}),
          ...(opts.queue ? { queue: opts.queue } : {}),
          onProgress: (line) => process.stderr.write(`${line}\n`),
          signal: controller.signal,
        });
        if (opts.json)
          printJson({ dir: r.dir, ...r.report, ...(r.tables ? { tables: r.tables.report } : {}) });
        else {
          process.stdout.write(`ablation ${r.dir}\n\n${r.markdown}`);
          if (r.tables) process.stdout.write(`\n${r.tables.markdown}`);
        }
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
