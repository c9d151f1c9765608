import { ContextualBanditEnv } from '../../src/rl/bandit-env';
import { PolicyNetwork, type PolicyConfig } from '../../src/rl/policy';
import { PPOTrainer, type MinibatchInfo } from '../../src/rl/ppo';
import { collectRollout, evaluatePolicy, resetEnv } from '../../src/rl/rollout';

type Mode = 'sequential' | 'independent';

function banditEnv(mode: Mode, seed: number, numEnvs = 16) {
  return new ContextualBanditEnv({ numEnvs, actionMode: mode, seed, taskSeed: 7, budget: [0.35, 1] });
}

function policyConfig(env: ContextualBanditEnv, mode: Mode): PolicyConfig {
  return { mode, stateDim: env.stateDim, numLevels: env.numLevels, hiddenSize: 32, costs: env.costs };
}

/** Greedy reward as a fraction of the optimal expected reward, on fresh contexts and budgets. */
async function greedyRatio(policy: PolicyNetwork, mode: Mode): Promise<number> {
  const env = banditEnv(mode, 999, 64);
  const r = await evaluatePolicy(policy, env, { numEpisodes: 1024, deterministic: true });
  const got = r.summaries.reduce((a, s) => a + s.reward, 0);
  const best = r.summaries.reduce((a, s) => a + s.optimalReward, 0);
  return got / best;
}

describe.each<Mode>(['sequential', 'independent'])('PPOTrainer (%s)', (mode) => {
  it('has a PPO ratio of exactly 1 at the first minibatch of the first epoch', async () => {
    const env = banditEnv(mode, 1);
    const policy = await PolicyNetwork.create(policyConfig(env, mode), { seed: 1 });
    // Sharpen the initial policy so the rollout has confident logits and real masking.
    const params = policy.getParameters();
    for (const p of params) if (p.name === 'actor.weight') p.data.forEach((v, i) => (p.data[i] = v * 100));
    await policy.setParameters(params);
    const ppo = new PPOTrainer(policy, { nSteps: 8, batchSize: 16, nEpochs: 2, learningRate: 1e-2, seed: 1 });
    const r = await collectRollout(policy, env, await resetEnv(env), {
      nSteps: 8,
      gamma: 0.99,
      gaeLambda: 0.95,
    });
    const seen: MinibatchInfo[] = [];
    await ppo.trainStep(r.episodes, { onMinibatch: (i) => seen.push(i) });
    const first = seen[0];
    expect(first.epoch).toBe(0);
    expect(first.index).toBe(0);
    expect(first.freeSteps.some((f) => f === 1)).toBe(true);
    // Bit-exact: log r = 0 for every step, so r = exp(0) = 1 exactly.
    expect(Array.from(first.logRatio).every((v) => v === 0)).toBe(true);
    expect(first.approxKl).toBe(0);
    expect(first.clipFraction).toBe(0);
    // Later minibatches see updated weights (the check above could fail).
    expect(seen.slice(1).some((s) => s.logRatio.some((v) => v !== 0))).toBe(true);
    await ppo.release();
    await policy.release();
  });

  it('keeps the first ratio exactly 1 with a single environment and a single-episode minibatch', async () => {
    const env = banditEnv(mode, 3, 1);
    const policy = await PolicyNetwork.create(policyConfig(env, mode), { seed: 3 });
    const ppo = new PPOTrainer(policy, {
      nSteps: mode === 'sequential' ? 4 : 1,
      batchSize: 2,
      nEpochs: 1,
      seed: 3,
    });
    const S = mode === 'sequential' ? 4 : 1;
    const r = await collectRollout(policy, env, await resetEnv(env), {
      nSteps: S,
      gamma: 0.99,
      gaeLambda: 0.95,
    });
    expect(r.episodes.count).toBe(1);
    const seen: MinibatchInfo[] = [];
    await ppo.trainStep(r.episodes, { onMinibatch: (i) => seen.push(i) });
    expect(seen[0].logRatio.length).toBe(S);
    expect(Array.from(seen[0].logRatio).every((v) => v === 0)).toBe(true);
    await ppo.release();
    await policy.release();
  });

  it('solves a contextual bandit over level subsets (greedy ≥ 95% of optimal)', async () => {
    const env = banditEnv(mode, 2);
    const policy = await PolicyNetwork.create(policyConfig(env, mode), { seed: 2 });
    const before = await greedyRatio(policy, mode);
    const ppo = new PPOTrainer(policy, {
      nSteps: mode === 'sequential' ? 32 : 8,
      batchSize: 64,
      nEpochs: 4,
      learningRate: 1e-2,
      annealLr: true,
      seed: 2,
    });
    const t0 = Date.now();
    const res = await ppo.learn(env, { totalSteps: mode === 'sequential' ? 40 * 512 : 40 * 128 });
    const seconds = (Date.now() - t0) / 1000;
    const after = await greedyRatio(policy, mode);
    const last = res.history[res.history.length - 1];
    console.log(
      `PPO ${mode}: greedy reward ${(100 * before).toFixed(1)}% → ${(100 * after).toFixed(1)}% of optimal in ${res.history.length} updates (${res.timesteps} steps, ${seconds.toFixed(1)} s); last update ${JSON.stringify(last.stats)}`,
    );
    expect(after).toBeGreaterThanOrEqual(0.95);
    expect(before).toBeLessThan(0.95);
    await ppo.release();
    await policy.release();
  }, 300_000); // a few seconds alone; generous for a loaded CI machine
});

describe('PPOTrainer options', () => {
  it('stops the update early on target KL (checked before each step) and supports value clipping', async () => {
    const env = banditEnv('independent', 4);
    const policy = await PolicyNetwork.create(policyConfig(env, 'independent'), { seed: 4 });
    const ppo = new PPOTrainer(policy, {
      nSteps: 8,
      batchSize: 16,
      nEpochs: 10,
      learningRate: 5e-2,
      targetKl: 1e-4,
      clipRangeVf: 0.2,
      seed: 4,
    });
    const r = await collectRollout(policy, env, await resetEnv(env), {
      nSteps: 8,
      gamma: 0.99,
      gaeLambda: 0.95,
    });
    const seen: MinibatchInfo[] = [];
    const stats = await ppo.trainStep(r.episodes, { onMinibatch: (i) => seen.push(i) });
    const perEpoch = Math.round(r.episodes.count / ppo.episodesPerMinibatch(1));
    expect(stats.earlyStopped).toBe(true);
    expect(stats.nUpdates).toBeLessThan(10 * perEpoch);
    // The minibatch that tripped the stop was over 1.5 × target and was not applied.
    expect(seen[seen.length - 1].approxKl).toBeGreaterThan(1.5e-4);
    expect(stats.nUpdates).toBe(seen.length - 1);
    for (const k of [
      'policyLoss',
      'valueLoss',
      'entropy',
      'approxKl',
      'clipFraction',
      'explainedVariance',
    ] as const) {
      expect(Number.isFinite(stats[k])).toBe(true);
    }
    await ppo.release();
    await policy.release();
  });
});
