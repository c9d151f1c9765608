/**
 * Generalized advantage estimation (Schulman et al. 2016) over a time-major rollout of N environments,
 * with the episode-end and truncation handling of stable-baselines3 / CleanRL made explicit.
 */
import { RlpkdError } from '../errors';

/** One rollout of `numSteps` × `numEnvs` transitions, time-major (`t * numEnvs + env`). */
export interface GaeInput {
  numSteps: number;
  numEnvs: number;
  /** r_t, reward received after the action of step t. */
  rewards: ArrayLike<number>;
  /** V(s_t) as predicted when the action of step t was chosen. */
  values: ArrayLike<number>;
  /** 1 when the episode ended after step t (terminated or truncated): no advantage flows back across it. */
  dones: ArrayLike<number>;
  /**
   * 1 when the episode ended after step t only because of a time limit (it would have gone on): the
   * value of the state it would have continued from (`terminalValues[t]`) is bootstrapped. Omit when no
   * episode is ever truncated (the MDPs of this toolkit end after a fixed number of decisions, which is
   * a true termination).
   */
  truncated?: ArrayLike<number>;
  /** V(terminal state of step t); read only where `truncated[t]` is 1. */
  terminalValues?: ArrayLike<number>;
  /** V(s_T) per environment: the value of the state after the rollout, bootstrapped where not done. */
  lastValues: ArrayLike<number>;
  gamma: number;
  lambda: number;
}

/** Advantages A_t and value targets R_t = A_t + V(s_t), time-major like the input. */
export interface GaeResult {
  advantages: Float64Array;
  returns: Float64Array;
}

/**
 * GAE(γ, λ):  δ_t = r_t + γ·V_next·(1 − done_t) + γ·V_term·truncated_t − V(s_t),
 * A_t = δ_t + γλ·(1 − done_t)·A_{t+1}; V_next is V(s_{t+1}) or, after the last step, `lastValues`.
 */
export function computeGae(input: GaeInput): GaeResult {
  const { numSteps: T, numEnvs: N, gamma, lambda } = input;
  const n = T * N;
  for (const [name, arr] of [
    ['rewards', input.rewards],
    ['values', input.values],
    ['dones', input.dones],
  ] as const) {
    if (arr.length !== n)
      throw new RlpkdError(`computeGae: ${name} has ${arr.length} entries, expected ${T}×${N}`);
  }
  if (input.lastValues.length !== N) {
    throw new RlpkdError(`computeGae: lastValues has ${input.lastValues.length} entries, expected ${N}`);
  }
  if (
    input.truncated &&
    (input.truncated.length !== n || !input.terminalValues || input.terminalValues.length !== n)
  ) {
    throw new RlpkdError('computeGae: truncated and terminalValues must both have one entry per transition');
  }
  const advantages = new Float64Array(n);
  const returns = new Float64Array(n);
  for (let e = 0; e < N; e++) {
    let next = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = t * N + e;
      const nonterminal = input.dones[i] ? 0 : 1;
      const nextValue = t === T - 1 ? input.lastValues[e] : input.values[i + N];
      let delta = input.rewards[i] + gamma * nextValue * nonterminal - input.values[i];
      if (input.truncated && input.truncated[i]) delta += gamma * input.terminalValues![i];
      next = delta + gamma * lambda * nonterminal * next;
      advantages[i] = next;
      returns[i] = next + input.values[i];
    }
  }
  return { advantages, returns };
}

/** 1 − Var(y − ŷ)/Var(y): 1 is a perfect value function, 0 no better than a constant; NaN when Var(y) = 0. */
export function explainedVariance(predicted: ArrayLike<number>, target: ArrayLike<number>): number {
  const n = target.length;
  if (n === 0) return Number.NaN;
  let my = 0;
  let md = 0;
  for (let i = 0; i < n; i++) {
    my += target[i];
    md += target[i] - predicted[i];
  }
  my /= n;
  md /= n;
  let vy = 0;
  let vd = 0;
  for (let i = 0; i < n; i++) {
    vy += (target[i] - my) ** 2;
    vd += (target[i] - predicted[i] - md) ** 2;
  }
  return vy === 0 ? Number.NaN : 1 - vd / vy;
}
