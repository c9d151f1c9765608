/**
 * The training-step benchmark of issue 3: one feature-distillation step as the product runs it — a
 * teacher forward session, then the student's fused step graph (forward, the per-level MSE to the
 * teacher's features, backward, AdamW; parameters and moments in and out) through TrainingSession —
 * timed per step, with the process's true peak resident set (VmHWM) read from /proc.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RlpkdError } from '../errors';
import { loadModel } from '../onnx/model-io';
import type { Dim, OnnxModel } from '../onnx/types';
import { collectGarbage, createSession, type ExecutionProviderName, type GraphSession } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import { generateArtifacts, type ArtifactManifest } from '../training/artifacts';
import { initialCheckpoint } from '../training/checkpoint';
import type { OptimizerConfig } from '../training/optimizers';
import { TrainingSession } from '../training/training-session';
import { createRng } from '../util/rng';

/** What to time: the two graphs, the batch, and how many steps. */
export interface TrainStepBenchOptions {
  /** Teacher ONNX graph (a path or a model); its outputs named like the student's levels are the targets. */
  teacher: OnnxModel | string;
  /** Student ONNX graph (a path or a model). */
  student: OnnxModel | string;
  /** Batch size (default 2). */
  batch?: number;
  /** Input height and width (default 224); must agree with the graphs' static spatial sizes. */
  size?: number;
  /** Timed steps (default 10). */
  steps?: number;
  /** Untimed steps first (default 2). */
  warmup?: number;
  /** Execution provider (default cpu). */
  ep?: ExecutionProviderName;
  /** onnxruntime intra-op threads per session (default: one per core). */
  threads?: number;
  /** Student outputs distilled (default: every student output the teacher also has, e.g. p2..p5). */
  levels?: string[];
  /** Default AdamW lr 1e-4, weight decay 1e-2 (the PyTorch reference's settings). */
  optimizer?: OptimizerConfig;
  /**
   * Folder caching the generated training artifacts (default: a folder under the OS temp dir keyed by
   * content hash); `false` keeps them in memory only.
   */
  artifactsDir?: string | false;
  /** Called after each step (progress output). */
  onStep?: (step: number, ms: number, warmup: boolean) => void;
}

/** What one run measured. */
export interface TrainStepBenchResult {
  medianMs: number;
  p90Ms: number;
  minMs: number;
  /** Peak resident set of the whole process (VmHWM), in MiB; sampled RSS where /proc is missing. */
  peakRssMB: number;
  /** Peak resident set during the timed and warm-up steps only (VmHWM reset after setup), when the OS allows. */
  stepPeakRssMB?: number;
  /** Resident set after setup, before the first step. */
  setupRssMB: number;
  /** Median of the teacher forward and of the student fused step alone. */
  teacherMedianMs: number;
  studentMedianMs: number;
  stepsMs: number[];
  /** Artifact generation (or cache load) and session creation. */
  setupMs: number;
  artifactsCached: boolean;
  /** Loss of the first and the last step. */
  firstLoss: number;
  lastLoss: number;
  levels: string[];
  trainableParameters: number;
  batch: number;
  size: number;
  executionProvider: 'cpu' | 'cuda';
  threads: number | 'default';
}

const MiB = 1024 * 1024;

/** VmHWM / VmRSS from /proc/self/status in MiB, or undefined off Linux. */
export function readProcMemory(): { hwmMB: number; rssMB: number } | undefined {
  try {
    const text = fs.readFileSync('/proc/self/status', 'utf8');
    const kb = (key: string): number | undefined => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const hwm = kb('VmHWM');
    const rss = kb('VmRSS');
    if (hwm === undefined || rss === undefined) return undefined;
    return { hwmMB: hwm / 1024, rssMB: rss / 1024 };
  } catch {
    return undefined;
  }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0); false when not allowed. */
function resetPeakRss(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Tracks the peak RSS: VmHWM where /proc has it, else the largest sample of process.memoryUsage().rss. */
class PeakTracker {
  private sampled = 0;

  sample(): void {
    this.sampled = Math.max(this.sampled, process.memoryUsage().rss / MiB);
  }

  peak(): number {
    this.sample();
    return readProcMemory()?.hwmMB ?? this.sampled;
  }
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.round(q * (sorted.length - 1)))];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function positiveInt(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RlpkdError(`bench train-step: ${what} must be an integer ≥ 1, got ${value}`);
  return value;
}

/** The levels to distil: the given ones, or every output of the student. */
function resolveLevels(student: OnnxModel, levels: string[] | undefined): string[] {
  const studentOut = student.graph.outputs.map((o) => o.name);
  const chosen = levels ?? studentOut;
  for (const l of chosen) {
    if (!studentOut.includes(l)) {
      throw new RlpkdError(`bench train-step: the student has no output '${l}'`, {
        hint: `its outputs: ${studentOut.join(', ')}`,
      });
    }
  }
  return chosen;
}

/** The graph's one data input (an input that is not an initializer); its spatial sizes must be `size`. */
function imageInput(model: OnnxModel, size: number, what: string): { name: string; shape: Dim[] } {
  const inits = new Set(model.graph.initializers.map((t) => t.name));
  const input = model.graph.inputs.find((v) => !inits.has(v.name));
  if (!input) throw new RlpkdError(`bench train-step: the ${what} graph has no data input`);
  const shape = input.shape;
  if (!shape || shape.length !== 4) {
    throw new RlpkdError(`bench train-step: the ${what} input '${input.name}' must be [N, C, H, W]`);
  }
  for (const d of shape.slice(2)) {
    if (typeof d === 'number' && d !== size) {
      throw new RlpkdError(
        `bench train-step: the ${what} input '${input.name}' is [${shape.join(', ')}], not ${size}×${size}`,
        { hint: `pass --size ${d}, or export the graph at ${size}×${size}` },
      );
    }
  }
  return { name: input.name, shape };
}

function defaultArtifactsDir(): string {
  return path.join(os.tmpdir(), 'rlpkd-bench-artifacts');
}

/** The student's trainable parameters as the model holds them (views, no copies): the initial checkpoint. */
function initialParameters(model: OnnxModel, manifest: ArtifactManifest): Record<string, HostTensor> {
  const byName = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const out: Record<string, HostTensor> = {};
  for (const p of manifest.parameters) {
    const t = byName.get(p.name) ?? byName.get(manifest.untied[p.name] ?? '');
    if (!t || !(t.data instanceof Float32Array)) {
      throw new RlpkdError(`bench train-step: the student has no float32 initializer for '${p.name}'`);
    }
    out[p.name] = { data: t.data, dims: p.dims };
  }
  return out;
}

/** What the timed loop needs of the student; everything else (the model, the graphs) is left to the GC. */
interface PreparedStudent {
  session: TrainingSession;
  input: string;
  levels: string[];
  cached: boolean;
}

/**
 * Generates (or finds cached) the student's training artifacts and opens a TrainingSession on them,
 * starting from the model's own weights, so neither the graphs built in JS nor the zero optimizer state
 * of the artifacts' checkpoint file stay in memory.
 */
async function prepareStudent(options: TrainStepBenchOptions, size: number): Promise<PreparedStudent> {
  const model = typeof options.student === 'string' ? loadModel(options.student) : options.student;
  const levels = resolveLevels(model, options.levels);
  const input = imageInput(model, size, 'student');
  const optimizer = options.optimizer ?? { type: 'adamw', lr: 1e-4, weightDecay: 1e-2 };
  const cacheDir =
    options.artifactsDir === false ? undefined : (options.artifactsDir ?? defaultArtifactsDir());
  const artifacts = generateArtifacts(model, {
    loss: { type: 'distillation', levels: levels.map((l) => ({ student: l })), perSample: false },
    optimizer,
    inputShapes: { [input.name]: [input.shape[0] ?? 'batch', input.shape[1] ?? 3, size, size] },
    ...(cacheDir ? { outDir: path.join(cacheDir, artifactsFolderName(model)) } : {}),
  });
  const session = await TrainingSession.create({
    artifacts: artifacts.dir ?? artifacts,
    checkpoint: initialCheckpoint(initialParameters(model, artifacts.manifest), optimizer),
    executionProvider: options.ep ?? 'cpu',
    ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
  });
  return { session, input: input.name, levels, cached: artifacts.cached === true };
}

/** A cache folder per student graph (its name and size), so benchmarks of several graphs do not evict each other. */
function artifactsFolderName(model: OnnxModel): string {
  const safe = (model.graph.name || 'student').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  const n = model.graph.initializers.reduce((a, t) => a + t.data.length, 0);
  return `${safe}-${model.graph.nodes.length}n-${n}p`;
}

/** Times one teacher-forward + student fused step (see module doc); the JS thread is busy throughout. */
export async function benchTrainStep(options: TrainStepBenchOptions): Promise<TrainStepBenchResult> {
  const batch = positiveInt(options.batch ?? 2, 'batch');
  const size = positiveInt(options.size ?? 224, 'size');
  const steps = positiveInt(options.steps ?? 10, 'steps');
  const warmup = options.warmup ?? 2;
  if (!Number.isInteger(warmup) || warmup < 0)
    throw new RlpkdError(`bench train-step: warmup must be ≥ 0, got ${warmup}`);
  const ep = options.ep ?? 'cpu';
  const tracker = new PeakTracker();
  const t0 = performance.now();

  // Student first: its setup is the larger transient, and it is over before the teacher loads.
  const prepared = await prepareStudent(options, size);
  const { session: student, levels } = prepared;
  tracker.sample();
  let teacher: GraphSession;
  try {
    teacher = await createSession(options.teacher, {
      executionProvider: ep,
      ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
    });
  } catch (err) {
    await student.release();
    throw err;
  }
  const teacherInput = teacher.inputNames[0];
  const missing = levels.filter((l) => !teacher.outputNames.includes(l));
  if (missing.length) {
    await teacher.release();
    await student.release();
    throw new RlpkdError(
      `bench train-step: the teacher has no output ${missing.map((m) => `'${m}'`).join(', ')}`,
      {
        hint: `its outputs: ${teacher.outputNames.join(', ')}; export both graphs with the same level names`,
      },
    );
  }
  const studentInput = prepared.input;
  const trainableParameters = student.getParametersSize();
  const setupMs = performance.now() - t0;

  const rng = createRng('bench-train-step');
  const images: HostTensor = {
    data: Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()),
    dims: [batch, 3, size, size],
  };
  const mask: HostTensor = {
    data: new Float32Array(batch * levels.length).fill(1),
    dims: [batch, levels.length],
  };
  const weights: HostTensor = { data: new Float32Array(levels.length).fill(1), dims: [levels.length] };
  const lossName = student.manifest.loss;

  collectGarbage(); // the student model and the graphs built for it are garbage now
  const setupMem = readProcMemory();
  const setupRssMB = setupMem?.rssMB ?? process.memoryUsage().rss / MiB;
  const setupPeakMB = setupMem?.hwmMB ?? tracker.peak();
  const canReset = resetPeakRss();
  const stepsMs: number[] = [];
  const teacherMs: number[] = [];
  const studentMs: number[] = [];
  let firstLoss = NaN;
  let lastLoss = NaN;
  try {
    for (let i = 0; i < warmup + steps; i++) {
      const a = performance.now();
      const feats = await teacher.run({ [teacherInput]: images }, levels);
      const b = performance.now();
      const feeds: Record<string, HostTensor> = {
        [studentInput]: images,
        'distill.mask': mask,
        'distill.weights': weights,
      };
      for (const l of levels) feeds[`teacher.${l}`] = feats[l];
      const r = await student.fusedStep(feeds);
      const c = performance.now();
      tracker.sample();
      const loss = (r.outputs[lossName].data as Float32Array)[0];
      if (i === 0) firstLoss = loss;
      lastLoss = loss;
      const timed = i >= warmup;
      if (timed) {
        stepsMs.push(c - a);
        teacherMs.push(b - a);
        studentMs.push(c - b);
      }
      options.onStep?.(i + 1, c - a, !timed);
    }
  } finally {
    await teacher.release();
    await student.release();
  }
  const sorted = [...stepsMs].sort((x, y) => x - y);
  const endPeakMB = tracker.peak();
  return {
    medianMs: median(stepsMs),
    p90Ms: percentile(sorted, 0.9),
    minMs: sorted[0],
    peakRssMB: Math.max(setupPeakMB, endPeakMB),
    ...(canReset ? { stepPeakRssMB: endPeakMB } : {}),
    setupRssMB,
    teacherMedianMs: median(teacherMs),
    studentMedianMs: median(studentMs),
    stepsMs,
    setupMs,
    artifactsCached: prepared.cached,
    firstLoss,
    lastLoss,
    levels,
    trainableParameters,
    batch,
    size,
    executionProvider: teacher.executionProvider,
    threads: options.threads ?? 'default',
  };
}
