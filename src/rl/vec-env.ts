/**
 * The vectorized environment interface the PPO trainer, the MAML trainer and the policy speak. Users plug
 * their own level-selection problem in by implementing `VecEnv`; the toolkit's DistillationEnvironment
 * and the contextual bandits of the tests implement it too.
 *
 * Contract:
 * - `numEnvs` environments run in lockstep. An episode is one image (or one context): in `sequential`
 *   mode it has exactly `numLevels` steps, step k deciding level k (decision order); in `independent`
 *   mode it has exactly one step deciding all levels at once.
 * - `reset()` starts a fresh episode in every environment. `step(actions)` applies one decision per
 *   environment (`sequential`: `actions[env]`; `independent`: `actions[env * numLevels + k]`), each 0 or 1.
 *   When an episode ends (`dones[env] = 1`), the environment starts the next one at once and `states`
 *   holds that new episode's first state (auto-reset, as in stable-baselines3's VecEnv); the state the
 *   episode ended in is `infos[env].terminalState`.
 * - `budgets[env]` is the budget (share of the full pyramid's cost, in (0, 1]) of the episode that
 *   `states` belong to; the policy masks levels the remaining budget cannot pay for.
 * - Rewards are 0 except on the step that ends an episode, by convention of this toolkit's MDPs (the
 *   trainer does not rely on it).
 */
import { RlpkdError } from '../errors';

/** How an episode's decisions are split into steps. */
export type ActionMode = 'sequential' | 'independent';

/** Per-environment extras returned by `step`. */
export interface StepInfo {
  /** Present on the step that ended an episode. */
  episode?: EpisodeSummary;
  /** The final state of the episode that just ended (the returned state is already the next episode's). */
  terminalState?: Float32Array;
}

/** What an episode did, reported on its last step. */
export interface EpisodeSummary {
  /** Sum of the episode's rewards. */
  reward: number;
  /** Names of the levels selected, in decision order. */
  selectedLevels: string[];
  /** Σ cost of the selected levels. */
  usedCost: number;
  /** 1 − usedCost: the share of the full pyramid's cost the selection saved. */
  savedCost: number;
  /** The episode's budget. */
  budget: number;
}

/** States after `reset()`. */
export interface VecResetResult {
  /** [numEnvs × stateDim], environment-major. */
  states: Float32Array;
  /** [numEnvs] budget of each environment's current episode. */
  budgets: Float64Array;
}

/** Result of one `step()`. */
export interface VecStepResult<I extends StepInfo = StepInfo> extends VecResetResult {
  /** [numEnvs] reward of this step. */
  rewards: Float64Array;
  /** [numEnvs] 1 where this step ended the episode. */
  dones: Uint8Array;
  /** [numEnvs] extras. */
  infos: I[];
}

/** A batch of level-selection episodes (see the module documentation for the full contract). */
export interface VecEnv<I extends StepInfo = StepInfo> {
  readonly numEnvs: number;
  readonly stateDim: number;
  /** Number of levels (= decisions per episode). */
  readonly numLevels: number;
  /** Cost of each level, in decision order. */
  readonly costs: readonly number[];
  /** Name of each level, in decision order (e.g. ['p2', 'p3', 'p4', 'p5']). */
  readonly levelNames: readonly string[];
  readonly actionMode: ActionMode;
  reset(): Promise<VecResetResult>;
  step(actions: Uint8Array): Promise<VecStepResult<I>>;
  /** Releases sessions or workers the environment holds. */
  close?(): Promise<void>;
}

/** Steps per episode: numLevels in sequential mode, 1 in independent mode. */
export function stepsPerEpisode(env: Pick<VecEnv, 'actionMode' | 'numLevels'>): number {
  return env.actionMode === 'sequential' ? env.numLevels : 1;
}

/** Decisions per step: 1 in sequential mode, numLevels in independent mode. */
export function decisionsPerStep(env: Pick<VecEnv, 'actionMode' | 'numLevels'>): number {
  return env.actionMode === 'sequential' ? 1 : env.numLevels;
}

/** Throws a clear error when an environment's declared dimensions are inconsistent. */
export function validateVecEnv(env: VecEnv): void {
  const where = `environment (${env.numEnvs} envs, ${env.numLevels} levels)`;
  if (!Number.isInteger(env.numEnvs) || env.numEnvs < 1)
    throw new RlpkdError(`${where}: numEnvs must be ≥ 1`);
  if (!Number.isInteger(env.stateDim) || env.stateDim < 1)
    throw new RlpkdError(`${where}: stateDim must be ≥ 1`);
  if (!Number.isInteger(env.numLevels) || env.numLevels < 1)
    throw new RlpkdError(`${where}: numLevels must be ≥ 1`);
  if (env.costs.length !== env.numLevels) {
    throw new RlpkdError(`${where}: costs has ${env.costs.length} entries, expected ${env.numLevels}`);
  }
  if (env.costs.some((c) => !(c >= 0) || !Number.isFinite(c))) {
    throw new RlpkdError(`${where}: costs must be finite and ≥ 0, got [${env.costs.join(', ')}]`);
  }
  if (env.levelNames.length !== env.numLevels) {
    throw new RlpkdError(
      `${where}: levelNames has ${env.levelNames.length} entries, expected ${env.numLevels}`,
    );
  }
  if (env.actionMode !== 'sequential' && env.actionMode !== 'independent') {
    throw new RlpkdError(
      `${where}: actionMode must be 'sequential' or 'independent', got '${String(env.actionMode)}'`,
    );
  }
}

/** Checks the arrays an environment returned against its declared sizes. */
export function checkVecResult(env: VecEnv, result: VecResetResult, what: string): void {
  if (result.states.length !== env.numEnvs * env.stateDim) {
    throw new RlpkdError(
      `${what}: states has ${result.states.length} values, expected numEnvs×stateDim = ${env.numEnvs}×${env.stateDim}`,
    );
  }
  if (result.budgets.length !== env.numEnvs) {
    throw new RlpkdError(`${what}: budgets has ${result.budgets.length} entries, expected ${env.numEnvs}`);
  }
  for (let i = 0; i < env.numEnvs; i++) {
    if (!(result.budgets[i] > 0))
      throw new RlpkdError(`${what}: budget of env ${i} must be > 0, got ${result.budgets[i]}`);
  }
}

/**
 * Records one step's 0/1 decisions of every env of `env` (sequential: the decision for level `k`;
 * independent: one per level) in its row of `selected` ([numEnvs, numLevels]) and its `used` cost; returns
 * the decisions each env made. `what` prefixes the errors for a wrong action count or an action that is
 * not 0 or 1.
 */
export function recordLevelActions(
  actions: Uint8Array,
  env: Pick<VecEnv, 'numEnvs' | 'numLevels' | 'actionMode' | 'costs'>,
  rows: { selected: Uint8Array; used: Float64Array },
  k: number,
  what: string,
): number {
  const { numEnvs: n, numLevels: L } = env;
  const perStep = env.actionMode === 'sequential' ? 1 : L;
  if (actions.length !== n * perStep) {
    throw new RlpkdError(`${what}: expected ${n * perStep} actions, got ${actions.length}`);
  }
  for (let e = 0; e < n; e++) {
    for (let j = 0; j < perStep; j++) {
      const level = env.actionMode === 'sequential' ? k : j;
      const a = actions[e * perStep + j];
      if (a !== 0 && a !== 1) throw new RlpkdError(`${what}: action ${a} of env ${e} is not 0 or 1`);
      rows.selected[e * L + level] = a;
      if (a) rows.used[e] += env.costs[level];
    }
  }
  return perStep;
}
