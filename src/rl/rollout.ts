/**
 * Running a policy in a vectorized environment: lockstep rollouts stored as whole episodes with GAE
 * advantages (what PPO and MAML train on), and greedy/stochastic evaluation runs.
 */
import { RlpkdError } from '../errors';
import type { EpisodeBatch } from './episode-batch';
import type { PolicyNetwork } from './policy';
import { RolloutBuffer } from './rollout-buffer';
import {
  checkVecResult,
  decisionsPerStep,
  stepsPerEpisode,
  validateVecEnv,
  type EpisodeSummary,
  type StepInfo,
  type VecEnv,
} from './vec-env';

/** Where the environments stand between rollouts (always at episode boundaries). */
export interface EnvCursor {
  states: Float32Array;
  budgets: Float64Array;
}

export interface CollectOptions {
  /** Lockstep steps per environment; a multiple of the episode length. */
  nSteps: number;
  gamma: number;
  gaeLambda: number;
  /** Merge the states seen into the policy's normalizer statistics (training rollouts). Default true. */
  updateNormalizer?: boolean;
  /** Take the mode of each free decision instead of sampling. */
  deterministic?: boolean;
  /**
   * Episodes per group on the same image (the environment must repeat them): > 1 replaces the GAE
   * advantages with the group's leave-one-out baseline (RolloutBuffer.useGroupAdvantages). Default 1.
   */
  groupSize?: number;
}

/** A collected rollout. */
export interface CollectedRollout<I extends StepInfo = StepInfo> {
  episodes: EpisodeBatch;
  /** Where the environments stand afterwards. */
  next: EnvCursor;
  /** Summaries of the episodes that ended, in order. */
  summaries: (I['episode'] & EpisodeSummary)[];
}

/** Checks that a policy and an environment fit together. */
export function checkPolicyEnv(policy: PolicyNetwork, env: VecEnv): void {
  validateVecEnv(env);
  const a = policy.arch;
  if (env.numLevels !== a.numLevels || env.stateDim !== a.stateDim) {
    throw new RlpkdError(
      `the environment has ${env.numLevels} levels and stateDim ${env.stateDim}, the policy ${a.numLevels} levels and stateDim ${a.stateDim}`,
    );
  }
  if ((env.actionMode === 'sequential') !== (a.mode === 'sequential')) {
    throw new RlpkdError(`a ${a.mode} policy cannot act in a ${env.actionMode} environment`, {
      hint: "use policy mode 'sequential' with sequential environments and 'independent' with independent ones",
    });
  }
  env.costs.forEach((c, k) => {
    if (Math.abs(c - policy.constraints.costs[k]) > 1e-12) {
      throw new RlpkdError(
        `level ${env.levelNames[k]} costs ${c} in the environment but ${policy.constraints.costs[k]} in the policy`,
        { hint: 'create the policy with the environment costs (costs: env.costs)' },
      );
    }
  });
}

/** Resets the environments and returns the cursor at the first episodes. */
export async function resetEnv(env: VecEnv): Promise<EnvCursor> {
  const r = await env.reset();
  checkVecResult(env, r, 'VecEnv.reset');
  return { states: r.states, budgets: r.budgets };
}

/**
 * Collects `nSteps` lockstep steps of every environment with the policy, from `start` (episode
 * boundaries), and returns the episodes with GAE advantages and value targets.
 */
export async function collectRollout<I extends StepInfo>(
  policy: PolicyNetwork,
  env: VecEnv<I>,
  start: EnvCursor,
  options: CollectOptions,
): Promise<CollectedRollout<I>> {
  const S = stepsPerEpisode(env);
  if (options.nSteps % S !== 0) {
    throw new RlpkdError(`nSteps ${options.nSteps} must be a multiple of the episode length ${S}`);
  }
  const buffer = new RolloutBuffer({
    numSteps: options.nSteps,
    numEnvs: env.numEnvs,
    stateDim: env.stateDim,
    decisions: decisionsPerStep(env),
    stepsPerEpisode: S,
  });
  let states = start.states;
  let memory = policy.newMemory(start.budgets);
  const summaries: CollectedRollout<I>['summaries'] = [];
  for (let t = 0; t < options.nSteps; t++) {
    const r = await policy.selectAction(states, {
      memory,
      updateNormalizer: options.updateNormalizer ?? true,
      deterministic: options.deterministic ?? false,
    });
    const out = await env.step(r.actions);
    checkVecResult(env, out, 'VecEnv.step');
    const ends = memory.step === S;
    for (let e = 0; e < env.numEnvs; e++) {
      if ((out.dones[e] === 1) !== ends) {
        throw new RlpkdError(
          `env ${e} ${out.dones[e] ? 'ended' : 'did not end'} its episode after decision step ${memory.step} of ${S}`,
          {
            hint: 'a VecEnv must end every episode after exactly numLevels steps (sequential) or 1 (independent)',
          },
        );
      }
      const ep = out.infos[e]?.episode;
      if (ends && ep) summaries.push(ep as I['episode'] & EpisodeSummary);
    }
    buffer.add({
      states: r.states,
      actions: r.actions,
      kinds: r.kinds,
      logits: r.logits,
      logProbs: r.logProbs,
      values: r.values,
      rewards: out.rewards,
      dones: out.dones,
      budgets: memory.budgets,
    });
    states = out.states;
    if (ends) memory = policy.newMemory(out.budgets);
  }
  // nSteps is a multiple of the episode length, so the rollout ends at an episode boundary and nothing
  // is bootstrapped (every last step is a true termination).
  buffer.computeReturnsAndAdvantages(new Float64Array(env.numEnvs), options.gamma, options.gaeLambda);
  if ((options.groupSize ?? 1) > 1) buffer.useGroupAdvantages(options.groupSize!);
  return { episodes: buffer.episodes(), next: { states, budgets: memory.budgets }, summaries };
}

/** Runs `numEpisodes` (rounded up to whole lockstep batches) fresh episodes; no training data kept. */
export async function evaluatePolicy<I extends StepInfo>(
  policy: PolicyNetwork,
  env: VecEnv<I>,
  options: { numEpisodes: number; deterministic?: boolean },
): Promise<{ meanReward: number; summaries: (I['episode'] & EpisodeSummary)[] }> {
  checkPolicyEnv(policy, env);
  const S = stepsPerEpisode(env);
  const batches = Math.max(1, Math.ceil(options.numEpisodes / env.numEnvs));
  const r = await collectRollout(policy, env, await resetEnv(env), {
    nSteps: batches * S,
    gamma: 1,
    gaeLambda: 1,
    updateNormalizer: false,
    deterministic: options.deterministic ?? true,
  });
  const rewards = r.summaries.map((s) => s.reward);
  return {
    meanReward: rewards.reduce((a, b) => a + b, 0) / Math.max(rewards.length, 1),
    summaries: r.summaries,
  };
}
