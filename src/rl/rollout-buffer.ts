/**
 * On-policy storage for one PPO rollout: `numSteps` lockstep steps of `numEnvs` environments, stored
 * time-major as collected, with GAE computed per environment column and then regrouped into whole
 * episodes (the unit the sequential policy is re-evaluated on, by teacher forcing).
 *
 * Group baseline (rl.ppo.group_size K > 1): where the environment runs K consecutive episodes per image
 * and budget, an episode's advantage, on every one of its steps, is its return minus the mean return of
 * the other K − 1 episodes of its group (the leave-one-out baseline of Kool et al., "Buy 4 REINFORCE
 * samples, get a baseline for free", 2019). That removes what the image itself contributes to the reward
 * (how much any update helps it), which a value function fed the state explains only in part; the value
 * targets stay the GAE returns.
 */
import { RlpkdError } from '../errors';
import { allocateEpisodes, copyStep, type EpisodeBatch, type StepRows } from './episode-batch';
import { computeGae } from './gae';

export interface RolloutBufferOptions {
  numSteps: number;
  numEnvs: number;
  stateDim: number;
  /** Decisions per step: 1 (sequential) or L (independent). */
  decisions: number;
  /** Steps per episode: L (sequential) or 1 (independent); numSteps must be a multiple of it. */
  stepsPerEpisode: number;
}

/** One lockstep step of every environment. */
export interface RolloutStep {
  /** [N, D] states as fed to the policy. */
  states: Float32Array;
  /** [N, A] decisions taken. */
  actions: Uint8Array;
  /** [N, A] DecisionKind of each decision. */
  kinds: Uint8Array;
  /** [N, A] logits the policy produced. */
  logits: Float32Array;
  /** [N] log π of the step's action. */
  logProbs: ArrayLike<number>;
  /** [N] V(s). */
  values: ArrayLike<number>;
  /** [N] rewards received. */
  rewards: ArrayLike<number>;
  /** [N] 1 where the step ended the episode. */
  dones: ArrayLike<number>;
  /** [N] budget of the episode the step belongs to. */
  budgets: ArrayLike<number>;
}

/** Fixed-size on-policy buffer (see module doc). */
export class RolloutBuffer {
  readonly options: RolloutBufferOptions;
  private readonly states: Float32Array;
  private readonly actions: Uint8Array;
  private readonly kinds: Uint8Array;
  private readonly logits: Float32Array;
  private readonly logProbs: Float64Array;
  private readonly values: Float64Array;
  private readonly rewards: Float64Array;
  private readonly dones: Uint8Array;
  private readonly budgets: Float64Array;
  private advantages: Float64Array | null = null;
  private returns: Float64Array | null = null;
  private pos = 0;

  constructor(options: RolloutBufferOptions) {
    const { numSteps: T, numEnvs: N, stateDim: D, decisions: A, stepsPerEpisode: S } = options;
    if (!(T > 0 && N > 0 && D > 0 && A > 0 && S > 0))
      throw new RlpkdError('RolloutBuffer: every size must be ≥ 1');
    if (T % S !== 0) {
      throw new RlpkdError(`RolloutBuffer: numSteps ${T} is not a multiple of the episode length ${S}`, {
        hint: 'choose nSteps as a multiple of the number of decision steps per episode',
      });
    }
    this.options = options;
    this.states = new Float32Array(T * N * D);
    this.actions = new Uint8Array(T * N * A);
    this.kinds = new Uint8Array(T * N * A);
    this.logits = new Float32Array(T * N * A);
    this.logProbs = new Float64Array(T * N);
    this.values = new Float64Array(T * N);
    this.rewards = new Float64Array(T * N);
    this.dones = new Uint8Array(T * N);
    this.budgets = new Float64Array(T * N);
  }

  /** Steps stored so far. */
  get size(): number {
    return this.pos;
  }

  get full(): boolean {
    return this.pos === this.options.numSteps;
  }

  /** Empties the buffer for the next rollout. */
  reset(): void {
    this.pos = 0;
    this.advantages = null;
    this.returns = null;
  }

  /** Appends one lockstep step. */
  add(step: RolloutStep): void {
    const { numSteps: T, numEnvs: N, stateDim: D, decisions: A } = this.options;
    if (this.pos >= T) throw new RlpkdError(`RolloutBuffer: full (${T} steps)`);
    const check = (name: string, len: number, want: number): void => {
      if (len !== want)
        throw new RlpkdError(`RolloutBuffer.add: ${name} has ${len} values, expected ${want}`);
    };
    check('states', step.states.length, N * D);
    check('actions', step.actions.length, N * A);
    check('kinds', step.kinds.length, N * A);
    check('logits', step.logits.length, N * A);
    for (const [name, arr] of [
      ['logProbs', step.logProbs],
      ['values', step.values],
      ['rewards', step.rewards],
      ['dones', step.dones],
      ['budgets', step.budgets],
    ] as const) {
      check(name, arr.length, N);
    }
    const t = this.pos;
    this.states.set(step.states, t * N * D);
    this.actions.set(step.actions, t * N * A);
    this.kinds.set(step.kinds, t * N * A);
    this.logits.set(step.logits, t * N * A);
    for (let e = 0; e < N; e++) {
      this.logProbs[t * N + e] = step.logProbs[e];
      this.values[t * N + e] = step.values[e];
      this.rewards[t * N + e] = step.rewards[e];
      this.dones[t * N + e] = step.dones[e] ? 1 : 0;
      this.budgets[t * N + e] = step.budgets[e];
    }
    this.pos++;
  }

  /** GAE advantages and returns, bootstrapping from V(s_T) where the last episode did not end. */
  computeReturnsAndAdvantages(lastValues: ArrayLike<number>, gamma: number, lambda: number): void {
    if (!this.full)
      throw new RlpkdError(`RolloutBuffer: ${this.pos} of ${this.options.numSteps} steps collected`);
    const r = computeGae({
      numSteps: this.options.numSteps,
      numEnvs: this.options.numEnvs,
      rewards: this.rewards,
      values: this.values,
      dones: this.dones,
      lastValues,
      gamma,
      lambda,
    });
    this.advantages = r.advantages;
    this.returns = r.returns;
  }

  /**
   * Replaces the GAE advantages with group-relative ones (module doc): episodes (block b, env e) with
   * the same ⌊b / K⌋ form a group. Call after computeReturnsAndAdvantages.
   */
  useGroupAdvantages(groupSize: number): void {
    if (!this.advantages) throw new RlpkdError('RolloutBuffer: call computeReturnsAndAdvantages first');
    const { numSteps: T, numEnvs: N, stepsPerEpisode: S } = this.options;
    const blocks = T / S;
    if (!Number.isInteger(groupSize) || groupSize < 2 || blocks % groupSize !== 0) {
      throw new RlpkdError(
        `RolloutBuffer: ${blocks} episodes per environment do not split into groups of ${groupSize}`,
        { hint: 'rl.ppo.rollout_episodes / num_parallel_envs must be a multiple of rl.ppo.group_size' },
      );
    }
    const K = groupSize;
    const returns = new Float64Array(K);
    for (let e = 0; e < N; e++) {
      for (let g = 0; g < blocks / K; g++) {
        let total = 0;
        for (let j = 0; j < K; j++) {
          let r = 0;
          for (let s = 0; s < S; s++) r += this.rewards[((g * K + j) * S + s) * N + e];
          returns[j] = r;
          total += r;
        }
        for (let j = 0; j < K; j++) {
          const a = returns[j] - (total - returns[j]) / (K - 1);
          for (let s = 0; s < S; s++) this.advantages[((g * K + j) * S + s) * N + e] = a;
        }
      }
    }
  }

  /**
   * The rollout as whole episodes: episode (block b, env e) holds steps bS..bS+S−1 of env e. Throws when
   * the environments' done flags do not mark exactly those episode ends (the lockstep contract).
   */
  episodes(): EpisodeBatch {
    if (!this.advantages || !this.returns) {
      throw new RlpkdError('RolloutBuffer.episodes: call computeReturnsAndAdvantages first');
    }
    const { numSteps: T, numEnvs: N, stateDim: D, decisions: A, stepsPerEpisode: S } = this.options;
    const blocks = T / S;
    const out = allocateEpisodes(blocks * N, { steps: S, decisions: A, stateDim: D });
    const steps: StepRows = {
      states: this.states,
      actions: this.actions,
      kinds: this.kinds,
      logits: this.logits,
      logProbs: this.logProbs,
      values: this.values,
      rewards: this.rewards,
      advantages: this.advantages,
      returns: this.returns,
    };
    for (let b = 0; b < blocks; b++) {
      for (let e = 0; e < N; e++) {
        const m = b * N + e;
        out.budgets[m] = this.budgets[b * S * N + e];
        for (let s = 0; s < S; s++) {
          const t = b * S + s;
          const i = t * N + e;
          const done = this.dones[i];
          if ((s === S - 1) !== (done === 1)) {
            throw new RlpkdError(
              `rollout step ${t}, env ${e}: done=${done} but episodes must last exactly ${S} steps in lockstep`,
              {
                hint: 'a VecEnv must end every episode after numLevels steps (sequential) or 1 step (independent)',
              },
            );
          }
          const j = m * S + s;
          copyStep(steps, i, out, j, out);
        }
      }
    }
    return out;
  }
}
