/**
 * Trainers that live for a whole run: PPOTrainer's and MAMLTrainer's getState()/setState() carry
 * everything between updates (optimizer moments and step, RNG streams), so a trainer rebuilt from a
 * saved state — with the policy restored from its saved model — continues bit for bit like the original.
 */
import { BanditFamily, ContextualBanditEnv } from '../../src/rl/bandit-env';
import { MAMLTrainer } from '../../src/rl/maml';
import { PolicyNetwork, type PolicyConfig } from '../../src/rl/policy';
import { PPOTrainer } from '../../src/rl/ppo';
import { collectRollout, resetEnv } from '../../src/rl/rollout';
import { Rng } from '../../src/util/rng';

const MODE = 'sequential' as const;

function bandit(seed: number): ContextualBanditEnv {
  return new ContextualBanditEnv({ numEnvs: 8, actionMode: MODE, seed, taskSeed: 7, budget: [0.35, 1] });
}

function policyConfig(env: ContextualBanditEnv): PolicyConfig {
  return { mode: MODE, stateDim: env.stateDim, numLevels: env.numLevels, hiddenSize: 16, costs: env.costs };
}

/** A deep copy that shares nothing with the trainer (typed arrays kept, as the checkpoint files keep them). */
const roundTrip = <T>(x: T): T => structuredClone(x);

describe('PPOTrainer state', () => {
  it('a trainer restored from getState() continues exactly like the one that kept running', async () => {
    const env = bandit(1);
    const S = env.numLevels;
    const options = { nSteps: 2 * S, batchSize: 2 * S, nEpochs: 2, learningRate: 3e-2, seed: 5 };
    const rollouts = async (policy: PolicyNetwork, seed: number) => {
      const e = bandit(seed);
      return (
        await collectRollout(policy, e, await resetEnv(e), { nSteps: 2 * S, gamma: 0.9, gaeLambda: 0.9 })
      ).episodes;
    };

    const policyA = await PolicyNetwork.create(policyConfig(env), { seed: 2 });
    const a = new PPOTrainer(policyA, options);
    expect(a.getState().optimizer).toBeNull();
    await a.trainStep(await rollouts(policyA, 10));
    const saved = a.getState();
    const savedPolicy = policyA.exportForInference();
    const second = await rollouts(policyA, 11);
    const statsA = await a.trainStep(second);

    // A new trainer at the same seed without the state re-shuffles from the start: a different update.
    const policyB = await PolicyNetwork.fromModel(savedPolicy);
    const fresh = new PPOTrainer(policyB, options);
    await fresh.trainStep(second);
    expect(policyB.getParameters()).not.toEqual(policyA.getParameters());
    await fresh.release();

    const policyC = await PolicyNetwork.fromModel(savedPolicy);
    const c = new PPOTrainer(policyC, options);
    await c.setState(roundTrip(saved));
    const statsC = await c.trainStep(second);
    expect(policyC.getParameters()).toEqual(policyA.getParameters());
    expect(statsC).toEqual(statsA);
    expect(roundTrip(c.getState())).toEqual(roundTrip(a.getState()));
    await Promise.all([a.release(), c.release(), policyA.release(), policyB.release(), policyC.release()]);
  });
});

describe('MAMLTrainer state', () => {
  it('a trainer restored from getState() continues exactly like the one that kept running', async () => {
    const family = new BanditFamily({ seed: 3 });
    const tasks = [
      family.sampleTask(new Rng(1)),
      family.sampleTask(new Rng(2)),
      family.sampleTask(new Rng(3)),
    ];
    const envs = (k: number) =>
      tasks.map((t, i) => family.makeEnv(t, { numEnvs: 8, actionMode: 'independent', seed: 100 * k + i }));
    const probe = envs(0)[0];
    const config: PolicyConfig = {
      mode: 'independent',
      stateDim: probe.stateDim,
      numLevels: 4,
      hiddenSize: 16,
      costs: family.costs,
    };
    const options = { innerLr: 0.1, metaLr: 3e-2, supportEpisodes: 8, queryEpisodes: 8, seed: 4 };
    const policyA = await PolicyNetwork.create(config, { seed: 1 });
    const a = new MAMLTrainer(policyA, options);
    await a.metaUpdate(envs(1));
    const saved = a.getState();
    expect(saved.outer).not.toBeNull();
    const savedPolicy = policyA.exportForInference();
    const statsA = await a.metaUpdate(envs(2));

    const policyC = await PolicyNetwork.fromModel(savedPolicy);
    const c = new MAMLTrainer(policyC, options);
    await c.setState(roundTrip(saved));
    const statsC = await c.metaUpdate(envs(2));
    expect(policyC.getParameters()).toEqual(policyA.getParameters());
    expect(statsC).toEqual(statsA);

    // Without the state (fresh Adam moments and task order), the same update differs.
    const policyB = await PolicyNetwork.fromModel(savedPolicy);
    const b = new MAMLTrainer(policyB, options);
    await b.metaUpdate(envs(2));
    expect(policyB.getParameters()).not.toEqual(policyA.getParameters());
    await Promise.all([
      a.release(),
      b.release(),
      c.release(),
      policyA.release(),
      policyB.release(),
      policyC.release(),
    ]);
  });
});
