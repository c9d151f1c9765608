/**
 * Contextual bandits over level subsets: small, exactly solvable stand-ins for the distillation MDP, used
 * by the tests (PPO must find the best subset per context) and the docs (how to implement `VecEnv`), and
 * a family of related bandits for meta-learning.
 *
 * Each episode draws a context c (one of K clusters) and shows features x = onehot(c) + noise. Selecting
 * the subset a earns Σ_l a_l·U[c][l] + λ·(1 − Σ_l a_l·cost_l) (+ optional reward noise), paid on the last
 * step. The best subset depends on c. The state is [x (F) | levels selected so far (L) | budget left (1)].
 */
import { RlpkdError } from '../errors';
import { Rng, type Seed } from '../util/rng';
import { DecisionKind, DecisionTracker, type DecisionConstraints } from './bernoulli';
import {
  recordLevelActions,
  type ActionMode,
  type EpisodeSummary,
  type StepInfo,
  type VecEnv,
  type VecResetResult,
  type VecStepResult,
} from './vec-env';

/** Costs of P2..P5 in the design document (4 : 2 : 1 : 0.5), as shares of the full pyramid. */
export const SEED_LEVEL_COSTS: readonly number[] = [4 / 7.5, 2 / 7.5, 1 / 7.5, 0.5 / 7.5];

/** The reward structure of one bandit task. */
export interface BanditTask {
  /** U[c][l]: quality gained by selecting level l in context c (K × L). */
  utilities: number[][];
  /** Weight of the saved cost in the reward. */
  lambda: number;
}

export interface ContextualBanditOptions {
  numEnvs: number;
  actionMode: ActionMode;
  /** Level costs in decision order (default: the design document's P2..P5 shares). */
  costs?: readonly number[];
  /** Number of contexts (default 4). */
  numContexts?: number;
  /** Feature dimension (default 8; at least numContexts). */
  featureDim?: number;
  /** Std of the Gaussian noise on the features (default 0.2: contexts stay distinguishable). */
  contextNoise?: number;
  /** Std of the Gaussian noise on the reward (default 0). */
  rewardNoise?: number;
  /** Fixed budget, or a [low, high] range sampled uniformly per episode (default 1: unconstrained). */
  budget?: number | [number, number];
  /** The policy's `minLevels`; defines which subsets count as feasible for the optimum (default 1). */
  minLevels?: number;
  /** The task; generated from `taskSeed` when omitted. */
  task?: BanditTask;
  /** Seed of the generated task (default 0). */
  taskSeed?: Seed;
  /** Weight of the saved cost when the task is generated (default 0.5). */
  lambda?: number;
  /** Seed of contexts, budgets and reward noise. */
  seed?: Seed;
}

/** The summary of a bandit episode, with the context and the best reward reachable in it. */
export interface BanditEpisodeSummary extends EpisodeSummary {
  context: number;
  optimalReward: number;
}

/** Step info of the bandit: the episode summary carries the context and its optimum. */
export interface BanditStepInfo extends StepInfo {
  episode?: BanditEpisodeSummary;
}

/** Generates a task in which each context has a different best subset (while 2^L − 1 subsets allow). */
export function generateBanditTask(
  numContexts: number,
  costs: readonly number[],
  lambda: number,
  seed: Seed,
): BanditTask {
  const rng = new Rng(seed).fork('bandit-task');
  const L = costs.length;
  const subsets = rng.shuffle(Array.from({ length: (1 << L) - 1 }, (_, i) => i + 1));
  const utilities: number[][] = [];
  for (let c = 0; c < numContexts; c++) {
    const best = subsets[c % subsets.length];
    utilities.push(
      costs.map((cost, l) => {
        const margin = rng.uniform(0.15, 0.5);
        return lambda * cost + ((best >> l) & 1 ? margin : -margin);
      }),
    );
  }
  return { utilities, lambda };
}

/** Reward of selecting `actions` (0/1 per level) in context c, without noise. */
export function banditReward(
  task: BanditTask,
  costs: readonly number[],
  context: number,
  actions: ArrayLike<number>,
): number {
  let quality = 0;
  let used = 0;
  for (let l = 0; l < costs.length; l++) {
    if (actions[l]) {
      quality += task.utilities[context][l];
      used += costs[l];
    }
  }
  return quality + task.lambda * (1 - used);
}

/** The best noise-free reward among the subsets the policy's constraints allow (exhaustive search). */
export function banditOptimalReward(
  task: BanditTask,
  constraints: DecisionConstraints,
  context: number,
  budget: number,
): number {
  const L = constraints.costs.length;
  let best = -Infinity;
  const a = new Uint8Array(L);
  for (let mask = 0; mask < 1 << L; mask++) {
    const t = new DecisionTracker(constraints, budget);
    let feasible = true;
    for (let k = 0; k < L; k++) {
      a[k] = (mask >> k) & 1;
      const kind = t.nextKind();
      if ((kind === DecisionKind.ForcedOn && !a[k]) || (kind === DecisionKind.ForcedOff && a[k])) {
        feasible = false;
        break;
      }
      t.push(a[k]);
    }
    if (feasible) best = Math.max(best, banditReward(task, constraints.costs, context, a));
  }
  return best;
}

/** A vectorized contextual bandit over level subsets (see the module documentation). */
export class ContextualBanditEnv implements VecEnv<BanditStepInfo> {
  readonly numEnvs: number;
  readonly stateDim: number;
  readonly numLevels: number;
  readonly costs: readonly number[];
  readonly levelNames: readonly string[];
  readonly actionMode: ActionMode;
  readonly task: BanditTask;
  readonly numContexts: number;
  readonly featureDim: number;
  private readonly constraints: DecisionConstraints;
  private readonly rng: Rng;
  private readonly contexts: Int32Array;
  private readonly features: Float32Array;
  private readonly budgets: Float64Array;
  private readonly selected: Uint8Array;
  private readonly used: Float64Array;
  private k = 0;
  private started = false;

  constructor(private readonly options: ContextualBanditOptions) {
    this.numEnvs = options.numEnvs;
    this.actionMode = options.actionMode;
    this.costs = [...(options.costs ?? SEED_LEVEL_COSTS)];
    this.numLevels = this.costs.length;
    this.levelNames = this.costs.map((_, l) => `level${l}`);
    this.numContexts = options.numContexts ?? 4;
    this.featureDim = options.featureDim ?? 8;
    if (this.featureDim < this.numContexts) {
      throw new RlpkdError(
        `ContextualBanditEnv: featureDim ${this.featureDim} < numContexts ${this.numContexts}`,
      );
    }
    this.task =
      options.task ??
      generateBanditTask(this.numContexts, this.costs, options.lambda ?? 0.5, options.taskSeed ?? 0);
    if (
      this.task.utilities.length !== this.numContexts ||
      this.task.utilities.some((u) => u.length !== this.numLevels)
    ) {
      throw new RlpkdError(
        `ContextualBanditEnv: task utilities must be ${this.numContexts}×${this.numLevels} (contexts × levels)`,
      );
    }
    this.constraints = { costs: this.costs, minLevels: options.minLevels ?? 1 };
    this.stateDim = this.featureDim + this.numLevels + 1;
    this.rng = new Rng(options.seed ?? 0).fork('bandit-env');
    const n = this.numEnvs;
    this.contexts = new Int32Array(n);
    this.features = new Float32Array(n * this.featureDim);
    this.budgets = new Float64Array(n);
    this.selected = new Uint8Array(n * this.numLevels);
    this.used = new Float64Array(n);
  }

  /** Best reachable reward of an episode with this context and budget. */
  optimalReward(context: number, budget: number): number {
    return banditOptimalReward(this.task, this.constraints, context, budget);
  }

  async reset(): Promise<VecResetResult> {
    for (let e = 0; e < this.numEnvs; e++) this.newEpisode(e);
    this.k = 0;
    this.started = true;
    return { states: this.allStates(), budgets: Float64Array.from(this.budgets) };
  }

  async step(actions: Uint8Array): Promise<VecStepResult<BanditStepInfo>> {
    if (!this.started) throw new RlpkdError('ContextualBanditEnv.step called before reset()');
    const n = this.numEnvs;
    const L = this.numLevels;
    this.k += recordLevelActions(
      actions,
      this,
      { selected: this.selected, used: this.used },
      this.k,
      'ContextualBanditEnv.step',
    );
    const rewards = new Float64Array(n);
    const dones = new Uint8Array(n);
    const infos: BanditStepInfo[] = Array.from({ length: n }, () => ({}));
    if (this.k >= L) {
      const noise = this.options.rewardNoise ?? 0;
      for (let e = 0; e < n; e++) {
        const sel = this.selected.subarray(e * L, (e + 1) * L);
        const c = this.contexts[e];
        const reward =
          banditReward(this.task, this.costs, c, sel) + (noise > 0 ? this.rng.normal(0, noise) : 0);
        rewards[e] = reward;
        dones[e] = 1;
        infos[e] = {
          terminalState: this.stateOf(e),
          episode: {
            reward,
            selectedLevels: this.levelNames.filter((_, l) => sel[l]),
            usedCost: this.used[e],
            savedCost: 1 - this.used[e],
            budget: this.budgets[e],
            context: c,
            optimalReward: this.optimalReward(c, this.budgets[e]),
          },
        };
        this.newEpisode(e);
      }
      this.k = 0;
    }
    return { states: this.allStates(), budgets: Float64Array.from(this.budgets), rewards, dones, infos };
  }

  private newEpisode(e: number): void {
    const F = this.featureDim;
    const c = this.rng.int(this.numContexts);
    this.contexts[e] = c;
    const noise = this.options.contextNoise ?? 0.2;
    for (let f = 0; f < F; f++) this.features[e * F + f] = (f === c ? 1 : 0) + this.rng.normal(0, noise);
    const b = this.options.budget ?? 1;
    this.budgets[e] = typeof b === 'number' ? b : this.rng.uniform(b[0], b[1]);
    this.selected.fill(0, e * this.numLevels, (e + 1) * this.numLevels);
    this.used[e] = 0;
  }

  private stateOf(e: number): Float32Array {
    const F = this.featureDim;
    const L = this.numLevels;
    const s = new Float32Array(this.stateDim);
    s.set(this.features.subarray(e * F, (e + 1) * F), 0);
    s.set(this.selected.subarray(e * L, (e + 1) * L), F);
    s[F + L] = this.budgets[e] - this.used[e];
    return s;
  }

  private allStates(): Float32Array {
    const out = new Float32Array(this.numEnvs * this.stateDim);
    for (let e = 0; e < this.numEnvs; e++) out.set(this.stateOf(e), e * this.stateDim);
    return out;
  }
}

export interface BanditFamilyOptions {
  costs?: readonly number[];
  numContexts?: number;
  /** Range of λ across tasks (default [0.2, 0.8]). */
  lambdaRange?: [number, number];
  /** Std of each task's per-(context, level) utility offset from the shared base (default 0.15). */
  taskSpread?: number;
  /** Seed of the shared base utilities. */
  seed?: Seed;
}

/**
 * A family of bandits that share structure: every task keeps the base utilities of one generated task
 * (which subsets suit which context) and draws its own λ and small per-(context, level) offsets, so the
 * best subsets shift from task to task. λ is not in the state: a policy has to adapt to learn it.
 */
export class BanditFamily {
  readonly costs: readonly number[];
  readonly numContexts: number;
  readonly base: BanditTask;
  private readonly lambdaRange: [number, number];
  private readonly spread: number;

  constructor(options: BanditFamilyOptions = {}) {
    this.costs = [...(options.costs ?? SEED_LEVEL_COSTS)];
    this.numContexts = options.numContexts ?? 4;
    this.lambdaRange = options.lambdaRange ?? [0.2, 0.8];
    this.spread = options.taskSpread ?? 0.15;
    const mid = (this.lambdaRange[0] + this.lambdaRange[1]) / 2;
    this.base = generateBanditTask(this.numContexts, this.costs, mid, options.seed ?? 0);
  }

  /** Draws a task of the family. */
  sampleTask(rng: Rng): BanditTask {
    const lambda = rng.uniform(this.lambdaRange[0], this.lambdaRange[1]);
    const utilities = this.base.utilities.map((row) => row.map((u) => u + rng.normal(0, this.spread)));
    return { utilities, lambda };
  }

  /** An environment for one task. */
  makeEnv(
    task: BanditTask,
    options: Omit<ContextualBanditOptions, 'task' | 'costs' | 'numContexts'>,
  ): ContextualBanditEnv {
    return new ContextualBanditEnv({ ...options, task, costs: this.costs, numContexts: this.numContexts });
  }
}
