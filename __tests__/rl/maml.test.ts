import { BanditFamily, type ContextualBanditEnv } from '../../src/rl/bandit-env';
import { MAMLTrainer } from '../../src/rl/maml';
import { PolicyNetwork, type PolicyConfig } from '../../src/rl/policy';
import { ReplayBuffer } from '../../src/rl/replay-buffer';
import { collectRollout, evaluatePolicy, resetEnv } from '../../src/rl/rollout';
import { Rng } from '../../src/util/rng';

const MODE = 'independent' as const;

/** Greedy reward of the policy as a fraction of the task's optimum, on fresh contexts. */
async function score(policy: PolicyNetwork, env: ContextualBanditEnv): Promise<number> {
  const r = await evaluatePolicy(policy, env, { numEpisodes: 256, deterministic: true });
  return r.summaries.reduce((a, s) => a + s.reward, 0) / r.summaries.reduce((a, s) => a + s.optimalReward, 0);
}

describe('MAMLTrainer', () => {
  it('a meta-trained policy adapted for 5 steps beats a fresh one trained for the same 5 steps', async () => {
    const family = new BanditFamily({ seed: 3 });
    const taskRng = new Rng(11);
    const make = (seed: number) =>
      family.makeEnv(family.sampleTask(taskRng), { numEnvs: 32, actionMode: MODE, seed });
    const probe = make(0);
    const config: PolicyConfig = {
      mode: MODE,
      stateDim: probe.stateDim,
      numLevels: 4,
      hiddenSize: 32,
      costs: family.costs,
    };
    const meta = await PolicyNetwork.create(config, { seed: 1 });
    const maml = new MAMLTrainer(meta, {
      innerLr: 0.1,
      innerSteps: 5,
      metaLr: 1e-2,
      supportEpisodes: 64,
      queryEpisodes: 64,
      seed: 1,
    });
    const iterations = 40;
    const t0 = Date.now();
    let last = { preAdaptReward: 0, postAdaptReward: 0 };
    for (let it = 0; it < iterations; it++) {
      last = await maml.metaUpdate([make(100 + it), make(200 + it), make(300 + it), make(400 + it)]);
    }
    const trainSeconds = (Date.now() - t0) / 1000;

    // Held-out tasks: adapt each starting point with the same 5 SGD steps on the same kind of support set.
    const fresh = await PolicyNetwork.create(config, { seed: 2 });
    const freshMaml = new MAMLTrainer(fresh, { innerLr: 0.1, seed: 1 });
    const evalRng = new Rng(99);
    const scores = { meta0: 0, meta5: 0, fresh0: 0, fresh5: 0 };
    const tasks = 6;
    for (let t = 0; t < tasks; t++) {
      const task = family.sampleTask(evalRng);
      const envFor = (seed: number) => family.makeEnv(task, { numEnvs: 32, actionMode: MODE, seed });
      for (const [name, policy, trainer] of [
        ['meta', meta, maml],
        ['fresh', fresh, freshMaml],
      ] as const) {
        const start = policy.getParameters();
        scores[`${name}0`] += (await score(policy, envFor(7000 + t))) / tasks;
        await trainer.fastAdapt(envFor(5000 + t), { steps: 5, episodes: 64, apply: true });
        scores[`${name}5`] += (await score(policy, envFor(7000 + t))) / tasks;
        await policy.setParameters(start);
      }
    }
    console.log(
      `MAML (${iterations} meta-updates × 4 tasks, ${trainSeconds.toFixed(1)} s; last meta-update pre ${last.preAdaptReward.toFixed(3)} → post ${last.postAdaptReward.toFixed(3)}): ` +
        `held-out greedy reward / optimal: meta-init ${scores.meta0.toFixed(3)} → adapted(5) ${scores.meta5.toFixed(3)}; ` +
        `fresh-init ${scores.fresh0.toFixed(3)} → adapted(5) ${scores.fresh5.toFixed(3)}; margin ${(scores.meta5 - scores.fresh5).toFixed(3)}`,
    );
    expect(scores.meta5 - scores.fresh5).toBeGreaterThan(0.1);
    await Promise.all([maml.release(), freshMaml.release(), meta.release(), fresh.release()]);
  }, 300_000); // seconds alone; generous for a loaded CI machine

  it('refuses second-order MAML with a clear message', async () => {
    const policy = await PolicyNetwork.create({
      mode: MODE,
      stateDim: 3,
      numLevels: 2,
      hiddenSize: 4,
      costs: [0.5, 0.5],
    });
    expect(() => new MAMLTrainer(policy, { firstOrder: false })).toThrow(
      /second-order MAML is not available/,
    );
    await policy.release();
  });
});

describe('MAMLTrainer.fastAdapt on stored episodes', () => {
  it('adapts from a replay-buffer support split and leaves the policy alone unless asked', async () => {
    const family = new BanditFamily({ seed: 5 });
    const env = family.makeEnv(family.sampleTask(new Rng(1)), { numEnvs: 16, actionMode: MODE, seed: 1 });
    const policy = await PolicyNetwork.create(
      { mode: MODE, stateDim: env.stateDim, numLevels: 4, hiddenSize: 16, costs: family.costs },
      { seed: 5 },
    );
    const r = await collectRollout(policy, env, await resetEnv(env), {
      nSteps: 4,
      gamma: 0.99,
      gaeLambda: 0.95,
    });
    const buffer = new ReplayBuffer({
      capacity: 128,
      shape: { steps: 1, decisions: 4, stateDim: env.stateDim },
    });
    buffer.addEpisodes(r.episodes);
    const { support } = buffer.split(48, new Rng(2));
    const maml = new MAMLTrainer(policy, { innerLr: 0.1 });
    const before = policy.getParameters();
    const adapted = await maml.fastAdapt(support, { steps: 3 });
    expect(policy.getParameters()).toEqual(before);
    expect(adapted.some((p, i) => p.data.some((v, j) => v !== before[i].data[j]))).toBe(true);
    await maml.fastAdapt(support, { steps: 3, apply: true });
    expect(policy.getParameters()).toEqual(adapted);
    await maml.release();
    await policy.release();
  });
});
