/**
 * `rlpkd bench`: the project's own figures. `train-step` times one distillation step (teacher forward,
 * student forward + backward on the 4-level MSE, AdamW) on given graphs; `compare` runs the same step in
 * PyTorch eager beside it and prints the ratio; `all` prints the train step on builder-made
 * ResNet-101-FPN / ResNet-50-FPN graphs, the Conv-gradient micro-benchmark and the policy throughput.
 * `subsets` times the student's step pruned to each level subset against the cost model; `episodes` a
 * level-selection episode against a distillation step, with masked and pruned updates, on a run config.
 * The measuring lives in src/bench/ (timed runs in a fresh child process there); this only parses and prints.
 */
import type { Command } from 'commander';
import {
  compareWithPytorch,
  type CompareOptions,
  type CompareSummary,
  type TrainStepRun,
  timeTrainStep,
} from '../../bench/compare';
import {
  benchBrowserDeploy,
  SYSTEM_CHROMIUM,
  type BrowserDeployBenchResult,
} from '../../bench/browser-deploy';
import { benchEpisodeCost, UPDATE_ROUTES, type EpisodeCostResult } from '../../bench/episode-cost';
import { benchProjectFigures, type ProjectFigures } from '../../bench/project-figures';
import { demoConfigPath, loadConfig } from '../../config/load-config';
import { Logger } from '../../logging/logger';
import { benchSubsetSteps, parseSubsets, type SubsetStepBenchResult } from '../../bench/subset-step';
import { defaultBenchCacheDir, type TrainStepBenchOptions } from '../../bench/train-step';
import type { ExecutionProviderName } from '../../runtime/session';
import { printJson } from '../run-cli';
import { choice, integer, provider } from '../option-parsers';

interface StepFlags {
  batch: number;
  size: number;
  steps: number;
  warmup: number;
  ep: ExecutionProviderName;
  threads?: number;
  cache?: string;
  teacherOpt: 'basic' | 'extended' | 'all';
  json?: boolean;
  inProcess?: boolean;
}

interface TrainStepFlags extends StepFlags {
  teacher: string;
  student: string;
}

interface CompareFlags extends StepFlags {
  rounds: number;
  teacherArch: string;
  studentArch: string;
}

/** Options shared by the subcommands that run a train step. */
function stepOptions(cmd: Command, defaults: { steps: number }): Command {
  return cmd
    .option('--batch <n>', 'batch size', integer(1), 2)
    .option('--size <px>', 'input height and width', integer(32), 224)
    .option('--steps <n>', 'timed steps', integer(1), defaults.steps)
    .option('--warmup <n>', 'untimed steps first', integer(0), 2)
    .option('--ep <provider>', 'execution provider: cpu | cuda | webgpu | auto', provider, 'cpu')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: one per core)', integer(1))
    .option('--cache <dir>', `cache for prepared artifacts (default ${defaultBenchCacheDir()})`)
    .option(
      '--teacher-opt <level>',
      "teacher graph optimization ('all': onnxruntime's NCHWc form, saved once in the cache for this CPU)",
      choice('basic', 'extended', 'all'),
      'all',
    )
    .option('--json', 'print JSON')
    .option('--in-process', 'time in this process instead of a fresh child process');
}

/** The step settings of the flags, as the library takes them. */
function stepSettings(flags: StepFlags): Omit<TrainStepBenchOptions, 'teacher' | 'student'> {
  return {
    batch: flags.batch,
    size: flags.size,
    steps: flags.steps,
    warmup: flags.warmup,
    ep: flags.ep,
    teacherOptimization: flags.teacherOpt,
    ...(flags.threads ? { threads: flags.threads } : {}),
    ...(flags.cache ? { cacheDir: flags.cache } : {}),
  };
}

function compareOptions(flags: CompareFlags): CompareOptions {
  return {
    ...stepSettings(flags),
    teacherArch: flags.teacherArch,
    studentArch: flags.studentArch,
    rounds: flags.rounds,
    ...(flags.inProcess ? { inProcess: true } : {}),
  };
}

function printStep(r: TrainStepRun, label: string): void {
  const f = (x: number): string => x.toFixed(0);
  process.stdout.write(
    `${label}: median ${f(r.medianMs)} ms/step (p90 ${f(r.p90Ms)}, min ${f(r.minMs)}; teacher ${f(r.teacherMedianMs)} + ` +
      `student ${f(r.studentMedianMs)}), peak RSS ${f(r.peakRssMB)} MB ` +
      `[batch ${r.batch}, ${r.size}×${r.size}, ${r.trainableParameters.toLocaleString('en-US')} trainable, ` +
      `${r.executionProvider}, threads ${r.threads}]\n`,
  );
}

function printCompare(summary: CompareSummary): void {
  const f = (x: number): string => x.toFixed(0);
  summary.ours.runs.forEach((ours, r) => {
    const torch = summary.pytorch.runs[r];
    printStep(ours, `round ${r + 1} rl-pyramidkd`);
    process.stdout.write(
      `round ${r + 1} ${torch.runtime}: median ${f(torch.medianMs)} ms/step (min ${f(torch.minMs)}), ` +
        `peak RSS ${f(torch.peakRssMB)} MB\n`,
    );
  });
  const t = summary.targets;
  process.stdout.write(
    `time: ${f(summary.ours.medianMs)} vs ${f(summary.pytorch.medianMs)} ms/step = ` +
      `${summary.timeRatio.toFixed(2)}× PyTorch (target ≤ ${t.timeRatio.toFixed(2)}×)\n` +
      `peak RSS: ${f(summary.ours.peakRssMB)} vs ${f(summary.pytorch.peakRssMB)} MB = ` +
      `${summary.memoryRatio.toFixed(2)}× PyTorch (target ≤ ${t.memoryRatio.toFixed(2)}×)\n` +
      `load average (1 min) during the runs: ${summary.loadAverage1m.join(', ')} on ${summary.cpus} CPUs\n` +
      `${summary.met ? 'targets met' : 'targets NOT met'}\n`,
  );
}

function printFigures(result: ProjectFigures): void {
  const { trainStep, convGrad, policy } = result;
  printStep(trainStep, `train step ${trainStep.teacher} → ${trainStep.student}`);
  const t = (x: { minMs: number; medianMs: number }): string =>
    `${x.medianMs.toFixed(1)} ms (min ${x.minMs.toFixed(1)})`;
  process.stdout.write(
    `conv gradient, ${convGrad.layer}: forward ${t(convGrad.forwardMs)}, ` +
      `dX ${convGrad.ruleChoice.inputGrad} ${t(convGrad.inputGradMs[convGrad.ruleChoice.inputGrad]!)}, ` +
      `dW ${convGrad.ruleChoice.weightGrad} ${t(convGrad.weightGradMs[convGrad.ruleChoice.weightGrad]!)}\n` +
      `policy decisions (${policy.mode}, batch ${policy.batch}, state ${policy.stateDim}, hidden ${policy.hiddenSize}): ` +
      `${policy.medianMsPerBatch.toFixed(2)} ms per batch, ${(policy.msPerState * 1000).toFixed(1)} µs per state\n` +
      `load average (1 min): ${result.loadAverage1m} on ${result.cpus} CPUs\n`,
  );
}

interface SubsetFlags {
  teacher: string;
  student: string;
  batch: number;
  size: number;
  steps: number;
  warmup: number;
  rounds: number;
  cache?: string;
  subsets: string;
  ep: ExecutionProviderName;
  threads?: number;
  json?: boolean;
}

function printSubsets(r: SubsetStepBenchResult): void {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const width = Math.max(6, ...r.rows.map((row) => row.name.length));
  process.stdout.write(
    `student step per level subset (teacher excluded: its features computed once in ${r.teacherMs.toFixed(0)} ms) ` +
      `[batch ${r.batch}, ${r.size}×${r.size}, ${r.executionProvider}, threads ${r.threads}]\n` +
      `${'subset'.padEnd(width)}  median ms  measured  predicted  ratio  within ±${pct(r.tolerance)}  min-ms share  ratio  elem-ops share\n`,
  );
  for (const row of r.rows) {
    process.stdout.write(
      `${row.name.padEnd(width)}  ${row.medianMs.toFixed(1).padStart(9)}  ${pct(row.measuredShare).padStart(8)}  ` +
        `${pct(row.predictedShare).padStart(9)}  ${row.ratio.toFixed(2).padStart(5)}  ${(row.withinTolerance ? 'yes' : 'no').padEnd(13)}  ${pct(row.minShare).padStart(12)}  ` +
        `${row.minRatio.toFixed(2).padStart(5)}  ${pct(row.elementOpsShare).padStart(14)}\n`,
    );
  }
  const within = r.rows.filter((row) => row.withinTolerance).length;
  process.stdout.write(
    `${within} of ${r.rows.length} subsets within ±${pct(r.tolerance)} of the cost model\n`,
  );
  if (r.fit) {
    process.stdout.write(
      `least-squares fit: ms ≈ ${r.fit.fixedMs.toFixed(1)} fixed + ${r.fit.proportionalMs.toFixed(1)} × predicted share\n`,
    );
  }
}

interface EpisodeFlags {
  config?: string;
  set?: string[];
  subsets: string;
  rounds: number;
  threads?: number;
  json?: boolean;
}

function printEpisodes(r: EpisodeCostResult): void {
  const ms = (t: { medianMs: number; minMs: number }) => `${t.medianMs.toFixed(1)} (${t.minMs.toFixed(1)})`;
  const routes = UPDATE_ROUTES.join(' / ');
  process.stdout.write(
    `distillation step (batch ${r.batch}, every level), median (min) ms over ${r.rounds} rounds: ` +
      UPDATE_ROUTES.map((k) => `${k} ${ms(r.step[k])}`).join(', ') +
      `\nstate measurement of ${r.episodeImages} episode image(s): ` +
      UPDATE_ROUTES.map((k) => `${k} ${ms(r.measure[k])}`).join(', ') +
      `\nsubset        predicted  trial ms ${routes}          episode ms ${routes}        ` +
      `episode / step ${routes} (of the mins)\n`,
  );
  for (const row of r.rows) {
    process.stdout.write(
      `${row.name.padEnd(12)}  ${(100 * row.predictedShare).toFixed(1).padStart(8)}%  ` +
        `${UPDATE_ROUTES.map((k) => ms(row.trial[k]).padStart(13)).join(' ')}  ` +
        `${UPDATE_ROUTES.map((k) => ms(row.episode[k]).padStart(13)).join(' ')}  ` +
        `${UPDATE_ROUTES.map((k) => row.episodePerStep[k].toFixed(2).padStart(6)).join(' ')}  ` +
        `(${UPDATE_ROUTES.map((k) => row.episodePerStepMin[k].toFixed(2)).join(' ')})\n`,
    );
  }
}

interface DeployFlags {
  bundle: string;
  ep: 'wasm' | 'webgpu';
  threads: number;
  repeats: number;
  warmup: number;
  rounds: number;
  chromium: string;
  json?: boolean;
}

function printDeploy(r: BrowserDeployBenchResult): void {
  const f = (x: number): string => x.toFixed(3);
  const width = Math.max(6, ...r.rows.map((row) => row.levels.join('+').length));
  process.stdout.write(
    `${r.browser}, ${r.executionProvider}, ${r.threads} thread(s), ${r.input.width}×${r.input.height} bundle ${r.bundle}; ` +
      `median ms per image over ${r.repeats} runs after ${r.warmup} warm-up runs` +
      `${r.rounds > 1 ? `, the least of ${r.rounds} rounds' medians` : ''}\n` +
      `${'levels'.padEnd(width)}  parts ms  head ms  sum ms  runs  predicted share  predicted ms  measured/predicted\n`,
  );
  for (const row of r.rows) {
    process.stdout.write(
      `${row.levels.join('+').padEnd(width)}  ${f(row.partsMs).padStart(8)}  ${f(row.headMs).padStart(7)}  ` +
        `${f(row.measuredMs).padStart(6)}  ${String(row.sessionRuns).padStart(4)}  ` +
        `${(100 * row.predictedShare).toFixed(2).padStart(14)}%  ${f(row.predictedMs).padStart(12)}  ` +
        `${row.ratio.toFixed(2).padStart(18)}\n`,
    );
  }
  process.stdout.write(
    'prediction: the share of the all-levels MACs (level parts + head parts, meta.json) × the measured all-levels sum\n',
  );
  process.stdout.write(
    `fixed time per session run (not in the prediction): ${f(r.emptyRunMs)} ms for an identity graph on one value\n`,
  );
  if (r.overhead) {
    process.stdout.write(
      `  least squares of ms on MACs over the ${r.overhead.points.length} parts timed alone: ` +
        `${f(r.overhead.fixedMs)} ms + ${(r.overhead.msPerMac * 1e6).toFixed(3)} ms per million MACs\n`,
    );
  }
  if (r.executionProvider === 'webgpu') {
    process.stdout.write(
      "webgpu runs with Chromium's software (SwiftShader) adapter where there is no GPU: a check of the path, not GPU times\n",
    );
  }
  process.stdout.write(
    `trunk ${f(r.trunkMs)} ms; policy decision ${f(r.decisionMs)} ms per image (its graph runs ${f(r.policyMs)} ms, ` +
      'the rest pooling the state)\n',
  );
}

/** Registers `rlpkd bench train-step | compare | all | subsets | episodes | deploy`. */
export function registerBench(program: Command): void {
  const bench = program
    .command('bench')
    .description('time a distillation training step (and compare it with PyTorch), and other figures');

  stepOptions(
    bench
      .command('train-step')
      .description('median ms per distillation step and peak memory on a teacher and a student graph')
      .requiredOption('--teacher <file>', 'teacher ONNX graph (outputs named like the student levels)')
      .requiredOption('--student <file>', 'student ONNX graph (its outputs are the distilled levels)'),
    { steps: 10 },
  ).action(async (flags: TrainStepFlags) => {
    const options = { ...stepSettings(flags), teacher: flags.teacher, student: flags.student };
    const r = await timeTrainStep(options, { inProcess: flags.inProcess });
    if (flags.json) {
      printJson(r);
      return;
    }
    printStep(r, 'train step');
  });

  const graphOptions = (cmd: Command): Command =>
    cmd
      .option('--teacher-arch <arch>', 'builder teacher', 'resnet101-fpn')
      .option('--student-arch <arch>', 'builder student', 'resnet50-fpn');

  stepOptions(
    graphOptions(
      bench
        .command('compare')
        .description(
          'the train step beside PyTorch eager (tools/bench_torch_step.py) on the same architectures',
        )
        .option('--rounds <n>', 'alternating rounds of both (medians over rounds)', integer(1), 1),
    ),
    { steps: 10 },
  ).action(async (flags: CompareFlags) => {
    const summary = await compareWithPytorch(compareOptions(flags));
    if (flags.json) printJson(summary);
    else printCompare(summary);
  });

  bench
    .command('subsets')
    .description(
      "the student's step on graphs pruned to each level subset vs the cost model's predicted share",
    )
    .requiredOption('--teacher <file>', 'teacher ONNX graph (outputs named like the student levels)')
    .requiredOption('--student <file>', 'student ONNX graph (its pyramid outputs are the levels)')
    .option('--batch <n>', 'batch size', integer(1), 2)
    .option('--size <px>', 'input height and width', integer(32), 224)
    .option('--steps <n>', 'timed steps per subset', integer(1), 5)
    .option('--warmup <n>', 'untimed steps per subset first', integer(0), 1)
    .option('--rounds <n>', 'passes through all subsets in turn (steps per subset per pass)', integer(1), 1)
    .option('--cache <dir>', `cache for the per-subset artifacts (default ${defaultBenchCacheDir()})`)
    .option('--subsets <list>', "'all' (every non-empty subset) or e.g. P2+P3,P4,P4+P5", 'all')
    .option('--ep <provider>', 'execution provider: cpu | cuda | webgpu | auto', provider, 'cpu')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: one per core)', integer(1))
    .option('--json', 'print JSON')
    .action(async (flags: SubsetFlags) => {
      const subsets = parseSubsets(flags.subsets);
      const result = await benchSubsetSteps({
        teacher: flags.teacher,
        student: flags.student,
        batch: flags.batch,
        size: flags.size,
        steps: flags.steps,
        warmup: flags.warmup,
        rounds: flags.rounds,
        ep: flags.ep,
        ...(flags.cache ? { cacheDir: flags.cache } : {}),
        ...(flags.threads ? { threads: flags.threads } : {}),
        ...(subsets ? { subsets } : {}),
        ...(flags.json
          ? {}
          : {
              onSubset: (p) =>
                process.stderr.write(`round ${p.round + 1} ${p.name}: ${p.medianMs.toFixed(1)} ms\n`),
            }),
      });
      if (flags.json) printJson(result);
      else printSubsets(result);
    });

  bench
    .command('episodes')
    .description(
      "a level-selection episode's student work against a distillation step, masked vs pruned updates",
    )
    .option('-c, --config <file>', 'YAML run config (default: configs/demo.yaml)')
    .option('--set <key=value...>', 'override config values by dotted key')
    .option('--subsets <list>', 'e.g. P5,P4+P5 (default: each single level and all levels)', 'default')
    .option('--rounds <n>', 'rounds, the first a warm-up (both routes alternate in each)', integer(2), 6)
    .option('--threads <n>', 'onnxruntime intra-op threads (default: one per core)', integer(1))
    .option('--json', 'print JSON')
    .action(async (flags: EpisodeFlags) => {
      const config = loadConfig(flags.config ?? demoConfigPath(), {
        overrides: flags.set ?? [],
        requireModelFiles: true,
      });
      const subsets = flags.subsets === 'default' ? undefined : parseSubsets(flags.subsets);
      const result = await benchEpisodeCost({
        config,
        log: new Logger({ level: 'warn' }),
        rounds: flags.rounds,
        ...(flags.threads ? { threads: flags.threads } : {}),
        ...(subsets ? { subsets } : {}),
      });
      if (flags.json) printJson(result);
      else printEpisodes(result);
    });

  bench
    .command('deploy')
    .description(
      'a policy bundle in Chromium: time of each fixed level selection vs the cost model, policy latency',
    )
    .requiredOption('--bundle <dir>', 'bundle folder written by `rlpkd export-policy`')
    .option(
      '--ep <provider>',
      'wasm | webgpu (software adapter without a GPU: not for timing)',
      choice('wasm', 'webgpu'),
      'wasm',
    )
    .option('--threads <n>', 'wasm threads', integer(1), 1)
    .option('--repeats <n>', 'timed runs per selection (medians)', integer(1), 40)
    .option('--warmup <n>', 'untimed runs per selection first', integer(0), 5)
    .option(
      '--rounds <n>',
      'rounds, each in a fresh browser (figures: the least of their medians)',
      integer(1),
      1,
    )
    .option('--chromium <path>', 'the browser', SYSTEM_CHROMIUM)
    .option('--json', 'print JSON')
    .action(async (flags: DeployFlags) => {
      const result = await benchBrowserDeploy({
        bundleDir: flags.bundle,
        ep: flags.ep,
        threads: flags.threads,
        repeats: flags.repeats,
        warmup: flags.warmup,
        rounds: flags.rounds,
        chromium: flags.chromium,
        ...(flags.json
          ? {}
          : {
              onSelection: (t) =>
                process.stderr.write(
                  `${t.levels.join('+')}: parts ${t.partsMs.toFixed(3)} ms, head ${t.headMs.toFixed(3)} ms\n`,
                ),
            }),
      });
      if (flags.json) printJson(result);
      else printDeploy(result);
    });

  stepOptions(
    graphOptions(
      bench
        .command('all')
        .description(
          "the project's figures: train step (ResNet-101-FPN → ResNet-50-FPN), conv gradient, policy",
        ),
    ),
    { steps: 10 },
  ).action(async (flags: CompareFlags) => {
    const { rounds: _r, ...options } = compareOptions(flags);
    const result = await benchProjectFigures(options);
    if (flags.json) {
      const { stepsMs: _s, ...trainStep } = result.trainStep;
      printJson({ ...result, trainStep });
    } else printFigures(result);
  });
}
