/** `rlpkd nas`: a thin layer over runNas (config loading, options, the printed table or JSON). */
import type { Command } from 'commander';
import { demoConfigPath, loadConfig } from '../../config/load-config';
import { RlpkdError } from '../../errors';
import { Logger } from '../../logging/logger';
import { openRunDir } from '../../logging/run-dir';
import { NAS_DEFAULTS, runNas, type NasCost } from '../../nas/run-nas';
import { NAS_METHODS, type MethodSettings, type NasMethod } from '../../nas/methods';
import type { ExecutionProviderName } from '../../runtime/session';
import { printJson } from '../run-cli';
import { choice, integer, nonNegative, positiveInt, positiveNumber, provider } from '../option-parsers';

interface NasCliOptions {
  method: NasMethod;
  config?: string;
  set?: string[];
  ep?: ExecutionProviderName;
  fromRun?: string;
  checkpoint?: string;
  lambda?: number;
  cost?: NasCost;
  proxySteps?: number;
  withOracle?: boolean;
  oracle?: string;
  out?: string;
  steps?: number;
  xi?: number;
  archLr?: number;
  population?: number;
  sampleSize?: number;
  cycles?: number;
  samples?: number;
  json?: boolean;
}

/** `rlpkd nas --method darts|gdas|evolution|random|exhaustive [-c CONFIG] [--set k=v] [options]`. */
export function registerNas(program: Command): void {
  program
    .command('nas')
    .description(
      'search one fixed level selection for every image (DARTS-LS, GDAS-LS, EA-LS, random, exhaustive oracle) ' +
        'by proxy training; prints the choice, regret against the oracle, search curve and cost; writes nas.json',
    )
    .requiredOption('--method <method>', NAS_METHODS.join(' | '), choice(...NAS_METHODS))
    .option('-c, --config <file>', 'YAML run config (default: configs/demo.yaml, or the --from-run run)')
    .option('--set <key=value...>', 'override config values by dotted key')
    .option('--ep <provider>', 'execution provider: cpu | cuda | webgpu | auto', provider)
    .option(
      '--from-run <dir>',
      "start every proxy training from this run's checkpoint, not the initial student",
    )
    .option('--checkpoint <label>', 'checkpoint of --from-run (default: the latest)')
    .option('--lambda <x>', 'λ of the objective (default: rl.environment.lambda_tradeoff)', nonNegative)
    .option(
      '--cost <kind>',
      `selection cost: distill (Σ the levels' distillation cost, the RL budget's) | inference (selection MACs share) (default ${NAS_DEFAULTS.cost})`,
      choice<NasCost>('distill', 'inference'),
    )
    .option(
      '--proxy-steps <n>',
      `student steps per proxy training (default ${NAS_DEFAULTS.proxySteps})`,
      positiveInt,
    )
    .option('--with-oracle', 'also evaluate every selection (exhaustive) to report the regret')
    .option('--oracle <nas.json>', 'the nas.json of an exhaustive run with the same settings, for the regret')
    .option('--out <dir>', 'output folder for nas.json (default <run.output_dir>/nas-<method>)')
    .option('--steps <n>', `darts/gdas: architecture steps (default ${NAS_DEFAULTS.steps})`, positiveInt)
    .option(
      '--xi <x>',
      'darts/gdas: ξ of the virtual step (default: proxy steps × lr / (1 − momentum))',
      positiveNumber,
    )
    .option(
      '--arch-lr <x>',
      `darts/gdas: α's Adam learning rate (default ${NAS_DEFAULTS.archLr})`,
      positiveNumber,
    )
    .option('--population <n>', `evolution: population (default ${NAS_DEFAULTS.population})`, positiveInt)
    .option(
      '--sample-size <n>',
      `evolution: tournament size (default ${NAS_DEFAULTS.sampleSize})`,
      positiveInt,
    )
    .option('--cycles <n>', `evolution: mutation cycles (default ${NAS_DEFAULTS.cycles})`, integer(0))
    .option('--samples <n>', `random: selections drawn (default ${NAS_DEFAULTS.samples})`, positiveInt)
    .option('--json', 'print nas.json instead of the table')
    .action(async (opts: NasCliOptions) => {
      if (opts.checkpoint && !opts.fromRun) {
        throw new RlpkdError('--checkpoint names a checkpoint of --from-run', {
          hint: 'add --from-run <dir>',
        });
      }
      const file = opts.config ?? (opts.fromRun ? openRunDir(opts.fromRun).configFile : demoConfigPath());
      const sets = opts.set ?? [];
      const config = loadConfig(file, { overrides: sets, requireModelFiles: true });
      const settings: Partial<MethodSettings> = {
        ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
        ...(opts.xi !== undefined ? { xi: opts.xi } : {}),
        ...(opts.archLr !== undefined ? { archLr: opts.archLr } : {}),
        ...(opts.population !== undefined ? { population: opts.population } : {}),
        ...(opts.sampleSize !== undefined ? { sampleSize: opts.sampleSize } : {}),
        ...(opts.cycles !== undefined ? { cycles: opts.cycles } : {}),
        ...(opts.samples !== undefined ? { samples: opts.samples } : {}),
      };
      const log = new Logger({ level: opts.json ? 'warn' : 'info' });
      try {
        const r = await runNas({
          config,
          configSource: [file, ...sets.map((s) => `--set ${s}`)].join(' '),
          method: opts.method,
          log,
          settings,
          ...(opts.ep ? { ep: opts.ep } : {}),
          ...(opts.fromRun
            ? { fromRun: { run: opts.fromRun, ...(opts.checkpoint ? { checkpoint: opts.checkpoint } : {}) } }
            : {}),
          ...(opts.lambda !== undefined ? { lambda: opts.lambda } : {}),
          ...(opts.cost ? { cost: opts.cost } : {}),
          ...(opts.proxySteps !== undefined ? { proxySteps: opts.proxySteps } : {}),
          ...(opts.withOracle ? { withOracle: true } : {}),
          ...(opts.oracle ? { oracleFile: opts.oracle } : {}),
          ...(opts.out ? { outDir: opts.out } : {}),
          onProgress: (p) =>
            log.info(
              `nas ${opts.method} ${p.index}: ${p.selection} objective ${p.objective.toPrecision(5)}` +
                (p.temperature !== undefined ? ` tau ${p.temperature.toFixed(2)}` : ''),
            ),
        });
        if (opts.json) printJson(r.report);
        else process.stdout.write(r.text);
      } finally {
        log.close();
      }
    });
}
