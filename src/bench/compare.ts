/**
 * The train-step benchmark beside PyTorch eager (`rlpkd bench compare`): builder-made teacher and student
 * graphs, each timed run in a fresh child process (after the one-off preparation in this one, so the
 * peak memory reported is the training's own), the same step in tools/bench_torch_step.py, rounds that
 * alternate who goes first, and the project's targets.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RlpkdError } from '../errors';
import { buildResnetFpn } from '../models/resnet-fpn';
import { saveModel } from '../onnx/model-io';
import { findTorchPython } from '../tools/python';
import { median } from './stats';
import {
  benchTrainStep,
  defaultBenchCacheDir,
  prepareTrainStepBench,
  type TrainStepBenchOptions,
  type TrainStepBenchResult,
} from './train-step';

/** Targets of the comparison: at most 0.8× PyTorch's time per step and no more peak memory. */
export const COMPARE_TARGETS = { timeRatio: 0.8, memoryRatio: 1 } as const;

/** PyTorch's own figures from tools/bench_torch_step.py. */
export interface TorchStepResult {
  medianMs: number;
  p90Ms: number;
  minMs: number;
  peakRssMB: number;
  runtime: string;
}

/** The step both sides time alike, on builder-made ResNet-FPN graphs. */
export interface CompareOptions extends Omit<
  TrainStepBenchOptions,
  'teacher' | 'student' | 'levels' | 'optimizer' | 'onStep'
> {
  /** Builder teacher and student architectures (default resnet101-fpn → resnet50-fpn). */
  teacherArch?: string;
  studentArch?: string;
  /** Alternating rounds of both (medians over rounds; default 1). */
  rounds?: number;
  /** Time in this process instead of a fresh child process. */
  inProcess?: boolean;
}

/** A timed run as reported: everything but the per-step times. */
export type TrainStepRun = Omit<TrainStepBenchResult, 'stepsMs'>;

/** Both sides' figures, their ratios and whether the targets are met. */
export interface CompareSummary {
  rounds: number;
  ours: { medianMs: number; peakRssMB: number; runs: TrainStepRun[] };
  pytorch: { medianMs: number; peakRssMB: number; runs: TorchStepResult[] };
  timeRatio: number;
  memoryRatio: number;
  targets: typeof COMPARE_TARGETS;
  met: boolean;
  /** 1-minute load average before each round and after the last. */
  loadAverage1m: number[];
  cpus: number;
}

/** Runs `command` with `args` and returns its stdout; stderr passes through. */
function runChild(command: readonly string[], args: readonly string[], what: string): Promise<string> {
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
export function lastJson<T>(text: string, what: string): T {
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

/** The compiled child entry (dist/bench/timed-child.js); absent when running from TypeScript sources. */
function childEntry(): string | undefined {
  const file = path.join(__dirname, 'timed-child.js');
  return fs.existsSync(file) ? file : undefined;
}

/**
 * Times a train step: prepares in this process (artifact generation is a one-off cost the figures leave
 * out), then times in a fresh child process so its peak RSS is that of training alone; in this process
 * when asked, when the graphs are models rather than files, or when running from sources.
 */
export async function timeTrainStep(
  options: TrainStepBenchOptions,
  run: { inProcess?: boolean } = {},
): Promise<TrainStepBenchResult> {
  const entry = childEntry();
  const files = typeof options.teacher === 'string' && typeof options.student === 'string';
  if (run.inProcess || !entry || !files || options.onStep) return benchTrainStep(options);
  await prepareTrainStepBench(options);
  const out = await runChild(
    [process.execPath, entry],
    [JSON.stringify(options)],
    'the timed benchmark process',
  );
  return lastJson<TrainStepBenchResult>(out, 'the timed benchmark process');
}

/**
 * Builder-made teacher and student (torchvision's fresh initialization: identity frozen batch-norm),
 * saved once into `cacheDir`/models with their weights in external-data files.
 */
export function builderBenchGraphs(
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

/** The train-step options of a compare run: its builder graphs (made once in the cache) and settings. */
export function compareStepOptions(options: CompareOptions): TrainStepBenchOptions {
  const { teacherArch, studentArch, rounds: _r, inProcess: _i, ...step } = options;
  const size = options.size ?? 224;
  const cacheDir = options.cacheDir ?? defaultBenchCacheDir();
  const graphs = builderBenchGraphs(
    cacheDir,
    teacherArch ?? 'resnet101-fpn',
    studentArch ?? 'resnet50-fpn',
    size,
  );
  return { ...step, ...graphs };
}

function torchScript(): string {
  const file = path.resolve(__dirname, '..', '..', 'tools', 'bench_torch_step.py');
  if (!fs.existsSync(file)) {
    throw new RlpkdError(`the PyTorch reference script '${file}' is missing`, {
      hint: 'reinstall rl-pyramidkd (its package includes tools/)',
    });
  }
  return file;
}

/** The Python that runs the reference (one with torch and torchvision), or a clear error. */
export function torchPython(): string {
  const py = findTorchPython();
  if (!py) {
    throw new RlpkdError('no Python with PyTorch and torchvision found for the reference run', {
      hint: 'install python3-torch and python3-torchvision (Debian), or set RLPKD_PYTHON to such an interpreter',
    });
  }
  return py;
}

/** The same step in PyTorch eager (tools/bench_torch_step.py), in a child process. */
async function runTorchStep(options: CompareOptions): Promise<TorchStepResult> {
  const args: [string, string | number][] = [
    ['--teacher', (options.teacherArch ?? 'resnet101-fpn').replace(/-fpn$/, '')],
    ['--student', (options.studentArch ?? 'resnet50-fpn').replace(/-fpn$/, '')],
    ['--batch', options.batch ?? 2],
    ['--size', options.size ?? 224],
    ['--steps', options.steps ?? 10],
    ['--warmup', options.warmup ?? 2],
    ['--threads', options.threads ?? os.cpus().length],
  ];
  const out = await runChild(
    [torchPython(), torchScript()],
    args.flatMap(([flag, value]) => [flag, String(value)]),
    'the PyTorch reference',
  );
  return lastJson<TorchStepResult>(out, 'the PyTorch reference');
}

/**
 * Times the train step and PyTorch's in alternating rounds and summarizes: medians over rounds, the
 * largest peak RSS of each side, their ratios and whether COMPARE_TARGETS are met.
 */
export async function compareWithPytorch(options: CompareOptions = {}): Promise<CompareSummary> {
  const step = compareStepOptions(options);
  torchPython(); // fail early, before minutes of work
  const rounds = options.rounds ?? 1;
  const ours: TrainStepBenchResult[] = [];
  const torch: TorchStepResult[] = [];
  const loads: number[][] = [];
  const timeOurs = async (): Promise<void> => {
    ours.push(await timeTrainStep(step, { inProcess: options.inProcess }));
  };
  for (let r = 0; r < rounds; r++) {
    loads.push(os.loadavg());
    // Alternate who goes first, so a change in machine load hits both alike.
    if (r % 2 === 0) {
      await timeOurs();
      torch.push(await runTorchStep(options));
    } else {
      torch.push(await runTorchStep(options));
      await timeOurs();
    }
  }
  loads.push(os.loadavg());
  return summarizeComparison(
    ours,
    torch,
    loads.map((l) => l[0]),
    os.cpus().length,
  );
}

/**
 * The comparison of alternating rounds: each side's median over rounds of its median step time and its
 * largest peak RSS, their ratios, and whether COMPARE_TARGETS are met.
 */
export function summarizeComparison(
  ours: readonly TrainStepBenchResult[],
  torch: readonly TorchStepResult[],
  loadAverage1m: readonly number[],
  cpus: number,
): CompareSummary {
  const oursMs = median(ours.map((o) => o.medianMs));
  const torchMs = median(torch.map((t) => t.medianMs));
  const oursMB = Math.max(...ours.map((o) => o.peakRssMB));
  const torchMB = Math.max(...torch.map((t) => t.peakRssMB));
  const timeRatio = oursMs / torchMs;
  const memoryRatio = oursMB / torchMB;
  return {
    rounds: ours.length,
    ours: { medianMs: oursMs, peakRssMB: oursMB, runs: ours.map(({ stepsMs: _s, ...o }) => o) },
    pytorch: { medianMs: torchMs, peakRssMB: torchMB, runs: [...torch] },
    timeRatio,
    memoryRatio,
    targets: COMPARE_TARGETS,
    met: timeRatio <= COMPARE_TARGETS.timeRatio && memoryRatio <= COMPARE_TARGETS.memoryRatio,
    loadAverage1m: loadAverage1m.map((l) => Number(l.toFixed(2))),
    cpus,
  };
}
