/**
 * The level-selection MDP (src/rl/README.md, "The MDP as implemented") as a VecEnv. An episode is one image; its steps are the student's
 * pyramid levels in a configured order (sequential mode; one step deciding every level in independent
 * mode). `ParallelDistillationEnv` holds N images and does only the MDP — states, budgets, rewards — over a
 * `Distiller` (src/rl/distiller.ts) that owns the student and the teacher: when the N episodes end it asks
 * for ONE batched update (mask[n, l] = level l was selected for image n), with each image's all-level
 * distillation loss measured before and after, and pays
 *   reward = (L_before − L_after)/L_before + λ·(1 − used_cost)
 * on the last step (0 before); with the 'share' quality (reward-quality.ts) the first term is the share of
 * the gain an all-level trial update of the same images achieves, measured once per batch of images (a
 * group's repeats reuse it). L is a fixed yardstick: Σ_l d(S_l, T_l) over ALL levels, never the
 * selected ones, with d the distance the student trains on; or, when the distiller measures one (the task
 * yardstick), the image's loss on that yardstick. Phase 2 makes it a trial update (the
 * distiller restores the student bit for bit); phase 3 keeps it.
 *
 * State: the 'train' kind of policy-state.ts over the levels in decision order, or the 'deploy' kind over
 * the student's trunk tensors `stateSources` (no loss feature). The train kind's loss feature is the
 * all-level distillation loss whatever the yardstick (it needs no labels); L_ref, which divides it, is the
 * mean all-level loss of the first batch (or `lossReference`).
 */
import { RlpkdError } from '../errors';
import type { HostTensor } from '../runtime/tensors';
import { Rng, type Seed } from '../util/rng';
import { qualityTerm, type RewardQuality } from './reward-quality';
import type { Distiller, ImageBatch } from './distiller';
import {
  pooledStateFeatures,
  stateLayout,
  writeState,
  type PolicyStateKind,
  type StateLayout,
  type StateLevel,
} from './policy-state';
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
  next(batchSize: number): Promise<ImageBatch>;
}

/** What an episode of the distillation MDP reports on its last step. */
export interface DistillationEpisodeSummary extends EpisodeSummary {
  /** The image's loss on the reward's yardstick before the update (all-level distillation loss, or task loss). */
  lossBefore: number;
  /** ... and after it (before any roll-back). */
  lossAfter: number;
  /** The image's loss over its selected levels, the part of the batched update it contributed. */
  distillLoss: number;
  /** The quality term: (lossBefore − lossAfter)/lossBefore, or its share of the all-level gain. */
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
  /** The student's distillation step (shared with whoever trains the student). */
  distiller: Distiller;
  images: ImageBatchSource;
  numEnvs: number;
  /** Per-level costs in decision order (e.g. the cost model's distillation-cost shares). */
  costs: readonly number[];
  /** 'sequential' (default): one level per step; 'independent': all levels in one step. */
  actionMode?: ActionMode;
  /** 2: the update is a trial, rolled back after measuring; 3: it is kept (default 2). */
  phase?: 2 | 3;
  /** Fixed budget, or a [low, high] range sampled per episode (default 1). */
  budget?: number | [number, number];
  /** λ of the efficiency term (default 0.5). */
  lambdaTradeoff?: number;
  /** Decision order by level name (default: the distiller's level order, finest first). */
  levelOrder?: readonly string[];
  /** Per-level weights of the distillation loss, in the distiller's level order (default 1 each). */
  levelWeights?: readonly number[];
  /** Divides the loss feature of the state (default: mean all-level loss of the first batch). */
  lossReference?: number;
  /** Which policy state (default 'train'). */
  stateKind?: PolicyStateKind;
  /** The student's trunk tensors the 'deploy' state pools (src/rl/deploy-state.ts). */
  stateSources?: readonly StateLevel[];
  /** Seeds the budget draws (see reseed). */
  seed?: Seed;
  /** The reward's quality term (reward-quality.ts; default 'relative'). */
  quality?: RewardQuality;
  /**
   * Consecutive episodes on the same images and budgets (default 1): a group of K episodes per image
   * whose returns give each other a baseline (rl.ppo.group_size, rollout-buffer.ts). Phase 2 only: its
   * trials are rolled back, so the repeats see the same student.
   */
  episodesPerImage?: number;
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
  readonly quality: RewardQuality;
  /** All-level trial updates the 'share' quality has run so far (one per batch of new images). */
  referenceTrials = 0;
  /** Consecutive episodes per image (DistillationEnvOptions.episodesPerImage). */
  readonly episodesPerImage: number;
  private readonly distiller: Distiller;
  private readonly layout: StateLayout;
  /** Distiller level index of each decision. */
  private readonly levelOf: number[];
  /** Level weights in the distiller's level order. */
  private levelWeights: Float32Array;
  private rng: Rng;
  private readonly budgetSpec: number | [number, number];
  private lossRef: number | undefined;
  // Current episodes.
  private batch: ImageBatch | null = null;
  private features: Float32Array | null = null;
  private lossBefore: Float64Array = new Float64Array(0);
  /** The reward's L_before where the distiller measures a yardstick of its own (else lossBefore). */
  private yardstickBefore: Float64Array | undefined;
  /** The yardstick after an all-level trial update of the current images (the 'share' quality). */
  private afterAllLevels: Float64Array | undefined;
  private budgets: Float64Array = new Float64Array(0);
  private selected = new Uint8Array(0);
  private used: Float64Array = new Float64Array(0);
  private k = 0;
  /** Episodes still to run on the current images before new ones are drawn. */
  private repeatsLeft = 0;

  constructor(private readonly options: DistillationEnvOptions) {
    if (!Number.isInteger(options.numEnvs) || options.numEnvs < 1) {
      throw new RlpkdError(`distillation env: numEnvs must be a positive integer, got ${options.numEnvs}`);
    }
    const levels = options.distiller.levels;
    const names = levels.map((l) => l.name);
    const order = options.levelOrder ?? names;
    if (new Set(order).size !== order.length)
      throw new RlpkdError('distillation env: levelOrder repeats a level');
    this.levelOf = order.map((name) => {
      const l = names.indexOf(name);
      if (l < 0) {
        throw new RlpkdError(
          `distillation env: level '${name}' is not a distilled level (they are ${names.join(', ')})`,
        );
      }
      return l;
    });
    if (order.length !== levels.length) {
      throw new RlpkdError(
        `distillation env: levelOrder has ${order.length} levels, the distiller ${levels.length}`,
      );
    }
    if (options.costs.length !== order.length) {
      throw new RlpkdError(
        `distillation env: costs has ${options.costs.length} entries for ${order.length} levels`,
      );
    }
    this.distiller = options.distiller;
    this.numEnvs = options.numEnvs;
    this.actionMode = options.actionMode ?? 'sequential';
    this.phase = options.phase ?? 2;
    this.lambda = options.lambdaTradeoff ?? 0.5;
    this.quality = options.quality ?? 'relative';
    this.episodesPerImage = options.episodesPerImage ?? 1;
    if (!Number.isInteger(this.episodesPerImage) || this.episodesPerImage < 1) {
      throw new RlpkdError(
        `distillation env: episodesPerImage must be a positive integer, got ${options.episodesPerImage}`,
      );
    }
    if (this.episodesPerImage > 1 && this.phase !== 2) {
      throw new RlpkdError(
        'distillation env: episodesPerImage > 1 needs phase 2 (trial updates rolled back)',
      );
    }
    this.costs = [...options.costs];
    this.levelNames = [...order];
    this.numLevels = order.length;
    this.layout = stateLayout(
      options.stateKind ?? 'train',
      this.levelOf.map((l) => levels[l]),
      options.stateSources,
    );
    this.stateDim = this.layout.dim;
    this.levelWeights = new Float32Array(this.numLevels).fill(1);
    if (options.levelWeights) this.setLevelWeights(options.levelWeights);
    this.rng = new Rng(options.seed ?? 0).fork('distillation-env');
    this.budgetSpec = options.budget ?? 1;
    this.lossRef = options.lossReference;
  }

  /** Per-level weights of the distillation loss from now on (level order), e.g. GradNorm's in phase 3. */
  setLevelWeights(weights: readonly number[]): void {
    if (weights.length !== this.numLevels || weights.some((w) => !(w >= 0) || !Number.isFinite(w))) {
      throw new RlpkdError(
        `distillation env: level weights must be ${this.numLevels} finite numbers ≥ 0, got [${weights.join(', ')}]`,
      );
    }
    this.levelWeights = Float32Array.from(weights);
  }

  /** Restarts the budget draws from `seed` (as a new environment with that seed would draw them). */
  reseed(seed: Seed): void {
    this.rng = new Rng(seed).fork('distillation-env');
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
    if (!this.batch) throw new RlpkdError('distillation env: step() called before reset()');
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
      if (this.repeatsLeft > 0) this.repeatEpisodes();
      else await this.newEpisodes();
    }
    return { states: this.allStates(), budgets: Float64Array.from(this.budgets), rewards, dones, infos };
  }

  /** The batched update (a trial in phase 2), the before/after measurement and the rewards. */
  private async finishEpisodes(rewards: Float64Array): Promise<DistillationStepInfo[]> {
    const N = this.numEnvs;
    const L = this.numLevels;
    const terminal = Array.from({ length: N }, (_, e) => this.stateOf(e));
    // Decisions → the distiller's level order.
    const mask = new Float32Array(N * L);
    for (let e = 0; e < N; e++)
      for (let k = 0; k < L; k++) mask[e * L + this.levelOf[k]] = this.selected[e * L + k];
    let perSample: Float32Array;
    let afterDistances: Float32Array;
    let afterYardstick: Float64Array | undefined;
    if (this.phase === 2) {
      const t = await this.distiller.trial(this.batch!, mask, this.levelWeights);
      perSample = t.perSample;
      afterDistances = t.after;
      afterYardstick = t.afterYardstick;
    } else {
      perSample = (await this.distiller.step(this.batch!, mask, this.levelWeights)).perSample;
      const a = await this.distiller.evaluate(this.batch!);
      afterDistances = a.distances;
      afterYardstick = a.yardstick;
    }
    if ((afterYardstick === undefined) !== (this.yardstickBefore === undefined))
      throw new RlpkdError('distillation env: the distiller measured its yardstick before or after only');
    const after = afterYardstick ?? allLevelLoss(afterDistances, N, L);
    const befores = this.yardstickBefore ?? this.lossBefore;
    return Array.from({ length: N }, (_, e) => {
      const before = befores[e];
      const quality = qualityTerm(this.quality, before, after[e], this.afterAllLevels?.[e]);
      const efficiency = this.lambda * (1 - this.used[e]);
      rewards[e] = quality + efficiency;
      let distillLoss = 0;
      // Only selected levels: an update that computes only those leaves the others' distances unknown.
      for (let l = 0; l < L; l++)
        if (mask[e * L + l] !== 0)
          distillLoss += mask[e * L + l] * this.levelWeights[l] * perSample[e * L + l];
      return {
        terminalState: terminal[e],
        episode: {
          reward: rewards[e],
          selectedLevels: this.levelNames.filter((_, k) => this.selected[e * L + k]),
          usedCost: this.used[e],
          savedCost: 1 - this.used[e],
          budget: this.budgets[e],
          lossBefore: before,
          lossAfter: after[e],
          distillLoss,
          qualityReward: quality,
          efficiencyReward: efficiency,
          lambda: this.lambda,
          phase: this.phase,
        },
      };
    });
  }

  /** Starts the next episodes of a group on the same images and budgets (trials left no trace). */
  private repeatEpisodes(): void {
    this.repeatsLeft--;
    this.selected.fill(0);
    this.used.fill(0);
    this.k = 0;
  }

  /** Loads the next N images, measures them (distances and level features), and starts fresh episodes. */
  private async newEpisodes(): Promise<void> {
    this.repeatsLeft = this.episodesPerImage - 1;
    const N = this.numEnvs;
    const L = this.numLevels;
    const batch = await this.options.images.next(N);
    const images = batch.images;
    if (images.dims[0] !== N || !(images.data instanceof Float32Array)) {
      throw new RlpkdError(
        `distillation env: the image source returned [${images.dims.join(', ')}], expected ${N} float32 images`,
      );
    }
    // Teacher features once for the episode's measurements and its update.
    this.batch = await this.distiller.prepare(batch);
    const m = await this.distiller.evaluate(
      this.batch,
      this.layout.kind === 'train' ? { features: true } : { tensors: this.layout.sources.map((s) => s.name) },
    );
    this.lossBefore = allLevelLoss(m.distances, N, L);
    this.yardstickBefore = m.yardstick;
    if (this.quality === 'share') {
      // The all-level trial the selections' gains are shares of (rolled back like every trial).
      const all = await this.distiller.trial(this.batch, new Float32Array(N * L).fill(1), this.levelWeights);
      this.referenceTrials++;
      this.afterAllLevels = all.afterYardstick ?? allLevelLoss(all.after, N, L);
    }
    if (this.lossRef === undefined)
      this.lossRef = Math.max(this.lossBefore.reduce((a, b) => a + b, 0) / N, 1e-12);
    this.features = pooledStateFeatures(this.layout, m.features!, N);
    this.budgets = Float64Array.from({ length: N }, () => {
      const b = this.budgetSpec;
      return typeof b === 'number' ? b : this.rng.uniform(b[0], b[1]);
    });
    this.selected = new Uint8Array(N * L);
    this.used = new Float64Array(N);
    this.k = 0;
  }

  /** Writes environment e's state into dst[at..at+stateDim) (a fresh array by default) and returns dst. */
  private stateOf(e: number, dst = new Float32Array(this.stateDim), at = 0): Float32Array {
    const lossRef = this.lossRef!;
    const L = this.numLevels;
    writeState(
      this.layout,
      this.features!,
      {
        loss: this.lossBefore[e] / lossRef,
        selected: this.selected.subarray(e * L, (e + 1) * L),
        budgetLeft: this.budgets[e] - this.used[e],
      },
      e,
      dst,
      at,
    );
    return dst;
  }

  private allStates(): Float32Array {
    const out = new Float32Array(this.numEnvs * this.stateDim);
    for (let e = 0; e < this.numEnvs; e++) this.stateOf(e, out, e * this.stateDim);
    return out;
  }

  /** The environment holds no sessions (the distiller's owner releases it). */
  async close(): Promise<void> {}
}

/** Per-image Σ_l e[n, l] (float64) of a [N, L] distance matrix. */
function allLevelLoss(e: Float32Array, N: number, L: number): Float64Array {
  const loss = new Float64Array(N);
  for (let n = 0; n < N; n++) for (let l = 0; l < L; l++) loss[n] += e[n * L + l];
  return loss;
}

/** One image at a time: the ParallelDistillationEnv with a single environment. */
export class DistillationEnvironment {
  /** Creates the single-image MDP (numEnvs = 1). */
  static create(options: Omit<DistillationEnvOptions, 'numEnvs'>): ParallelDistillationEnv {
    return new ParallelDistillationEnv({ ...options, numEnvs: 1 });
  }
}

/** An image source cycling through a fixed set of images [M, C, H, W] in a seeded random order. */
export function arrayImageSource(images: HostTensor, seed: Seed = 0): ImageBatchSource {
  const [M, ...rest] = images.dims;
  const per = rest.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed).fork('image-source');
  let order: number[] = [];
  return {
    next: async (n: number): Promise<ImageBatch> => {
      const data = new Float32Array(n * per);
      for (let i = 0; i < n; i++) {
        if (order.length === 0) order = rng.shuffle(Array.from({ length: M }, (_, j) => j));
        const j = order.pop()!;
        data.set((images.data as Float32Array).subarray(j * per, (j + 1) * per), i * per);
      }
      return { images: { data, dims: [n, ...rest] } };
    },
  };
}
