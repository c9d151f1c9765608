/**
 * MAMLTrainer: meta-learns the policy's initial weights over a family of level-selection tasks (Finn et
 * al. 2017), first-order (FOMAML): for each task, support episodes from the current weights θ, `innerSteps`
 * SGD steps of the PPO loss on them give θ'; query episodes from θ' give ∇L_query(θ'), averaged over the
 * tasks and applied to θ by Adam. Support = pre-adaptation rollouts, query = post-adaptation rollouts, as
 * in pytorch-maml-rl. Second-order MAML needs the gradient of the inner update itself (the autodiff
 * differentiating its own gradient graph); it is not offered (see the README's RL section).
 *
 * All updates run through the engine: the inner loop on a TrainingSession with SGD, the outer one on a
 * TrainingSession with Adam whose accumulated gradients are taken at each task's θ' (loadParameters(θ'),
 * trainStep) before its parameters are set back to θ for the optimizer step.
 */
import { RlpkdError } from '../errors';
import type { CheckpointState } from '../training/checkpoint';
import { Rng, type RngState, type Seed } from '../util/rng';
import type { EpisodeBatch } from './episode-batch';
import type { PolicyNetwork } from './policy';
import type { PolicyParameter } from './policy-graph';
import { PolicyOptimizer, type PpoCoefficients } from './policy-optimizer';
import { checkPolicyEnv, collectRollout, resetEnv } from './rollout';
import { stepsPerEpisode, type VecEnv } from './vec-env';

export interface MamlConfig {
  /** SGD step size of the inner (adaptation) loop (default 0.1). */
  innerLr?: number;
  /** Inner steps during meta-training (default 1). */
  innerSteps?: number;
  /** Adam learning rate of the meta update (default 1e-3). */
  metaLr?: number;
  /** Only first-order MAML is available (default true; false is an error). */
  firstOrder?: boolean;
  /** Episodes collected per task for the support set (default 64, rounded to whole env batches). */
  supportEpisodes?: number;
  /** Episodes collected per task for the query set (default 64). */
  queryEpisodes?: number;
  gamma?: number;
  gaeLambda?: number;
  clipRange?: number;
  entCoef?: number;
  vfCoef?: number;
  /** Global gradient-norm bound of the meta update (default 0.5). */
  maxGradNorm?: number;
  /** Gradient-norm bound of each inner step (default none). */
  innerMaxGradNorm?: number;
  /** Merge the states of meta-training rollouts into the normalizer statistics (default true). */
  updateNormalizer?: boolean;
  seed?: Seed;
}

/** What one meta update saw. */
export interface MetaUpdateStats {
  tasks: number;
  /** Mean episode reward of the support rollouts (before adaptation). */
  preAdaptReward: number;
  /** Mean episode reward of the query rollouts (after adaptation). */
  postAdaptReward: number;
  /** Mean query loss at θ'. */
  queryLoss: number;
  /** Gradient norm of the averaged meta-gradient before clipping. */
  gradNorm: number;
}

/**
 * Everything a MAMLTrainer carries from one meta update to the next. The inner loop is plain SGD without
 * momentum that starts from the given weights every time, so it has no state of its own.
 */
export interface MamlTrainerState {
  /** Weights, Adam moments and step count of the meta (outer) update; null before the first one. */
  outer: CheckpointState | null;
  /** The task-order stream. */
  rng: RngState;
}

type Resolved = Required<Omit<MamlConfig, 'seed' | 'innerMaxGradNorm'>> &
  Pick<MamlConfig, 'innerMaxGradNorm'>;

/** First-order MAML for a PolicyNetwork (see module doc). */
export class MAMLTrainer {
  readonly config: Resolved;
  private inner: PolicyOptimizer | null = null;
  private outer: PolicyOptimizer | null = null;
  private readonly rng: Rng;

  constructor(
    readonly policy: PolicyNetwork,
    config: MamlConfig = {},
  ) {
    if (config.firstOrder === false) {
      throw new RlpkdError(
        'second-order MAML is not available: the engine does not differentiate its own gradient graphs',
        {
          hint: 'use firstOrder: true (FOMAML), the default',
        },
      );
    }
    this.config = {
      innerLr: config.innerLr ?? 0.1,
      innerSteps: config.innerSteps ?? 1,
      metaLr: config.metaLr ?? 1e-3,
      firstOrder: true,
      supportEpisodes: config.supportEpisodes ?? 64,
      queryEpisodes: config.queryEpisodes ?? 64,
      gamma: config.gamma ?? 0.99,
      gaeLambda: config.gaeLambda ?? 0.95,
      clipRange: config.clipRange ?? 0.2,
      entCoef: config.entCoef ?? 0.01,
      vfCoef: config.vfCoef ?? 0.5,
      maxGradNorm: config.maxGradNorm ?? 0.5,
      innerMaxGradNorm: config.innerMaxGradNorm,
      updateNormalizer: config.updateNormalizer ?? true,
    };
    for (const k of ['innerLr', 'innerSteps', 'metaLr', 'supportEpisodes', 'queryEpisodes'] as const) {
      if (!(this.config[k] > 0)) throw new RlpkdError(`MAML: ${k} must be > 0, got ${this.config[k]}`);
    }
    this.rng = new Rng(config.seed ?? 0).fork('maml');
  }

  private async optimizers(): Promise<{ inner: PolicyOptimizer; outer: PolicyOptimizer }> {
    if (!this.inner) {
      this.inner = await PolicyOptimizer.create(this.policy, {
        optimizer: { type: 'sgd', lr: this.config.innerLr, momentum: 0, weightDecay: 0 },
        ...(this.config.innerMaxGradNorm ? { maxGradNorm: this.config.innerMaxGradNorm } : {}),
      });
    }
    if (!this.outer) {
      this.outer = await PolicyOptimizer.create(this.policy, {
        optimizer: { type: 'adamw', lr: this.config.metaLr, eps: 1e-5, weightDecay: 0 },
        maxGradNorm: this.config.maxGradNorm,
      });
    }
    return { inner: this.inner, outer: this.outer };
  }

  /** The trainer's state (see MamlTrainerState); the policy's own state is saved with the policy. */
  getState(): MamlTrainerState {
    return { outer: this.outer ? this.outer.session.checkpointState() : null, rng: this.rng.getState() };
  }

  /**
   * Restores `getState()` output: the meta optimizer's Adam moments and step (its session created now if
   * needed) and the task-order stream. The session takes the policy's current weights (the source of truth).
   */
  async setState(state: MamlTrainerState): Promise<void> {
    this.rng.setState(state.rng);
    if (state.outer) {
      const { outer } = await this.optimizers();
      await outer.session.loadCheckpoint(state.outer);
      await outer.loadParameters(this.policy.getParameters());
    } else if (this.outer) {
      await this.outer.release();
      this.outer = null;
    }
  }

  private coefficients(lossScale = 1): PpoCoefficients {
    return {
      clipRange: this.config.clipRange,
      entCoef: this.config.entCoef,
      vfCoef: this.config.vfCoef,
      lossScale,
      normalizeAdvantage: true,
    };
  }

  /** Episodes of `env` with the given weights (the policy holds them afterwards). */
  async collect(
    env: VecEnv,
    params: readonly PolicyParameter[],
    episodes: number,
    updateNormalizer: boolean,
  ): Promise<{ batch: EpisodeBatch; meanReward: number }> {
    checkPolicyEnv(this.policy, env);
    await this.policy.setParameters(params);
    const S = stepsPerEpisode(env);
    const r = await collectRollout(this.policy, env, await resetEnv(env), {
      nSteps: Math.max(1, Math.ceil(episodes / env.numEnvs)) * S,
      gamma: this.config.gamma,
      gaeLambda: this.config.gaeLambda,
      updateNormalizer,
    });
    const rewards = r.summaries.map((s) => s.reward);
    return {
      batch: r.episodes,
      meanReward: rewards.reduce((a, b) => a + b, 0) / Math.max(1, rewards.length),
    };
  }

  /** `steps` SGD steps of the PPO loss on the support episodes from `start`; returns θ'. */
  private async adapt(
    start: readonly PolicyParameter[],
    support: EpisodeBatch,
    steps: number,
  ): Promise<PolicyParameter[]> {
    const { inner } = await this.optimizers();
    await inner.loadParameters(start);
    const rows = Array.from({ length: support.count }, (_, i) => i);
    const feeds = inner.feeds(support, rows, this.coefficients());
    for (let k = 0; k < steps; k++) {
      await inner.lazyResetGrad();
      await inner.trainStep(feeds);
      await inner.optimizerStep();
    }
    return inner.getParameters();
  }

  /**
   * One meta update over `tasks` (one environment per task): adapt to each task's support episodes,
   * accumulate the query gradients at the adapted weights, update the initial weights. The policy holds
   * the updated initial weights afterwards.
   */
  async metaUpdate(tasks: readonly VecEnv[]): Promise<MetaUpdateStats> {
    if (tasks.length === 0) throw new RlpkdError('MAML.metaUpdate: no tasks');
    const { outer } = await this.optimizers();
    const theta = this.policy.getParameters();
    let pre = 0;
    let post = 0;
    let qLoss = 0;
    await outer.lazyResetGrad();
    for (const env of this.rng.shuffle([...tasks])) {
      const support = await this.collect(
        env,
        theta,
        this.config.supportEpisodes,
        this.config.updateNormalizer,
      );
      const adapted = await this.adapt(theta, support.batch, this.config.innerSteps);
      const query = await this.collect(env, adapted, this.config.queryEpisodes, false);
      await outer.loadParameters(adapted);
      const rows = Array.from({ length: query.batch.count }, (_, i) => i);
      const out = await outer.trainStep(outer.feeds(query.batch, rows, this.coefficients(1 / tasks.length)));
      pre += support.meanReward;
      post += query.meanReward;
      qLoss += out.loss;
    }
    await outer.loadParameters(theta);
    const step = await outer.optimizerStep();
    await outer.syncPolicy();
    return {
      tasks: tasks.length,
      preAdaptReward: pre / tasks.length,
      postAdaptReward: post / tasks.length,
      queryLoss: qLoss,
      gradNorm: step.gradNorm,
    };
  }

  /**
   * Adapts the current weights to one task: `steps` SGD steps (default 5) of the PPO loss on support
   * episodes — given, or collected from `support` when it is an environment. Returns the adapted weights;
   * with `apply` the policy takes them (otherwise it keeps its current weights).
   */
  async fastAdapt(
    support: EpisodeBatch | VecEnv,
    options: { steps?: number; episodes?: number; apply?: boolean } = {},
  ): Promise<PolicyParameter[]> {
    const start = this.policy.getParameters();
    const batch = isEpisodeBatch(support)
      ? support
      : (await this.collect(support, start, options.episodes ?? this.config.supportEpisodes, false)).batch;
    const adapted = await this.adapt(start, batch, options.steps ?? 5);
    await this.policy.setParameters(options.apply ? adapted : start);
    return adapted;
  }

  async release(): Promise<void> {
    await this.inner?.release();
    await this.outer?.release();
    this.inner = null;
    this.outer = null;
  }
}

function isEpisodeBatch(x: EpisodeBatch | VecEnv): x is EpisodeBatch {
  return (x as EpisodeBatch).states instanceof Float32Array && typeof (x as EpisodeBatch).count === 'number';
}
