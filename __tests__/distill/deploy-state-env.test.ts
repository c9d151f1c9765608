/**
 * rl.policy.state: deploy in a run's selection environment: the states pool the student's trunk tensors
 * (checked against onnxruntime running the student file with those tensors as outputs, pooled in
 * float64 here), carry no loss feature, and end with the selected flags and the budget.
 */
import { createStudentDistiller } from '../../src/distill/create-distiller';
import { createSelectionEnv } from '../../src/distill/selection-env';
import { prepareDistillation } from '../../src/distill/setup';
import { silentLog } from '../../src/logging/logger';
import { loadModel } from '../../src/onnx/model-io';
import { arrayImageSource } from '../../src/rl/distillation-env';
import type { ImageBatch } from '../../src/rl/distiller';
import { createSession } from '../../src/runtime';
import { tempDir, tinyConfig, writeTinyModels } from './run-fixtures';

jest.setTimeout(120000);

/** Float64 mean (or max) over H·W of channel c of image n. */
function pool(
  data: Float32Array,
  dims: readonly number[],
  n: number,
  c: number,
  kind: 'avg' | 'max',
): number {
  const [, C, H, W] = dims;
  let acc = kind === 'avg' ? 0 : -Infinity;
  for (let i = 0; i < H * W; i++) {
    const v = data[(n * C + c) * H * W + i];
    acc = kind === 'avg' ? acc + v : Math.max(acc, v);
  }
  return kind === 'avg' ? acc / (H * W) : acc;
}

describe('the deploy policy state in a run', () => {
  it('pools the trunk tensors the student computes, without a loss feature', async () => {
    const dir = tempDir('deploy-env');
    const models = writeTinyModels(dir);
    const config = tinyConfig(dir, models, { rl: { policy: { state: 'deploy' } } });
    const setup = await prepareDistillation(config, { log: silentLog });
    const sources = setup.stateSources!;
    const C = sources.map((s) => s.channels);
    expect(setup.dims.stateDim).toBe(2 * C[C.length - 1] + C.reduce((a, b) => a + b, 0) + 4 + 1);
    const distiller = await createStudentDistiller(setup, silentLog);
    const batches: ImageBatch[] = [];
    const source = arrayImageSource(setup.heldOut.images, 3);
    const N = 2;
    const env = createSelectionEnv(setup, distiller, {
      images: { next: async (n: number) => batches[batches.push(await source.next(n)) - 1] },
      seed: 'deploy',
      numEnvs: N,
      budget: 0.75,
    });
    const { states } = await env.reset();
    expect(states.length).toBe(N * setup.dims.stateDim);

    const student = loadModel(models.student);
    const withTrunk = {
      ...student,
      graph: { ...student.graph, outputs: sources.map((s) => ({ name: s.name, dataType: 1 })) },
    };
    const session = await createSession(withTrunk);
    const out = await session.run({ [setup.studentImageInput]: batches[0].images });
    await session.release();
    const D = setup.dims.stateDim;
    for (let n = 0; n < N; n++) {
      const want: number[] = [];
      const coarsest = sources[sources.length - 1];
      const t = out[coarsest.name];
      for (const kind of ['avg', 'max'] as const)
        for (let c = 0; c < coarsest.channels; c++)
          want.push(pool(t.data as Float32Array, t.dims, n, c, kind));
      for (const s of sources)
        for (let c = 0; c < s.channels; c++)
          want.push(pool(out[s.name].data as Float32Array, out[s.name].dims, n, c, 'avg'));
      want.push(0, 0, 0, 0, 0.75); // nothing selected yet, the whole budget left
      const got = Array.from(states.subarray(n * D, (n + 1) * D));
      expect(got.length).toBe(want.length);
      got.forEach((v, i) =>
        expect(Math.abs(v - want[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[i]))),
      );
    }
    const after = await env.step(new Uint8Array(N).fill(1));
    expect(after.states[D - 5]).toBe(1); // the first level (P2) is now selected
    await Promise.all([env.close(), distiller.release()]);
  });
});
