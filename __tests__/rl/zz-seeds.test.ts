import { ContextualBanditEnv } from '../../src/rl/bandit-env';
import { PolicyNetwork } from '../../src/rl/policy';
import { PPOTrainer } from '../../src/rl/ppo';
import { evaluatePolicy } from '../../src/rl/rollout';

it('seeds', async () => {
  for (const mode of ['sequential', 'independent'] as const) {
    const res: string[] = [];
    for (const seed of [2, 3, 4, 5, 6, 7, 8, 9]) {
      const env = new ContextualBanditEnv({ numEnvs: 16, actionMode: mode, seed, taskSeed: 7, budget: [0.35, 1] });
      const policy = await PolicyNetwork.create({ mode, stateDim: env.stateDim, numLevels: 4, hiddenSize: 32, costs: env.costs }, { seed });
      const ppo = new PPOTrainer(policy, { nSteps: mode === 'sequential' ? 32 : 8, batchSize: 64, learningRate: 1e-2, annealLr: true, seed });
      await ppo.learn(env, { totalSteps: mode === 'sequential' ? 40 * 512 : 40 * 128 });
      const ev = await evaluatePolicy(policy, new ContextualBanditEnv({ numEnvs: 64, actionMode: mode, seed: 999, taskSeed: 7, budget: [0.35, 1] }), { numEpisodes: 1024 });
      res.push((ev.summaries.reduce((a, s) => a + s.reward, 0) / ev.summaries.reduce((a, s) => a + s.optimalReward, 0)).toFixed(3));
      await ppo.release();
      await policy.release();
    }
    console.log(mode, res.join(' '));
  }
}, 600000);
