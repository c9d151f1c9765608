/**
 * PPOTrainer: proximal policy optimization (Schulman et al. 2017) over a vectorized level-selection
 * environment, following stable-baselines3's PPO: rollouts of `nSteps` per environment, GAE(γ, λ),
 * `nEpochs` passes over shuffled minibatches, advantages normalized per minibatch, clipped surrogate,
 * value loss (optionally clipped), entropy bonus, global gradient-norm clipping, target-KL early stop
 * checked per minibatch before the update (SB3 ≥ 1.1: stop when approx_kl > 1.5·target_kl). The loss is
 * a graph trained through the engine (see ppo-loss-graph.ts); minibatches are whole episodes, so the
 * sequential policy is re-evaluated by teacher forcing from each episode's first step.
 */
import { RlpkdError } from '../errors';
import type { CheckpointState } from '../training/checkpoint';
import type { LrScheduleConfig } from '../training/lr-schedules';
import { Rng, type RngState, type Seed } from '../util/rng';
import type { EpisodeBatch } from './episode-batch';
import { explainedVariance } from './gae';
import type { PolicyNetwork } from './policy';
import { freeSteps, PolicyOptimizer, type PpoCoefficients } from './policy-optimizer';
import { checkPolicyEnv, collectRollout, resetEnv } from './rollout';
import { stepsPerEpisode, type VecEnv } from './vec-env';

/** PPO hyper-parameters; defaults as in configs/default.yaml's rl.ppo (and stable-baselines3 where it is silent). */
export interface PpoConfig {
  /** Adam learning rate (default 3e-4). */
  learningRate?: number;
  /** Steps per environment per rollout (default 128; a multiple of the episode length). */
  nSteps?: number;
  /** Transitions per minibatch (default 64), rounded to whole episodes. */
  batchSize?: number;
  /** Passes over each rollout (rl.ppo.ppo_epochs in the config, default 4). */
  nEpochs?: number;
  gamma?: number;
  gaeLambda?: number;
  /** ε of the ratio clip (default 0.2). */
  clipRange?: number;
  /** ε of the value clip (SB3's clip_range_vf); default: no value clipping. */
  clipRangeVf?: number;
  /** Default true. */
  normalizeAdvantage?: boolean;
  /** Default 0.01. */
  entCoef?: number;
  /** Default 0.5 (applied to mean((R − V)²), no ½: SB3's convention). */
  vfCoef?: number;
  /** Global gradient-norm bound (default 0.5). */
  maxGradNorm?: number;
  /** Stop the update's remaining minibatches and epochs when approx_kl > 1.5·targetKl (default off). */
  targetKl?: number;
  /**
   * Learning-rate annealing: `true` decays it to 0 over learn()'s updates with the engine's cosine
   * schedule (the engine has no linear one), or give any engine schedule. Default constant.
   */
  annealLr?: boolean | LrScheduleConfig;
  /** Adam ε (default 1e-5, as SB3 and CleanRL). */
  adamEps?: number;
  /** Seed of the minibatch shuffling (default 0). */
  seed?: Seed;
  /** Folder to cache the loss graph's artifacts in. */
  artifactsDir?: string;
}

/**
 * What one PPO update did (SB3's logged quantities, averaged over the minibatches it ran). Stats objects
 * of the trainers (this, MetaUpdateStats) share one convention: `<What>Stats`, camelCase fields.
 */
export interface PpoUpdateStats {
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  clipFraction: number;
  /** k3 estimator over the steps with a free decision. */
  approxKl: number;
  explainedVariance: number;
  /** Optimizer steps taken in this update. */
  nUpdates: number;
  /** Epochs started (fewer than nEpochs after a target-KL stop). */
  epochs: number;
  earlyStopped: boolean;
  learningRate: number;
}

/**
 * Everything a PPOTrainer carries from one update to the next, so a trainer that lives for a whole run
 * (as stable-baselines3's PPO object does) can be saved and restored exactly.
 */
export interface PpoTrainerState {
  /** Weights, Adam moments and step count of the update session; null before the first update. */
  optimizer: CheckpointState | null;
  /** The minibatch-shuffling stream. */
  rng: RngState;
}

/** Per-minibatch information for hooks (tests, logging). */
export interface MinibatchInfo {
  epoch: number;
  index: number;
  /** [m, S] log r_t of the minibatch before its update. */
  logRatio: Float32Array;
  /** [m, S] 1 where the step has a free decision. */
  freeSteps: Uint8Array;
  approxKl: number;
  clipFraction: number;
}

/** A rollout's summary, passed to `learn`'s callback. */
export interface RolloutInfo {
  /** Environment steps taken so far (Σ over environments). */
  timesteps: number;
  /** Mean return of the episodes that ended in this rollout. */
  meanEpisodeReward: number;
  episodes: number;
}

export interface LearnOptions {
  totalSteps: number;
  /** Called after each update; return false to stop. */
  callback?: (info: RolloutInfo & { stats: PpoUpdateStats }) => boolean | void | Promise<boolean | void>;
}

export interface LearnResult {
  timesteps: number;
  history: (RolloutInfo & { stats: PpoUpdateStats })[];
}

type Resolved = Required<Omit<PpoConfig, 'clipRangeVf' | 'targetKl' | 'annealLr' | 'artifactsDir' | 'seed'>> &
  Pick<PpoConfig, 'clipRangeVf' | 'targetKl' | 'annealLr' | 'artifactsDir'>;

function resolve(c: PpoConfig): Resolved {
  const r: Resolved = {
    learningRate: c.learningRate ?? 3e-4,
    nSteps: c.nSteps ?? 128,
    batchSize: c.batchSize ?? 64,
    nEpochs: c.nEpochs ?? 4,
    gamma: c.gamma ?? 0.99,
    gaeLambda: c.gaeLambda ?? 0.95,
    clipRange: c.clipRange ?? 0.2,
    clipRangeVf: c.clipRangeVf,
    normalizeAdvantage: c.normalizeAdvantage ?? true,
    entCoef: c.entCoef ?? 0.01,
    vfCoef: c.vfCoef ?? 0.5,
    maxGradNorm: c.maxGradNorm ?? 0.5,
    targetKl: c.targetKl,
    annealLr: c.annealLr,
    adamEps: c.adamEps ?? 1e-5,
    artifactsDir: c.artifactsDir,
  };
  const pos = (k: keyof Resolved): void => {
    const v = r[k] as number;
    if (!(typeof v === 'number' && v > 0 && Number.isFinite(v)))
      throw new RlpkdError(`PPO: ${k} must be > 0, got ${String(v)}`);
  };
  (
    ['learningRate', 'nSteps', 'batchSize', 'nEpochs', 'clipRange', 'maxGradNorm', 'adamEps'] as const
  ).forEach(pos);
  if (r.batchSize < 2 && r.normalizeAdvantage) {
    throw new RlpkdError(
      'PPO: batchSize must be > 1 when advantages are normalized (stable-baselines3 #440)',
    );
  }
  for (const k of ['gamma', 'gaeLambda'] as const) {
    if (!(r[k] >= 0 && r[k] <= 1)) throw new RlpkdError(`PPO: ${k} must be in [0, 1], got ${r[k]}`);
  }
  return r;
}

/** PPO for a PolicyNetwork (see module doc). */
export class PPOTrainer {
  readonly config: Resolved;
  private optimizer: PolicyOptimizer | null = null;
  private readonly rng: Rng;
  private pendingSchedule: LrScheduleConfig | undefined;

  constructor(
    readonly policy: PolicyNetwork,
    config: PpoConfig = {},
  ) {
    this.config = resolve(config);
    this.rng = new Rng(config.seed ?? 0).fork('ppo-minibatches');
    if (typeof this.config.annealLr === 'object') this.pendingSchedule = this.config.annealLr;
  }

  /** The engine session behind the updates (created on first use). */
  async getOptimizer(): Promise<PolicyOptimizer> {
    if (!this.optimizer) {
      this.optimizer = await PolicyOptimizer.create(this.policy, {
        optimizer: { type: 'adamw', lr: this.config.learningRate, eps: this.config.adamEps, weightDecay: 0 },
        maxGradNorm: this.config.maxGradNorm,
        clipValue: this.config.clipRangeVf !== undefined,
        // Without a target-KL check before each update, forward + backward + update run as one graph.
        fused: this.config.targetKl === undefined,
        ...(this.pendingSchedule ? { lrSchedule: this.pendingSchedule } : {}),
        ...(this.config.artifactsDir ? { artifactsDir: this.config.artifactsDir } : {}),
      });
    }
    return this.optimizer;
  }

  /** The trainer's state (see PpoTrainerState); the policy's own state is saved with the policy. */
  getState(): PpoTrainerState {
    return {
      optimizer: this.optimizer ? this.optimizer.session.checkpointState() : null,
      rng: this.rng.getState(),
    };
  }

  /**
   * Restores `getState()` output: the update session's Adam moments and step (created now if needed) and
   * the shuffling stream. The session takes the policy's current weights, which are the source of truth.
   */
  async setState(state: PpoTrainerState): Promise<void> {
    this.rng.setState(state.rng);
    if (state.optimizer) {
      const opt = await this.getOptimizer();
      await opt.session.loadCheckpoint(state.optimizer);
      await opt.loadParameters(this.policy.getParameters());
    } else if (this.optimizer) {
      await this.release();
    }
  }

  private coefficients(): PpoCoefficients {
    const c = this.config;
    return {
      clipRange: c.clipRange,
      ...(c.clipRangeVf !== undefined ? { clipRangeVf: c.clipRangeVf } : {}),
      entCoef: c.entCoef,
      vfCoef: c.vfCoef,
      normalizeAdvantage: c.normalizeAdvantage,
    };
  }

  /** Episodes per minibatch: batchSize transitions rounded to whole episodes (at least 2). */
  episodesPerMinibatch(steps: number): number {
    return Math.max(2, Math.round(this.config.batchSize / steps));
  }

  /**
   * A shuffled split of `count` episodes into round(count / per) minibatches whose sizes differ by at
   * most one (so no minibatch is a lone leftover episode, unlike a fixed size with a truncated last).
   */
  private minibatches(count: number, per: number): number[][] {
    const order = this.rng.shuffle(Array.from({ length: count }, (_, i) => i));
    const k = Math.max(1, Math.round(count / per));
    return Array.from({ length: k }, (_, j) =>
      order.slice(Math.floor((j * count) / k), Math.floor(((j + 1) * count) / k)),
    );
  }

  /**
   * One PPO update on a rollout whose advantages and returns are computed: nEpochs passes over shuffled
   * minibatches of whole episodes. Updates the policy's weights; returns the logged quantities.
   */
  async trainStep(
    rollout: EpisodeBatch,
    hooks: { onMinibatch?: (info: MinibatchInfo) => void } = {},
  ): Promise<PpoUpdateStats> {
    const opt = await this.getOptimizer();
    const c = this.config;
    const coef = this.coefficients();
    const per = this.episodesPerMinibatch(rollout.steps);
    const acc = { pg: 0, vf: 0, ent: 0, clip: 0, kl: 0, n: 0 };
    let updates = 0;
    let epochs = 0;
    let stopped = false;
    let lr = opt.session.learningRate;
    for (let epoch = 0; epoch < c.nEpochs && !stopped; epoch++) {
      epochs++;
      const batches = this.minibatches(rollout.count, per);
      for (let index = 0; index < batches.length; index++) {
        const rows = batches[index];
        const feeds = opt.feeds(rollout, rows, coef);
        lr = opt.session.learningRate;
        let out;
        if (c.targetKl === undefined) {
          out = await opt.fusedStep(feeds);
          updates++;
        } else {
          await opt.lazyResetGrad();
          out = await opt.trainStep(feeds);
        }
        const free = freeSteps(rollout, rows);
        const { approxKl, clipFraction } = ratioStats(out.logRatio, free, c.clipRange);
        hooks.onMinibatch?.({
          epoch,
          index,
          logRatio: out.logRatio,
          freeSteps: free,
          approxKl,
          clipFraction,
        });
        acc.pg += out.policyLoss;
        acc.vf += out.valueLoss;
        acc.ent += out.entropy;
        acc.clip += clipFraction;
        acc.kl += approxKl;
        acc.n++;
        if (c.targetKl === undefined) continue;
        // stable-baselines3: checked on the minibatch before its update; stops all remaining epochs.
        if (approxKl > 1.5 * c.targetKl) {
          stopped = true;
          break;
        }
        await opt.optimizerStep();
        updates++;
      }
    }
    await opt.syncPolicy();
    const n = Math.max(acc.n, 1);
    return {
      policyLoss: acc.pg / n,
      valueLoss: acc.vf / n,
      entropy: acc.ent / n,
      clipFraction: acc.clip / n,
      approxKl: acc.kl / n,
      explainedVariance: explainedVariance(rollout.values, rollout.returns),
      nUpdates: updates,
      epochs,
      earlyStopped: stopped,
      learningRate: lr,
    };
  }

  /** stable-baselines3-style training loop: collect a rollout, update, repeat until totalSteps. */
  async learn(env: VecEnv, options: LearnOptions): Promise<LearnResult> {
    checkPolicyEnv(this.policy, env);
    const S = stepsPerEpisode(env);
    if (this.config.nSteps % S !== 0) {
      throw new RlpkdError(`PPO: nSteps ${this.config.nSteps} must be a multiple of the episode length ${S}`);
    }
    const perRollout = this.config.nSteps * env.numEnvs;
    const rollouts = Math.max(1, Math.ceil(options.totalSteps / perRollout));
    if (this.config.annealLr === true && !this.optimizer) {
      const episodes = (this.config.nSteps / S) * env.numEnvs;
      const mbs = Math.max(1, Math.round(episodes / this.episodesPerMinibatch(S)));
      // One step past the last update, so the last update still has a (small) positive rate.
      this.pendingSchedule = {
        type: 'cosine',
        totalSteps: rollouts * this.config.nEpochs * mbs + 1,
        minLr: 0,
      };
    }
    let cursor = await resetEnv(env);
    const history: LearnResult['history'] = [];
    let timesteps = 0;
    for (let i = 0; i < rollouts; i++) {
      const r = await collectRollout(this.policy, env, cursor, {
        nSteps: this.config.nSteps,
        gamma: this.config.gamma,
        gaeLambda: this.config.gaeLambda,
      });
      cursor = r.next;
      timesteps += perRollout;
      const stats = await this.trainStep(r.episodes);
      const rewards = r.summaries.map((x) => x.reward);
      const info = {
        timesteps,
        meanEpisodeReward: rewards.length ? rewards.reduce((a, b) => a + b, 0) / rewards.length : Number.NaN,
        episodes: rewards.length,
        stats,
      };
      history.push(info);
      if ((await options.callback?.(info)) === false) break;
    }
    return { timesteps, history };
  }

  async release(): Promise<void> {
    await this.optimizer?.release();
    this.optimizer = null;
  }
}

/** k3 approximate KL (mean((r − 1) − log r)) and clip fraction over the steps with a free decision. */
export function ratioStats(
  logRatio: ArrayLike<number>,
  free: ArrayLike<number>,
  clipRange: number,
): { approxKl: number; clipFraction: number } {
  let n = 0;
  let kl = 0;
  let clipped = 0;
  for (let i = 0; i < logRatio.length; i++) {
    if (!free[i]) continue;
    const lr = logRatio[i];
    const r = Math.exp(lr);
    kl += r - 1 - lr;
    if (Math.abs(r - 1) > clipRange) clipped++;
    n++;
  }
  return n ? { approxKl: kl / n, clipFraction: clipped / n } : { approxKl: 0, clipFraction: 0 };
}
