/**
 * The distillation environment's measurements against references computed apart from it: the state's
 * pooled features from plain inference of the student with pooling written here, the selection and budget
 * parts of the state step by step, and L_after from a separate evaluation of the updated student (its
 * parameters exported to a plain inference graph, distances in float64), not read back from the report.
 */
import { createSession, type HostTensor } from '../../src/runtime';
import type { ImageBatchSource } from '../../src/rl/distillation-env';
import { levelDistanceReference } from '../helpers/level-distance-reference';
import { createEnv, images, student, teacher } from './distiller-fixtures';

jest.setTimeout(120000);

const LEVELS = ['p2', 'p3', 'p4', 'p5'] as const; // level order, finest first; p5 is the coarsest

/** Always the same batch, in order (the env's first episodes see exactly `batch`). */
const fixedSource = (batch: HostTensor): ImageBatchSource => ({ next: async () => ({ images: batch }) });

/** Float64 mean and max over the spatial positions of channel c of image n. */
function pool(t: HostTensor, n: number, c: number): { avg: number; max: number } {
  const [, C, H, W] = t.dims;
  const d = t.data as Float32Array;
  let sum = 0;
  let max = -Infinity;
  for (let i = 0; i < H * W; i++) {
    const v = d[(n * C + c) * H * W + i];
    sum += v;
    max = Math.max(max, v);
  }
  return { avg: sum / (H * W), max };
}

/** Per-image Σ_l mean((S_l − T_l)²) of plain inference runs. */
async function allLevelLoss(studentModel: typeof student, batch: HostTensor): Promise<number[]> {
  const [s, t] = [await createSession(studentModel), await createSession(teacher)];
  const [so, to] = [await s.run({ images: batch }), await t.run({ images: batch })];
  await Promise.all([s.release(), t.release()]);
  const loss = new Array<number>(batch.dims[0]).fill(0);
  for (const l of LEVELS) {
    const d = levelDistanceReference(
      'mse',
      so[l].data as Float32Array,
      to[l].data as Float32Array,
      so[l].dims as [number, number, number, number],
    );
    d.forEach((v, n) => (loss[n] += v));
  }
  return loss;
}

describe('ParallelDistillationEnv against separate references', () => {
  it('states: pooled student features, L_before / L_ref, levels selected so far and budget left', async () => {
    const batch = images(3, 1);
    const budgets = 0.9;
    const { env, distiller } = await createEnv({
      images: fixedSource(batch),
      numEnvs: 3,
      phase: 2,
      budget: budgets,
    });
    const s = await createSession(student);
    const feats = await s.run({ images: batch });
    await s.release();
    const before = await allLevelLoss(student, batch);
    const ref = before.reduce((a, b) => a + b, 0) / 3;
    const D = env.stateDim;
    // The env's levels in its decision order, as the student's output names.
    const order = env.levelNames.map((n) => n.toLowerCase() as (typeof LEVELS)[number]);
    expect([...order].sort()).toEqual([...LEVELS]);
    const C = feats.p5.dims[1];
    const width = 2 * C + LEVELS.reduce((a, l) => a + feats[l].dims[1], 0);
    const expectState = (states: Float32Array, selected: number[][], used: number[]) => {
      for (let n = 0; n < 3; n++) {
        const st = states.subarray(n * D, (n + 1) * D);
        const expected: number[] = [];
        for (let c = 0; c < C; c++) expected.push(pool(feats.p5, n, c).avg);
        for (let c = 0; c < C; c++) expected.push(pool(feats.p5, n, c).max);
        for (const l of order)
          for (let c = 0; c < feats[l].dims[1]; c++) expected.push(pool(feats[l], n, c).avg);
        expect(expected.length).toBe(width);
        expected.forEach((v, i) => expect(Math.abs(st[i] - v)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(v))));
        expect(Math.abs(st[width] / (before[n] / ref) - 1)).toBeLessThan(1e-5);
        expect(Array.from(st.subarray(width + 1, width + 1 + 4))).toEqual(selected[n]);
        expect(st[width + 5]).toBeCloseTo(budgets - used[n], 6);
      }
    };
    const r = await env.reset();
    expectState(
      r.states,
      [
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
      ],
      [0, 0, 0],
    );
    // The sequential env's first decision (env.levelNames[0]), taken on images 0 and 2.
    const out = await env.step(Uint8Array.of(1, 0, 1));
    const mask = (on: boolean) => [0, 1, 2, 3].map((i) => (on && i === 0 ? 1 : 0));
    expectState(out.states, [mask(true), mask(false), mask(true)], [env.costs[0], 0, env.costs[0]]);
    await env.close();
    await distiller.release();
  });

  it('L_after of a kept update equals a separate evaluation of the updated student', async () => {
    const batch = images(4, 2);
    const { env, distiller } = await createEnv({
      images: fixedSource(batch),
      numEnvs: 4,
      phase: 3,
      actionMode: 'independent',
      optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 0 },
      seed: 4,
    });
    await env.reset();
    // Image n selects a different subset (every image at least one level).
    const actions = Uint8Array.from([1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0]);
    const out = await env.step(actions);
    const updated = await distiller.exportStudent(student.graph.outputs);
    const after = await allLevelLoss(updated, batch);
    const before = await allLevelLoss(student, batch);
    out.infos.forEach((info, n) => {
      expect(Math.abs(info.episode!.lossBefore / before[n] - 1)).toBeLessThan(1e-5);
      expect(Math.abs(info.episode!.lossAfter / after[n] - 1)).toBeLessThan(1e-5);
    });
    // The update moved every image's loss by more than the tolerance (the check above could fail).
    before.forEach((b, n) => expect(Math.abs(after[n] / b - 1)).toBeGreaterThan(1e-4));
    await env.close();
    await distiller.release();
  });
});
