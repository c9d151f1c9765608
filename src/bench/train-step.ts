/**
 * The training-step benchmark of issue 3: one feature-distillation step exactly as `rlpkd train` runs it —
 * `StudentDistiller.step` (the teacher forward, then the student's fused step: forward, the masked,
 * weighted per-level MSE to the teacher's features, backward, AdamW, in place), without the teacher
 * feature cache so every step runs the teacher as the PyTorch reference does — timed per step, with the
 * process's true peak resident set (VmHWM) read from /proc.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputFileError, RlpkdError } from '../errors';
import { classifyParameters } from '../analysis/parameters';
import { findPyramidLevels } from '../analysis/pyramid';
import type { LevelPair } from '../distill/level-matching';
import { distillerArtifacts, distillerArtifactsDir, StudentDistiller } from '../distill/student-distiller';
import { loadModel, modelToBytes, saveModel, writeFileAtomic } from '../onnx/model-io';
import type { Dim, OnnxModel } from '../onnx/types';
import { frozenGraphFile } from '../runtime/optimized-model';
import {
  collectGarbage,
  resolveExecutionProvider,
  type ExecutionProviderName,
  type ResolvedExecutionProvider,
} from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import { ARTIFACTS_FORMAT_VERSION, type ArtifactManifest } from '../training/artifacts';
import { initialCheckpoint } from '../training/checkpoint';
import type { AdamWConfig, SgdConfig } from '../training/optimizers';
import { contentHash, fileIdentity } from '../util/content-hash';
import { createRng } from '../util/rng';
import { median } from './stats';

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
  optimizer?: AdamWConfig | SgdConfig;
  /** Folder caching prepared benchmarks (default: rlpkd-bench-cache under the OS temp dir). */
  cacheDir?: string;
  /**
   * onnxruntime graph optimization for the teacher (default 'all'). On the CPU, 'all' (the NCHWc layout
   * transform: ~30% faster forward) is applied once and saved in the cache (src/runtime/optimized-model.ts),
   * so the timed process loads only the reordered weights.
   */
  teacherOptimization?: 'basic' | 'extended' | 'all';
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
  /** Median of the teacher forward (StudentDistiller.prepare) and of the student step alone. */
  teacherMedianMs: number;
  studentMedianMs: number;
  stepsMs: number[];
  /** Preparation (or cache lookup) and session creation. */
  setupMs: number;
  /** True when the prepared artifacts came from the cache. */
  artifactsCached: boolean;
  /** Loss of the first and the last step. */
  firstLoss: number;
  lastLoss: number;
  levels: string[];
  trainableParameters: number;
  batch: number;
  size: number;
  executionProvider: ResolvedExecutionProvider;
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

function positiveInt(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RlpkdError(`bench train-step: ${what} must be an integer ≥ 1, got ${value}`);
  return value;
}

/** The levels to distil: the given ones, or every output of the student. */
function resolveLevels(student: OnnxModel, levels: readonly string[] | undefined): string[] {
  const studentOut = student.graph.outputs.map((o) => o.name);
  const chosen = levels ? [...levels] : studentOut;
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
export function imageInput(model: OnnxModel, size: number, what: string): { name: string; shape: Dim[] } {
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

/** Default cache folder for prepared benchmarks. */
export function defaultBenchCacheDir(): string {
  return path.join(os.tmpdir(), 'rlpkd-bench-cache');
}

/** What a prepared benchmark left in its cache folder; all a measuring process needs. */
export interface PreparedTrainStep {
  /** The StudentDistiller's artifacts (distillerArtifacts output). */
  artifactsDir: string;
  /** The student's initial trainable parameters, raw little-endian float32 in manifest order. */
  parametersFile: string;
  /** Teacher graph with its weights in an external-data side file (already optimized when teacherLevel is 'basic'). */
  teacherFile: string;
  /** onnxruntime optimization level to load the teacher file with. */
  teacherLevel: 'basic' | 'extended' | 'all';
  studentInput: string;
  teacherInput: string;
  levels: string[];
  /** The distilled levels, student output to teacher output of the same name. */
  pairs: LevelPair[];
  /** True when this call found everything cached. */
  cached: boolean;
}

const PREPARED_FILE = 'prepared.json';
const PARAMETERS_FILE = 'initial-parameters.f32';
/** Bumped when what prepare writes changes meaning. */
const PREPARE_FORMAT = 2;

/** Identity of a graph for the cache key: a file by path, size and time (see fileIdentity); a model by its bytes. */
function graphIdentity(graph: OnnxModel | string): string {
  if (typeof graph === 'string') return `file:${fileIdentity(graph)}`;
  return `model:${contentHash([modelToBytes(graph)])}`;
}

function loadGraph(graph: OnnxModel | string): OnnxModel {
  return typeof graph === 'string' ? loadModel(graph) : graph;
}

/**
 * The teacher as a file whose weights sit in an ONNX external-data side file: onnxruntime maps those
 * into memory instead of parsing them out of the protobuf, which leaves a copy's worth of freed heap
 * behind. A file that already has external data is used as it is.
 */
function leanTeacherFile(teacher: OnnxModel | string, dir: string): string {
  if (typeof teacher === 'string' && fs.existsSync(`${teacher}.data`)) return teacher;
  const file = path.join(dir, 'teacher.onnx');
  saveModel(loadGraph(teacher), file, { externalDataThreshold: 1024 });
  return file;
}

/**
 * Everything the timed run needs, generated once into a cache folder keyed by the graphs and settings:
 * the student's training artifacts, its initial parameters as one raw file, and a lean copy of the
 * teacher. A warm cache is found without loading either graph; a cold one costs the artifact
 * generation (seconds, and memory the timed run should not inherit: run this in another process).
 */
export async function prepareTrainStepBench(options: TrainStepBenchOptions): Promise<PreparedTrainStep> {
  const prepared = await prepareArtifacts(options);
  const level = options.teacherOptimization ?? 'all';
  if (level !== 'all') return { ...prepared, teacherLevel: level };
  const teacher = await frozenGraphFile(prepared.teacherFile, resolveExecutionProvider(options.ep ?? 'cpu'), {
    cacheDir: path.join(options.cacheDir ?? defaultBenchCacheDir(), 'optimized'),
    ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
    // A timed teacher must be the one asked for: no quiet fallback to optimizing at load.
    onFallback: (why) => {
      throw new RlpkdError(`bench train-step: could not optimize the teacher: ${why}`, {
        hint: 'pass --teacher-opt extended',
      });
    },
  });
  return { ...prepared, teacherFile: teacher.file, teacherLevel: teacher.graphOptimizationLevel };
}

/** The student's artifacts and initial parameters and the lean teacher file, cached by graphs and settings. */
async function prepareArtifacts(
  options: TrainStepBenchOptions,
): Promise<Omit<PreparedTrainStep, 'teacherLevel'>> {
  const size = positiveInt(options.size ?? 224, 'size');
  const optimizer = options.optimizer ?? { type: 'adamw', lr: 1e-4, weightDecay: 1e-2 };
  const key = contentHash(
    [
      JSON.stringify({
        format: PREPARE_FORMAT,
        artifacts: ARTIFACTS_FORMAT_VERSION,
        student: graphIdentity(options.student),
        teacher: graphIdentity(options.teacher),
        size,
        levels: options.levels ?? null,
        optimizer,
      }),
    ],
    20,
  );
  const dir = path.join(options.cacheDir ?? defaultBenchCacheDir(), key);
  const manifestFile = path.join(dir, PREPARED_FILE);
  if (fs.existsSync(manifestFile)) {
    try {
      const p = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as Omit<PreparedTrainStep, 'teacherLevel'>;
      if (
        [p.parametersFile, p.teacherFile, path.join(p.artifactsDir, 'manifest.json')].every((f) =>
          fs.existsSync(f),
        )
      )
        return { ...p, cached: true };
    } catch {
      // damaged: prepare again below
    }
  }
  fs.mkdirSync(dir, { recursive: true });
  const source = loadGraph(options.student);
  const levels = resolveLevels(source, options.levels);
  const input = imageInput(source, size, 'student');
  const teacherModel = loadGraph(options.teacher);
  const teacherInput = imageInput(teacherModel, size, 'teacher');
  const pairs = pairLevelsByName(teacherModel, source, levels, size);
  const teacherFile = leanTeacherFile(options.teacher, dir);
  // The trainable set and untying `rlpkd train` uses (classifyParameters), then the distiller's artifacts.
  const classified = classifyParameters(source);
  const model = classified.model;
  const artifactsDir = distillerArtifactsDir(dir, 'all');
  const artifacts = distillerArtifacts(
    {
      student: model,
      imageInput: input.name,
      pairs,
      loss: 'mse',
      trainable: classified.trainable.map((e) => e.name),
      optimizer,
    },
    artifactsDir,
  );
  const byName = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const chunks = artifacts.manifest.parameters.map((p) => {
    const t = byName.get(p.name) ?? byName.get(artifacts.manifest.untied[p.name] ?? '');
    if (!t || !(t.data instanceof Float32Array)) {
      throw new RlpkdError(`bench train-step: the student has no float32 initializer for '${p.name}'`);
    }
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  });
  const parametersFile = path.join(dir, PARAMETERS_FILE);
  writeFileAtomic(parametersFile, chunks);
  const prepared: Omit<PreparedTrainStep, 'teacherLevel'> = {
    artifactsDir,
    parametersFile,
    teacherFile,
    studentInput: input.name,
    teacherInput: teacherInput.name,
    levels,
    pairs,
    cached: false,
  };
  writeFileAtomic(manifestFile, `${JSON.stringify(prepared, null, 2)}\n`);
  return prepared;
}

/** Student output `l` paired with the teacher output of the same name, for each distilled level. */
export function pairLevelsByName(
  teacher: OnnxModel,
  student: OnnxModel,
  levels: readonly string[],
  size: number,
): LevelPair[] {
  const missing = levels.filter((l) => !teacher.graph.outputs.some((o) => o.name === l));
  if (missing.length) {
    throw new RlpkdError(
      `bench train-step: the teacher has no output ${missing.map((m) => `'${m}'`).join(', ')}`,
      {
        hint: `its outputs: ${teacher.graph.outputs.map((o) => o.name).join(', ')}; export both graphs with the same level names`,
      },
    );
  }
  const at = { height: size, width: size };
  const studentLevels = findPyramidLevels(student, at);
  const teacherLevels = findPyramidLevels(teacher, at);
  return levels.map((l) => {
    const s = studentLevels.find((x) => x.output === l);
    const t = teacherLevels.find((x) => x.output === l);
    if (!s || !t)
      throw new RlpkdError(`bench train-step: output '${l}' is not a pyramid level of both graphs`);
    if (s.channels !== t.channels || s.height !== t.height || s.width !== t.width) {
      throw new RlpkdError(
        `bench train-step: level '${l}' is ${t.channels}×${t.height}×${t.width} in the teacher but ${s.channels}×${s.height}×${s.width} in the student`,
      );
    }
    return { name: s.name, stride: s.stride, student: s, teacher: t, studentTensor: l };
  });
}

/**
 * Opens the StudentDistiller on prepared artifacts without reading their checkpoint (three model-sized
 * tensors): zero state, then the initial parameters straight from their raw file. The student's
 * long-lived buffers come first, then the teacher (memory arena off, as in training).
 */
async function openDistiller(
  prepared: PreparedTrainStep,
  options: TrainStepBenchOptions,
): Promise<StudentDistiller> {
  const manifest = JSON.parse(
    fs.readFileSync(path.join(prepared.artifactsDir, 'manifest.json'), 'utf8'),
  ) as ArtifactManifest;
  const zeros: Record<string, HostTensor> = {};
  for (const p of manifest.parameters) {
    zeros[p.name] = { data: new Float32Array(p.dims.reduce((a, d) => a * d, 1)), dims: p.dims };
  }
  const distiller = await StudentDistiller.create({
    artifacts: prepared.artifactsDir,
    checkpoint: initialCheckpoint(zeros, manifest.optimizer),
    teacherSession: { file: prepared.teacherFile, graphOptimizationLevel: prepared.teacherLevel },
    imageInput: prepared.studentInput,
    teacherImageInput: prepared.teacherInput,
    pairs: prepared.pairs,
    loss: 'mse',
    trainable: manifest.parameters.map((p) => p.name),
    optimizer: manifest.optimizer,
    executionProvider: options.ep ?? 'cpu',
    ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
  });
  // Read straight into one float32 buffer (no intermediate Buffer), copied once into the session.
  const values = new Float32Array(distiller.session.getParametersSize());
  const bytes = new Uint8Array(values.buffer);
  const fd = fs.openSync(prepared.parametersFile, 'r');
  let read = 0;
  try {
    for (let n = 1; n > 0 && read < bytes.byteLength; read += n) {
      n = fs.readSync(fd, bytes, read, bytes.byteLength - read, read);
    }
    if (read !== bytes.byteLength || fs.fstatSync(fd).size !== bytes.byteLength) {
      throw new InputFileError(
        `'${prepared.parametersFile}' holds ${fs.fstatSync(fd).size} bytes, expected ${bytes.byteLength}`,
        { hint: 'delete the benchmark cache folder and run again' },
      );
    }
  } catch (err) {
    await distiller.release();
    throw err;
  } finally {
    fs.closeSync(fd);
  }
  await distiller.session.loadParametersBuffer(values);
  return distiller;
}

/**
 * Times one teacher-forward + student fused step (see module doc); the JS thread is busy throughout.
 * Prepares (or finds cached) everything first; for a peak memory that excludes the one-off artifact
 * generation, call prepareTrainStepBench in another process beforehand (the CLI does).
 */
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

  const prepared = await prepareTrainStepBench(options);
  const levels = prepared.levels;
  const distiller = await openDistiller(prepared, options);
  tracker.sample();
  const trainableParameters = distiller.session.getParametersSize();
  const setupMs = performance.now() - t0;

  const rng = createRng('bench-train-step');
  const images: HostTensor = {
    data: Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()),
    dims: [batch, 3, size, size],
  };
  const mask = new Float32Array(batch * levels.length).fill(1);
  const weights = new Float32Array(levels.length).fill(1);

  collectGarbage();
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
      const taught = await distiller.prepare({ images });
      const b = performance.now();
      const r = await distiller.step(taught, mask, weights);
      const c = performance.now();
      tracker.sample();
      if (i === 0) firstLoss = r.loss;
      lastLoss = r.loss;
      const timed = i >= warmup;
      if (timed) {
        stepsMs.push(c - a);
        teacherMs.push(b - a);
        studentMs.push(c - b);
      }
      options.onStep?.(i + 1, c - a, !timed);
    }
  } finally {
    await distiller.release();
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
    executionProvider: resolveExecutionProvider(ep),
    threads: options.threads ?? 'default',
  };
}
