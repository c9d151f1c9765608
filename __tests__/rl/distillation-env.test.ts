import { StudentDistiller } from '../../src/distill/student-distiller';
import { createSession } from '../../src/runtime';
import {
  arrayImageSource,
  ParallelDistillationEnv,
  type DistillationStepInfo,
  type ImageBatchSource,
} from '../../src/rl/distillation-env';
import type { ImageBatch } from '../../src/rl/distiller';
import { PolicyNetwork } from '../../src/rl/policy';
import { PPOTrainer } from '../../src/rl/ppo';
import type { DistillLossKind } from '../../src/training/level-distances';
import { levelDistanceReference } from '../helpers/level-distance-reference';
import { costs, createEnv, images, student, teacher } from './distiller-fixtures';

async function params(distiller: StudentDistiller): Promise<Record<string, Float32Array>> {
  const p = await distiller.session.getParameters();
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.data as Float32Array]));
}

/** Runs one lockstep batch of episodes with the policy; returns the final step's rewards and infos. */
async function runEpisodes(
  env: ParallelDistillationEnv,
  policy: PolicyNetwork,
  start: { states: Float32Array; budgets: Float64Array },
) {
  let states = start.states;
  const memory = policy.newMemory(start.budgets);
  const steps = env.actionMode === 'sequential' ? env.numLevels : 1;
  for (let t = 0; t < steps; t++) {
    const r = await policy.selectAction(states, { memory });
    const out = await env.step(r.actions);
    if (t < steps - 1) {
      expect(Array.from(out.dones)).toEqual(new Array(env.numEnvs).fill(0));
      expect(Array.from(out.rewards)).toEqual(new Array(env.numEnvs).fill(0));
      states = out.states;
    } else {
      expect(Array.from(out.dones)).toEqual(new Array(env.numEnvs).fill(1));
      return out;
    }
  }
  throw new Error('unreachable');
}

/** An image source that keeps every batch it hands out (to compare with what the environment measured). */
function recordingSource(source: ImageBatchSource): { batches: ImageBatch[]; recording: ImageBatchSource } {
  const batches: ImageBatch[] = [];
  return { batches, recording: { next: async (n) => batches[batches.push(await source.next(n)) - 1] } };
}

/** The reward formula, recomputed from what `info` reports. */
function checkRewards(
  env: ParallelDistillationEnv,
  rewards: Float64Array,
  infos: DistillationStepInfo[],
): void {
  infos.forEach((info, e) => {
    const ep = info.episode!;
    const used = ep.selectedLevels.reduce((s, name) => s + env.costs[env.levelNames.indexOf(name)], 0);
    expect(ep.usedCost).toBeCloseTo(used, 12);
    expect(ep.savedCost).toBeCloseTo(1 - used, 12);
    const expected = (ep.lossBefore - ep.lossAfter) / ep.lossBefore + 0.5 * (1 - used);
    expect(rewards[e]).toBeCloseTo(expected, 12);
    expect(ep.reward).toBe(rewards[e]);
  });
}

/** A seeded policy over `env`'s states, levels, costs and action mode. */
function policyFor(env: ParallelDistillationEnv, seed: number, hiddenSize = 16): Promise<PolicyNetwork> {
  return PolicyNetwork.create(
    { mode: env.actionMode, stateDim: env.stateDim, numLevels: env.numLevels, hiddenSize, costs: env.costs },
    { seed },
  );
}

describe('ParallelDistillationEnv over the demo teacher/student graphs', () => {
  jest.setTimeout(120000);

  it('derives state dims and levels from the distiller', async () => {
    const { env, distiller } = await createEnv({ images: arrayImageSource(images(4, 1)), numEnvs: 2 });
    // 4 levels × 64 channels: 2·64 (coarsest avg ‖ max) + 4·64 (avg per level) + loss + 4 mask + budget.
    expect(env.levelNames).toEqual(['P2', 'P3', 'P4', 'P5']);
    expect(env.stateDim).toBe(2 * 64 + 4 * 64 + 1 + 4 + 1);
    expect(env.costs).toEqual(costs);
    await distiller.release();
  });

  it.each([
    ['mse', 1],
    ['pkd', 1],
    ['cwd', 2],
  ] as [DistillLossKind, number][])(
    'measures the all-level loss Σ_l d(S_l, T_l) per image with the %s distance (tau %s), as plain inference runs do',
    async (loss, cwdTau) => {
      const { batches, recording } = recordingSource(arrayImageSource(images(6, 4), 4));
      const { env, distiller } = await createEnv({
        images: recording,
        numEnvs: 3,
        phase: 2,
        loss,
        cwdTau,
      });
      const policy = await policyFor(env, 4, 8);
      const r = await env.reset();
      const out = await runEpisodes(env, policy, r);
      const t = await createSession(teacher);
      const s = await createSession(student);
      const tf = await t.run({ images: batches[0].images });
      const sf = await s.run({ images: batches[0].images });
      const ref = [0, 0, 0];
      for (const level of ['p2', 'p3', 'p4', 'p5']) {
        const [n, c, h, w] = sf[level].dims;
        const d = levelDistanceReference(
          loss,
          sf[level].data as Float32Array,
          tf[level].data as Float32Array,
          [n, c, h, w],
          cwdTau,
        );
        d.forEach((v, i) => (ref[i] += v));
      }
      const mean = ref.reduce((x, y) => x + y, 0) / 3;
      for (let n = 0; n < 3; n++) {
        // float32 sums in the graph vs float64 here: relative agreement to 1e-5.
        expect(Math.abs(out.infos[n].episode!.lossBefore / ref[n] - 1)).toBeLessThan(1e-5);
        // The state's loss feature is L_before / L_ref, L_ref = mean loss of the first batch.
        expect(Math.abs(r.states[n * env.stateDim + 2 * 64 + 4 * 64] / (ref[n] / mean) - 1)).toBeLessThan(
          1e-5,
        );
      }
      await Promise.all([t.release(), s.release(), policy.release()]);
      await distiller.release();
    },
  );

  it('phase 2: whole episodes, rewards match the formula, the student is restored bit for bit', async () => {
    const { env, distiller } = await createEnv({
      images: arrayImageSource(images(8, 2), 2),
      numEnvs: 4,
      phase: 2,
      budget: [0.3, 1],
      optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 0 },
      seed: 2,
    });
    const policy = await policyFor(env, 2);
    const before = await params(distiller);
    let cursor = await env.reset();
    for (let episode = 0; episode < 2; episode++) {
      const out = await runEpisodes(env, policy, cursor);
      checkRewards(env, out.rewards, out.infos);
      // The update really changed the loss (so the roll-back below is not vacuous).
      expect(out.infos.some((i) => Math.abs(i.episode!.lossAfter - i.episode!.lossBefore) > 1e-6)).toBe(true);
      for (const i of out.infos) expect(i.episode!.selectedLevels.length).toBeGreaterThanOrEqual(1);
      cursor = { states: out.states, budgets: out.budgets };
    }
    const after = await params(distiller);
    for (const [name, data] of Object.entries(before))
      expect(Buffer.from(after[name].buffer).equals(Buffer.from(data.buffer))).toBe(true);
    expect(distiller.session.step).toBe(0);
    await policy.release();
    await distiller.release();
  });

  it('episodesPerImage: each group of episodes repeats its images and budgets, then draws new ones', async () => {
    const source = arrayImageSource(images(8, 5), 2);
    const { batches, recording } = recordingSource(source);
    const { env, distiller } = await createEnv({
      images: recording,
      numEnvs: 2,
      phase: 2,
      budget: [0.3, 1],
      episodesPerImage: 3,
      seed: 5,
    });
    const policy = await policyFor(env, 5);
    let cursor = await env.reset();
    const firstStates = cursor.states;
    const lossBefore: number[][] = [];
    const budgets: number[][] = [];
    for (let episode = 0; episode < 4; episode++) {
      budgets.push(Array.from(cursor.budgets));
      if (episode > 0 && episode < 3) expect(Array.from(cursor.states)).toEqual(Array.from(firstStates));
      const out = await runEpisodes(env, policy, cursor);
      checkRewards(env, out.rewards, out.infos);
      lossBefore.push(out.infos.map((i) => i.episode!.lossBefore));
      cursor = { states: out.states, budgets: out.budgets };
    }
    // Episodes 0-2 on the first two images (drawn at reset), episodes 3-5 on the next two (drawn when
    // episode 2 ended); episode 3's end starts episode 4 on the same images, so no third draw.
    expect(batches.length).toBe(2);
    expect(lossBefore[1]).toEqual(lossBefore[0]);
    expect(lossBefore[2]).toEqual(lossBefore[0]);
    expect(lossBefore[3]).not.toEqual(lossBefore[0]);
    expect(budgets[1]).toEqual(budgets[0]);
    expect(budgets[2]).toEqual(budgets[0]);
    expect(budgets[3]).not.toEqual(budgets[0]);
    await policy.release();
    await distiller.release();
    await expect(createEnv({ images: source, numEnvs: 1, phase: 3, episodesPerImage: 2 })).rejects.toThrow(
      /needs phase 2/,
    );
  });

  it('phase 3 keeps the update; the independent mode decides every level in one step', async () => {
    const { env, distiller } = await createEnv({
      images: arrayImageSource(images(4, 3), 3),
      numEnvs: 4,
      phase: 3,
      actionMode: 'independent',
      optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 0 },
      seed: 3,
    });
    const policy = await policyFor(env, 3);
    const before = await params(distiller);
    const out = await runEpisodes(env, policy, await env.reset());
    checkRewards(env, out.rewards, out.infos);
    const after = await params(distiller);
    const changed = Object.keys(before).filter(
      (k) => !Buffer.from(after[k].buffer).equals(Buffer.from(before[k].buffer)),
    );
    expect(changed.length).toBeGreaterThan(0);
    expect(distiller.session.step).toBe(1);
    await policy.release();
    await distiller.release();
  });

  it('trains a policy with PPO end to end (phase 2: the student stays as it was)', async () => {
    const { env, distiller } = await createEnv({
      images: arrayImageSource(images(8, 5), 5),
      numEnvs: 4,
      phase: 2,
      budget: [0.3, 1],
      optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 0 },
      seed: 5,
    });
    const policy = await policyFor(env, 5);
    const ppo = new PPOTrainer(policy, { nSteps: 8, batchSize: 8, nEpochs: 2, seed: 5 });
    const before = await params(distiller);
    const res = await ppo.learn(env, { totalSteps: 2 * 8 * 4 });
    expect(res.history.length).toBe(2);
    for (const h of res.history) {
      expect(h.episodes).toBe(8);
      expect(Number.isFinite(h.meanEpisodeReward)).toBe(true);
      expect(Number.isFinite(h.stats.policyLoss)).toBe(true);
    }
    const after = await params(distiller);
    for (const [name, data] of Object.entries(before)) {
      expect(Buffer.from(after[name].buffer).equals(Buffer.from(data.buffer))).toBe(true);
    }
    await ppo.release();
    await policy.release();
    await distiller.release();
  });
});
