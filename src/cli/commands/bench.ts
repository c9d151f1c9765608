/**
 * `rlpkd bench`: the project's own figures. `train-step` times one distillation step (teacher forward,
 * student forward + backward on the 4-level MSE, AdamW) on given graphs; `compare` runs the same step in
 * PyTorch eager beside it and prints the ratio; `all` prints the train step on builder-made
 * ResNet-101-FPN / ResNet-50-FPN graphs, the Conv-gradient micro-benchmark and the policy throughput.
 * Timed runs happen in a fresh child process, after the one-off preparation (artifact generation) in
 * this one, so the reported peak memory is the training's own.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { benchConvGrad } from '../../bench/conv-grad';
import {
  benchTrainStep,
  defaultBenchCacheDir,
  prepareTrainStepBench,
  type TrainStepBenchOptions,
  type TrainStepBenchResult,
} from '../../bench/train-step';
import { RlpkdError } from '../../errors';
import { buildResnetFpn } from '../../models/resnet-fpn';
import { saveModel } from '../../onnx/model-io';
import { benchPolicyThroughput } from '../../rl/bench-policy';
import type { ExecutionProviderName } from '../../runtime/session';
import { findTorchPython } from '../../tools/python';
import { printJson } from '../run-cli';
import { median } from '../../bench/stats';
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

/** PyTorch's own figures from tools/bench_torch_step.py. */
interface TorchResult {
  medianMs: number;
  p90Ms: number;
  minMs: number;
  peakRssMB: number;
  runtime: string;
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

function benchOptions(flags: StepFlags, teacher: string, student: string): TrainStepBenchOptions {
  return {
    teacher,
    student,
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

/** The command line that runs this CLI again (node + script), when this process is the CLI. */
function selfCommand(): string[] | undefined {
  const script = process.argv[1];
  if (!script || !/(rlpkd(\.js)?|main\.js)$/.test(script)) return undefined;
  return [process.execPath, script];
}

/** Runs `args` with `command[0]` and returns its stdout; stderr passes through. */
function runChild(command: string[], args: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], [...command.slice(1), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.on('error', (err) => reject(new RlpkdError(`${what} could not start: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else
        reject(new RlpkdError(`${what} failed (exit code ${code})`, { hint: 'its error is printed above' }));
    });
  });
}

/** The JSON object `text` ends with (a whole pretty-printed document, or the last one-line object). */
function lastJson<T>(text: string, what: string): T {
  const t = text.trim();
  const candidates = [t, ...t.split('\n').reverse()];
  for (const c of candidates) {
    if (!c.trim().startsWith('{')) continue;
    try {
      return JSON.parse(c) as T;
    } catch {
      // not this one
    }
  }
  // A pretty-printed object after other output: from the last line that is just '{'.
  const start = t.lastIndexOf('\n{\n');
  if (start >= 0) {
    try {
      return JSON.parse(t.slice(start + 1)) as T;
    } catch {
      // fall through
    }
  }
  throw new RlpkdError(`${what} printed no JSON result`);
}

/**
 * Prepares in this process (artifact generation is a one-off cost the figures leave out), then times in
 * a fresh child process so its peak RSS is that of training alone; in this process when asked, or when
 * this process is not the CLI.
 */
async function timeTrainStep(
  options: TrainStepBenchOptions,
  flags: StepFlags,
  childArgs: string[],
): Promise<TrainStepBenchResult> {
  const self = flags.inProcess ? undefined : selfCommand();
  if (!self) return benchTrainStep(options);
  await prepareTrainStepBench(options);
  const out = await runChild(self, [...childArgs, '--in-process', '--json'], 'the timed benchmark process');
  return lastJson<TrainStepBenchResult>(out, 'the timed benchmark process');
}

/** What both timed programs (this CLI's child and tools/bench_torch_step.py) take alike, as arguments. */
function sharedStepArgs(flags: StepFlags): string[] {
  const args: [string, number][] = [
    ['--batch', flags.batch],
    ['--size', flags.size],
    ['--steps', flags.steps],
    ['--warmup', flags.warmup],
  ];
  return args.flatMap(([flag, value]) => [flag, String(value)]);
}

/** The flags of a StepFlags as command-line arguments for a child `bench train-step`. */
function stepArgs(flags: StepFlags): string[] {
  return [
    ...sharedStepArgs(flags),
    '--ep',
    flags.ep,
    '--teacher-opt',
    flags.teacherOpt,
    ...(flags.threads ? ['--threads', String(flags.threads)] : []),
    ...(flags.cache ? ['--cache', flags.cache] : []),
  ];
}

function printStep(r: TrainStepBenchResult, label: string): void {
  const f = (x: number): string => x.toFixed(0);
  process.stdout.write(
    `${label}: median ${f(r.medianMs)} ms/step (p90 ${f(r.p90Ms)}, min ${f(r.minMs)}; teacher ${f(r.teacherMedianMs)} + ` +
      `student ${f(r.studentMedianMs)}), peak RSS ${f(r.peakRssMB)} MB ` +
      `[batch ${r.batch}, ${r.size}×${r.size}, ${r.trainableParameters.toLocaleString('en-US')} trainable, ` +
      `${r.executionProvider}, threads ${r.threads}]\n`,
  );
}

/**
 * Builder-made teacher and student (torchvision's fresh initialization: identity frozen batch-norm),
 * saved once into the cache with their weights in external-data files.
 */
function builtGraphs(
  cacheDir: string,
  teacherArch: string,
  studentArch: string,
  size: number,
): { teacher: string; student: string } {
  const dir = path.join(cacheDir, 'models');
  const file = (arch: string, seed: number): string => {
    const f = path.join(dir, `${arch}-${size}-seed${seed}.onnx`);
    if (!fs.existsSync(f) || !fs.existsSync(`${f}.data`)) {
      const model = buildResnetFpn({ arch, seed, height: size, width: size, batchNorm: 'identity' });
      saveModel(model, f, { externalDataThreshold: 1024 });
    }
    return f;
  };
  return { teacher: file(teacherArch, 1), student: file(studentArch, 2) };
}

function torchScript(): string {
  const file = path.resolve(__dirname, '..', '..', '..', 'tools', 'bench_torch_step.py');
  if (!fs.existsSync(file)) {
    throw new RlpkdError(`the PyTorch reference script '${file}' is missing`, {
      hint: 'reinstall rl-pyramidkd (its package includes tools/)',
    });
  }
  return file;
}

/** The Python that runs the reference (one with torch and torchvision), or a clear error. */
function torchPython(): string {
  const py = findTorchPython();
  if (!py) {
    throw new RlpkdError('no Python with PyTorch and torchvision found for the reference run', {
      hint: 'install python3-torch and python3-torchvision (Debian), or set RLPKD_PYTHON to such an interpreter',
    });
  }
  return py;
}

async function runTorch(flags: CompareFlags): Promise<TorchResult> {
  const py = torchPython();
  const out = await runChild(
    [py, torchScript()],
    [
      '--teacher',
      flags.teacherArch.replace(/-fpn$/, ''),
      '--student',
      flags.studentArch.replace(/-fpn$/, ''),
      ...sharedStepArgs(flags),
      '--threads',
      String(flags.threads ?? os.cpus().length),
    ],
    'the PyTorch reference',
  );
  return lastJson<TorchResult>(out, 'the PyTorch reference');
}

/** The builder-made teacher/student of a compare/all run, the step options and the child's arguments. */
function trainStepRun(flags: CompareFlags): {
  options: ReturnType<typeof benchOptions>;
  childArgs: string[];
} {
  const cacheDir = flags.cache ?? defaultBenchCacheDir();
  const graphs = builtGraphs(cacheDir, flags.teacherArch, flags.studentArch, flags.size);
  const options = benchOptions(flags, graphs.teacher, graphs.student);
  const childArgs = [
    'bench',
    'train-step',
    '--teacher',
    graphs.teacher,
    '--student',
    graphs.student,
    ...stepArgs(flags),
  ];
  return { options, childArgs };
}

async function runCompare(flags: CompareFlags): Promise<void> {
  const { options, childArgs } = trainStepRun(flags);
  torchPython(); // fail early, before minutes of work
  const ours: TrainStepBenchResult[] = [];
  const torch: TorchResult[] = [];
  const loads: number[][] = [];
  for (let r = 0; r < flags.rounds; r++) {
    loads.push(os.loadavg());
    // Alternate who goes first, so a change in machine load hits both alike.
    if (r % 2 === 0) {
      ours.push(await timeTrainStep(options, flags, childArgs));
      torch.push(await runTorch(flags));
    } else {
      torch.push(await runTorch(flags));
      ours.push(await timeTrainStep(options, flags, childArgs));
    }
  }
  loads.push(os.loadavg());
  const oursMs = median(ours.map((o) => o.medianMs));
  const torchMs = median(torch.map((t) => t.medianMs));
  const oursMB = Math.max(...ours.map((o) => o.peakRssMB));
  const torchMB = Math.max(...torch.map((t) => t.peakRssMB));
  const summary = {
    rounds: flags.rounds,
    ours: { medianMs: oursMs, peakRssMB: oursMB, runs: ours.map(({ stepsMs: _s, ...o }) => o) },
    pytorch: { medianMs: torchMs, peakRssMB: torchMB, runs: torch },
    timeRatio: oursMs / torchMs,
    memoryRatio: oursMB / torchMB,
    targets: { timeRatio: 0.8, memoryRatio: 1 },
    met: oursMs / torchMs <= 0.8 && oursMB <= torchMB,
    loadAverage1m: loads.map((l) => Number(l[0].toFixed(2))),
    cpus: os.cpus().length,
  };
  if (flags.json) {
    printJson(summary);
    return;
  }
  const f = (x: number): string => x.toFixed(0);
  for (let r = 0; r < flags.rounds; r++) {
    printStep(ours[r], `round ${r + 1} rl-pyramidkd`);
    process.stdout.write(
      `round ${r + 1} ${torch[r].runtime}: median ${f(torch[r].medianMs)} ms/step (min ${f(torch[r].minMs)}), ` +
        `peak RSS ${f(torch[r].peakRssMB)} MB\n`,
    );
  }
  process.stdout.write(
    `time: ${f(oursMs)} vs ${f(torchMs)} ms/step = ${summary.timeRatio.toFixed(2)}× PyTorch (target ≤ 0.80×)\n` +
      `peak RSS: ${f(oursMB)} vs ${f(torchMB)} MB = ${summary.memoryRatio.toFixed(2)}× PyTorch (target ≤ 1.00×)\n` +
      `load average (1 min) during the runs: ${summary.loadAverage1m.join(', ')} on ${summary.cpus} CPUs\n` +
      `${summary.met ? 'targets met' : 'targets NOT met'}\n`,
  );
}

async function runAll(flags: CompareFlags): Promise<void> {
  const { options, childArgs } = trainStepRun(flags);
  const trainStep = await timeTrainStep(options, flags, childArgs);
  const convGrad = await benchConvGrad({ ...(flags.threads ? { threads: flags.threads } : {}) });
  const policy = await benchPolicyThroughput({
    ...(flags.threads ? { intraOpNumThreads: flags.threads } : {}),
  });
  const result = {
    trainStep: { ...trainStep, teacher: flags.teacherArch, student: flags.studentArch },
    convGrad,
    policy,
    loadAverage1m: Number(os.loadavg()[0].toFixed(2)),
    cpus: os.cpus().length,
  };
  if (flags.json) {
    const { stepsMs: _s, ...rest } = result.trainStep;
    printJson({ ...result, trainStep: rest });
    return;
  }
  printStep(trainStep, `train step ${flags.teacherArch} → ${flags.studentArch}`);
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

/** Registers `rlpkd bench train-step | compare | all`. */
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
    const options = benchOptions(flags, flags.teacher, flags.student);
    const childArgs = [
      'bench',
      'train-step',
      '--teacher',
      flags.teacher,
      '--student',
      flags.student,
      ...stepArgs(flags),
    ];
    const r = await timeTrainStep(options, flags, childArgs);
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
  ).action(async (flags: CompareFlags) => runCompare(flags));

  stepOptions(
    graphOptions(
      bench
        .command('all')
        .description(
          "the project's figures: train step (ResNet-101-FPN → ResNet-50-FPN), conv gradient, policy",
        ),
    ),
    { steps: 10 },
  ).action(async (flags: CompareFlags) => runAll({ ...flags, rounds: 1 }));
}
