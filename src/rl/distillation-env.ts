/**
 * The level-selection MDP (src/rl/README.md, "The MDP as implemented") as a VecEnv. An episode is one image; its steps are the student's
 * pyramid levels in a configured order (sequential mode; one step deciding every level in independent
 * mode). `ParallelDistillationEnv` holds N images: when their episodes end it does ONE batched student
 * update through the engine (TrainingSession on the masked distillation loss, mask[n, l] = level l was
 * selected for image n), measures each image's all-level distillation loss before and after, and pays
 *   reward = (L_before − L_after)/L_before + λ·(1 − used_cost)
 * on the last step (0 before). L is the fixed yardstick Σ_l d(S_l, T_l) over ALL levels, never the
 * selected ones, with d the distance the student trains on (`loss`: mean((S − T)²) by default, or pkd /
 * cwd, as the distillation trainer's). Phase 2 rolls the update back (parameters and optimizer state restored bit for bit);
 * phase 3 keeps it.
 *
 * State (dims from the student): [avg-pool ‖ max-pool of the coarsest level (2·C), avg-pool of each level
 * (Σ C_l), L_before / L_ref (1), levels selected so far (L, decision order), budget left (1)] — 1542 for
 * 4 levels × 256 channels. L_ref is the mean all-level loss of the first batch (or `lossReference`).
 */
import { computeCostModel } from '../analysis/cost-model';
import {
  findPyramidLevels,
  imageInput,
  resolveInputSize,
  type InputSize,
  type PyramidLevel,
} from '../analysis/pyramid';
import { RlpkdError } from '../errors';
import type { OnnxModel } from '../onnx/types';
import type { GraphFile } from '../runtime/optimized-model';
import { createSession, type ExecutionProviderName, type GraphSession } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import { generateArtifacts } from '../training/artifacts';
import type { DistillLossKind } from '../training/level-distances';
import type { LrScheduleConfig } from '../training/lr-schedules';
import type { OptimizerConfig } from '../training/optimizers';
import { TrainingSession, type TrainingSnapshot } from '../training/training-session';
import { Rng, type Seed } from '../util/rng';
import {
  recordLevelActions,
  type ActionMode,
  type EpisodeSummary,
  type StepInfo,
  type VecEnv,
  type VecResetResult,
  type VecStepResult,
} from './vec-env';

/** Supplies batches of images [n, C, H, W] (float32, already preprocessed for the graphs). */
export interface ImageBatchSource {
  next(batchSize: number): Promise<HostTensor>;
}

/** What an episode of the distillation MDP reports on its last step. */
export interface DistillationEpisodeSummary extends EpisodeSummary {
  /** All-level distillation loss of the image before the update. */
  lossBefore: number;
  /** ... and after it (before any roll-back). */
  lossAfter: number;
  /** The image's loss over its selected levels, the part of the batched update it contributed. */
  distillLoss: number;
  /** (lossBefore − lossAfter)/lossBefore. */
  qualityReward: number;
  /** λ·(1 − usedCost). */
  efficiencyReward: number;
  lambda: number;
  phase: 2 | 3;
}

export interface DistillationStepInfo extends StepInfo {
  episode?: DistillationEpisodeSummary;
}

export interface DistillationEnvOptions {
  teacher: OnnxModel;
  /** Load the teacher session from this file (e.g. its onnxruntime-optimized form) instead of `teacher`. */
  teacherSession?: GraphFile;
  student: OnnxModel;
  images: ImageBatchSource;
  numEnvs: number;
  /** 'sequential' (default): one level per step; 'independent': all levels in one step. */
  actionMode?: ActionMode;
  /** 2: the student update is rolled back after measuring; 3: it is kept (default 2). */
  phase?: 2 | 3;
  /** Fixed budget, or a [low, high] range sampled per episode (default 1). */
  budget?: number | [number, number];
  /** λ of the efficiency term (default 0.5). */
  lambdaTradeoff?: number;
  /** Decision order by level name (default: the student's levels finest first, P2..P5). */
  levelOrder?: string[];
  /** Per-level costs in decision order; default: the cost model's distillation-cost shares. */
  costs?: number[];
  /** Input size for the cost model and level detection (default: the student's static input size). */
  inputSize?: InputSize;
  /** Student optimizer (default AdamW lr 1e-4, weight decay 0). */
  optimizer?: OptimizerConfig;
  lrSchedule?: LrScheduleConfig;
  maxGradNorm?: number;
  /** Per-level weights of the distillation loss (default 1 each). */
  levelWeights?: number[];
  /** Per-level distance of the loss the student trains on and the reward measures (default 'mse'). */
  loss?: DistillLossKind;
  /** Temperature of the 'cwd' distance (default 1). */
  cwdTau?: number;
  /** Divides the loss feature of the state (default: mean all-level loss of the first batch). */
  lossReference?: number;
  /** Trainable student initializers (default: the engine's choice: Conv/Gemm/MatMul weights and biases). */
  trainable?: string[];
  /** Cache folder for the student's training artifacts. */
  artifactsDir?: string;
  executionProvider?: ExecutionProviderName;
  seed?: Seed;
}

interface LevelBinding {
  level: PyramidLevel;
  /** The teacher's output for the same level. */
  teacherOutput: string;
  /** The loss graph's teacher input for the level. */
  teacherInput: string;
}

/** N images distilled in lockstep episodes (see module doc). */
export class ParallelDistillationEnv implements VecEnv<DistillationStepInfo> {
  readonly numEnvs: number;
  readonly stateDim: number;
  readonly numLevels: number;
  readonly costs: readonly number[];
  readonly levelNames: readonly string[];
  readonly actionMode: ActionMode;
  readonly phase: 2 | 3;
  readonly lambda: number;
  /** The student's TrainingSession (phase 3 trains it; phase 2 leaves it as it was). */
  readonly session: TrainingSession;
  private readonly teacherSession: GraphSession;
  /** Levels in decision order. */
  private readonly levels: LevelBinding[];
  private readonly studentInput: string;
  private readonly teacherInputName: string;
  private levelWeights: Float32Array;
  private readonly rng: Rng;
  private readonly budgetSpec: number | [number, number];
  private lossRef: number | undefined;
  // Current episodes.
  private images: HostTensor | null = null;
  private teacherFeeds: Record<string, HostTensor> = {};
  private features: Float32Array | null = null;
  private lossBefore: Float64Array = new Float64Array(0);
  /** Phase 2's copy of the student before each trial update. */
  private rollback: TrainingSnapshot | undefined;
  private budgets: Float64Array = new Float64Array(0);
  private selected = new Uint8Array(0);
  private used: Float64Array = new Float64Array(0);
  private k = 0;

  private constructor(
    private readonly options: DistillationEnvOptions,
    init: {
      session: TrainingSession;
      teacher: GraphSession;
      levels: LevelBinding[];
      costs: number[];
      studentInput: string;
      teacherInput: string;
    },
  ) {
    this.numEnvs = options.numEnvs;
    this.actionMode = options.actionMode ?? 'sequential';
    this.phase = options.phase ?? 2;
    this.lambda = options.lambdaTradeoff ?? 0.5;
    this.session = init.session;
    this.teacherSession = init.teacher;
    this.levels = init.levels;
    this.costs = init.costs;
    this.levelNames = init.levels.map((l) => l.level.name);
    this.numLevels = init.levels.length;
    this.studentInput = init.studentInput;
    this.teacherInputName = init.teacherInput;
    const coarsest = init.levels.reduce((a, b) => (b.level.stride > a.level.stride ? b : a)).level;
    this.stateDim =
      2 * coarsest.channels + init.levels.reduce((n, l) => n + l.level.channels, 0) + 1 + this.numLevels + 1;
    const w = options.levelWeights ?? new Array<number>(this.numLevels).fill(1);
    if (w.length !== this.numLevels) {
      throw new RlpkdError(
        `distillation env: levelWeights has ${w.length} entries, the student has ${this.numLevels} levels`,
      );
    }
    // The loss's levels, mask columns and weights all follow the decision order.
    this.levelWeights = Float32Array.from(w);
    this.rng = new Rng(options.seed ?? 0).fork('distillation-env');
    this.budgetSpec = options.budget ?? 1;
    this.lossRef = options.lossReference;
  }

  /** Detects the levels, computes costs, builds the student's training artifacts and opens the sessions. */
  static async create(options: DistillationEnvOptions): Promise<ParallelDistillationEnv> {
    if (!Number.isInteger(options.numEnvs) || options.numEnvs < 1) {
      throw new RlpkdError(`distillation env: numEnvs must be a positive integer, got ${options.numEnvs}`);
    }
    const size = options.inputSize ?? resolveInputSize(options.student);
    const studentLevels = findPyramidLevels(options.student, size);
    const teacherLevels = findPyramidLevels(options.teacher, size);
    const order = options.levelOrder ?? studentLevels.map((l) => l.name);
    const bindings: LevelBinding[] = order.map((name) => {
      const s = studentLevels.find((l) => l.name === name);
      if (!s) {
        throw new RlpkdError(
          `distillation env: level '${name}' is not a pyramid level of the student (it has ${studentLevels.map((l) => l.name).join(', ')})`,
        );
      }
      const t = teacherLevels.find((l) => l.name === name);
      if (!t) throw new RlpkdError(`distillation env: the teacher has no level ${name} (stride ${s.stride})`);
      if (t.channels !== s.channels || t.height !== s.height || t.width !== s.width) {
        throw new RlpkdError(
          `distillation env: level ${name} is ${t.channels}×${t.height}×${t.width} in the teacher but ${s.channels}×${s.height}×${s.width} in the student`,
          {
            hint: 'teacher and student must have the same channels and strides per level (or add an adapter)',
          },
        );
      }
      return { level: s, teacherOutput: t.output, teacherInput: `teacher.${s.output}` };
    });
    if (new Set(order).size !== order.length)
      throw new RlpkdError('distillation env: levelOrder repeats a level');
    let costs = options.costs;
    if (costs) {
      if (costs.length !== bindings.length) {
        throw new RlpkdError(
          `distillation env: costs has ${costs.length} entries for ${bindings.length} levels`,
        );
      }
    } else {
      const model = computeCostModel(options.student, size, { levels: studentLevels });
      costs = bindings.map((b) => model.levels.find((l) => l.name === b.level.name)!.distillCost);
    }
    // Loss levels in decision order, so mask columns follow decisions.
    const artifacts = generateArtifacts(options.student, {
      loss: {
        type: 'distillation',
        levels: bindings.map((b) => ({
          student: b.level.output,
          teacher: b.teacherInput,
          name: b.level.name,
        })),
        perSample: true,
        distance: options.loss ?? 'mse',
        ...(options.cwdTau !== undefined ? { tau: options.cwdTau } : {}),
      },
      optimizer: options.optimizer ?? { type: 'adamw', lr: 1e-4, weightDecay: 0 },
      keepOutputs: bindings.map((b) => b.level.output),
      fused: false,
      ...(options.trainable ? { trainable: options.trainable } : {}),
      ...(options.artifactsDir ? { outDir: options.artifactsDir } : {}),
    });
    const session = await TrainingSession.create({
      artifacts,
      ...(options.executionProvider ? { executionProvider: options.executionProvider } : {}),
      ...(options.lrSchedule ? { lrSchedule: options.lrSchedule } : {}),
      ...(options.maxGradNorm !== undefined ? { maxGradNorm: options.maxGradNorm } : {}),
    });
    const ep = options.executionProvider ? { executionProvider: options.executionProvider } : {};
    const teacher = options.teacherSession
      ? await createSession(options.teacherSession.file, {
          ...ep,
          graphOptimizationLevel: options.teacherSession.graphOptimizationLevel,
        })
      : await createSession(options.teacher, ep);
    return new ParallelDistillationEnv(options, {
      session,
      teacher,
      levels: bindings,
      costs,
      studentInput: imageInput(options.student).name,
      teacherInput: imageInput(options.teacher).name,
    });
  }

  /** Per-level weights of the distillation loss from now on (decision order), e.g. GradNorm's in phase 3. */
  setLevelWeights(weights: readonly number[]): void {
    if (weights.length !== this.numLevels || weights.some((w) => !(w >= 0) || !Number.isFinite(w))) {
      throw new RlpkdError(
        `distillation env: level weights must be ${this.numLevels} finite numbers ≥ 0, got [${weights.join(', ')}]`,
      );
    }
    this.levelWeights = Float32Array.from(weights);
  }

  /** The mean all-level loss the state's loss feature is divided by (set by the first batch). */
  get lossReference(): number | undefined {
    return this.lossRef;
  }

  async reset(): Promise<VecResetResult> {
    await this.newEpisodes();
    return { states: this.allStates(), budgets: Float64Array.from(this.budgets) };
  }

  async step(actions: Uint8Array): Promise<VecStepResult<DistillationStepInfo>> {
    if (!this.images) throw new RlpkdError('distillation env: step() called before reset()');
    const N = this.numEnvs;
    const L = this.numLevels;
    this.k += recordLevelActions(
      actions,
      this,
      { selected: this.selected, used: this.used },
      this.k,
      'distillation env',
    );
    const rewards = new Float64Array(N);
    const dones = new Uint8Array(N);
    let infos: DistillationStepInfo[] = Array.from({ length: N }, () => ({}));
    if (this.k >= L) {
      infos = await this.finishEpisodes(rewards);
      dones.fill(1);
      await this.newEpisodes();
    }
    return { states: this.allStates(), budgets: Float64Array.from(this.budgets), rewards, dones, infos };
  }

  /** The batched update, the before/after measurement, the rewards and (phase 2) the roll-back. */
  private async finishEpisodes(rewards: Float64Array): Promise<DistillationStepInfo[]> {
    const N = this.numEnvs;
    const L = this.numLevels;
    const terminal = Array.from({ length: N }, (_, e) => this.stateOf(e));
    const mask = Float32Array.from(this.selected);
    // Phase 2 rolls the update back; the snapshot's buffers are reused from one batch to the next.
    if (this.phase === 2) this.rollback = this.session.snapshot(this.rollback);
    await this.session.lazyResetGrad();
    const train = await this.session.trainStep(this.lossFeeds(mask));
    await this.session.optimizerStep();
    const perSample = train['distill.per_sample'].data as Float32Array;
    const after = await this.allLevelLoss();
    if (this.phase === 2) await this.session.restore(this.rollback!);
    return Array.from({ length: N }, (_, e) => {
      const before = this.lossBefore[e];
      const quality = before > 0 ? (before - after.loss[e]) / before : 0;
      const efficiency = this.lambda * (1 - this.used[e]);
      rewards[e] = quality + efficiency;
      let distillLoss = 0;
      for (let k = 0; k < L; k++)
        distillLoss += this.selected[e * L + k] * this.levelWeights[k] * perSample[e * L + k];
      return {
        terminalState: terminal[e],
        episode: {
          reward: rewards[e],
          selectedLevels: this.levelNames.filter((_, k) => this.selected[e * L + k]),
          usedCost: this.used[e],
          savedCost: 1 - this.used[e],
          budget: this.budgets[e],
          lossBefore: before,
          lossAfter: after.loss[e],
          distillLoss,
          qualityReward: quality,
          efficiencyReward: efficiency,
          lambda: this.lambda,
          phase: this.phase,
        },
      };
    });
  }

  /** Feeds of the distillation loss for the current images with a [N, L] mask. */
  private lossFeeds(mask: Float32Array): Record<string, HostTensor> {
    return {
      [this.studentInput]: this.images!,
      ...this.teacherFeeds,
      'distill.mask': { data: mask, dims: [this.numEnvs, this.numLevels] },
      'distill.weights': { data: this.levelWeights, dims: [this.numLevels] },
    };
  }

  /** Per-image Σ_l mean((S_l − T_l)²) over all levels, and the student's level features. */
  private async allLevelLoss(): Promise<{ loss: Float64Array; outputs: Record<string, HostTensor> }> {
    const N = this.numEnvs;
    const L = this.numLevels;
    const out = await this.session.evalStep(this.lossFeeds(new Float32Array(N * L).fill(1)));
    const e = out['distill.per_sample'].data as Float32Array;
    const loss = new Float64Array(N);
    for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) loss[n] += e[n * L + l];
    return { loss, outputs: out };
  }

  /** Loads the next N images, runs the teacher and the student, and starts fresh episodes. */
  private async newEpisodes(): Promise<void> {
    const N = this.numEnvs;
    const L = this.numLevels;
    const images = await this.options.images.next(N);
    if (images.dims[0] !== N || !(images.data instanceof Float32Array)) {
      throw new RlpkdError(
        `distillation env: the image source returned [${images.dims.join(', ')}], expected ${N} float32 images`,
      );
    }
    this.images = images;
    const t = await this.teacherSession.run(
      { [this.teacherInputName]: images },
      this.levels.map((l) => l.teacherOutput),
    );
    this.teacherFeeds = {};
    for (const l of this.levels) this.teacherFeeds[l.teacherInput] = t[l.teacherOutput];
    const m = await this.allLevelLoss();
    this.lossBefore = m.loss;
    if (this.lossRef === undefined) this.lossRef = Math.max(m.loss.reduce((a, b) => a + b, 0) / N, 1e-12);
    this.features = this.pooledFeatures(m.outputs);
    this.budgets = Float64Array.from({ length: N }, () => {
      const b = this.budgetSpec;
      return typeof b === 'number' ? b : this.rng.uniform(b[0], b[1]);
    });
    this.selected = new Uint8Array(N * L);
    this.used = new Float64Array(N);
    this.k = 0;
  }

  /** [N, 2·C_coarsest + Σ C_l]: avg ‖ max of the coarsest level, then the avg of every level. */
  private pooledFeatures(outputs: Record<string, HostTensor>): Float32Array {
    const N = this.numEnvs;
    const width = this.stateDim - 1 - this.numLevels - 1;
    const out = new Float32Array(N * width);
    const coarsest = this.levels.reduce((a, b) => (b.level.stride > a.level.stride ? b : a));
    const pool = (name: string, n: number, kind: 'avg' | 'max', dst: number): number => {
      const t = outputs[name];
      const [, C, H, W] = t.dims;
      const d = t.data as Float32Array;
      const hw = H * W;
      for (let c = 0; c < C; c++) {
        const base = (n * C + c) * hw;
        let acc = kind === 'avg' ? 0 : -Infinity;
        for (let i = 0; i < hw; i++) acc = kind === 'avg' ? acc + d[base + i] : Math.max(acc, d[base + i]);
        out[dst + c] = kind === 'avg' ? acc / hw : acc;
      }
      return dst + C;
    };
    for (let n = 0; n < N; n++) {
      let o = n * width;
      o = pool(coarsest.level.output, n, 'avg', o);
      o = pool(coarsest.level.output, n, 'max', o);
      for (const l of this.levels) o = pool(l.level.output, n, 'avg', o);
    }
    return out;
  }

  private stateOf(e: number): Float32Array {
    const L = this.numLevels;
    const width = this.stateDim - 1 - L - 1;
    const s = new Float32Array(this.stateDim);
    s.set(this.features!.subarray(e * width, (e + 1) * width), 0);
    s[width] = this.lossBefore[e] / this.lossRef!;
    s.set(this.selected.subarray(e * L, (e + 1) * L), width + 1);
    s[width + 1 + L] = this.budgets[e] - this.used[e];
    return s;
  }

  private allStates(): Float32Array {
    const out = new Float32Array(this.numEnvs * this.stateDim);
    for (let e = 0; e < this.numEnvs; e++) out.set(this.stateOf(e), e * this.stateDim);
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
    await this.teacherSession.release();
  }
}

/** One image at a time: the ParallelDistillationEnv with a single environment. */
export class DistillationEnvironment {
  /** Creates the single-image MDP (numEnvs = 1). */
  static create(options: Omit<DistillationEnvOptions, 'numEnvs'>): Promise<ParallelDistillationEnv> {
    return ParallelDistillationEnv.create({ ...options, numEnvs: 1 });
  }
}

/** An image source cycling through a fixed set of images [M, C, H, W] in a seeded random order. */
export function arrayImageSource(images: HostTensor, seed: Seed = 0): ImageBatchSource {
  const [M, ...rest] = images.dims;
  const per = rest.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed).fork('image-source');
  let order: number[] = [];
  return {
    next: async (n: number): Promise<HostTensor> => {
      const data = new Float32Array(n * per);
      for (let i = 0; i < n; i++) {
        if (order.length === 0) order = rng.shuffle(Array.from({ length: M }, (_, j) => j));
        const j = order.pop()!;
        data.set((images.data as Float32Array).subarray(j * per, (j + 1) * per), i * per);
      }
      return { data, dims: [n, ...rest] };
    },
  };
}
