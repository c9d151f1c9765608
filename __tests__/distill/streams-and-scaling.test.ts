import { BatchLoader } from '../../src/data/batch-loader';
import { readImageFolder } from '../../src/data/imagefolder';
import { sequentialImageSource, TrainImageStream } from '../../src/distill/image-stream';
import { ReturnScaler, RewardScalingEnv } from '../../src/distill/reward-scaling';
import type { StepInfo, VecEnv } from '../../src/rl/vec-env';
import { Rng } from '../../src/util/rng';
import { makeImageFolder } from '../data/fixtures';
import { tempDir } from './run-fixtures';

describe('TrainImageStream', () => {
  async function loader(): Promise<BatchLoader> {
    const root = tempDir('stream');
    await makeImageFolder(root, 'train', ['a', 'b', 'c'], 3); // 9 images
    const ds = readImageFolder(root, 'train', false);
    return new BatchLoader(ds, {
      batchSize: 4,
      preprocess: { height: 4, width: 4, mean: [0, 0, 0], std: [1, 1, 1] },
      rng: new Rng(1),
      hflip: 0.5,
    });
  }

  it('re-chunks the seeded epoch order across batches and epochs, with hashes and flips', async () => {
    const l = await loader();
    const stream = new TrainImageStream(l, 7);
    const got: string[] = [];
    for (let i = 0; i < 5; i++) {
      const x = await stream.next(3);
      expect(x.images.dims).toEqual([3, 3, 4, 4]);
    }
    for (const c of stream.takeDrawn()) got.push(...c.hashes.map((h, i) => `${h}:${c.flipped[i]}`));
    // The same images, in order, as iterating the loader's epochs 7 and 8 directly.
    const want: string[] = [];
    for (const e of [7, 8]) {
      for await (const b of l.epoch(e)) want.push(...b.hashes.map((h, i) => `${h}:${b.flipped[i]}`));
    }
    expect(got).toEqual(want.slice(0, 15));
    expect(stream.takeDrawn()).toEqual([]);
  });

  it('continues exactly from a saved cursor', async () => {
    const l = await loader();
    const a = new TrainImageStream(l, 0);
    await a.next(3);
    await a.next(3); // ends inside the second batch
    const cursor = a.cursor();
    expect(cursor).toEqual({ epoch: 0, batch: 1, offset: 2 });
    const restAfter = Array.from((await a.next(5)).images.data);
    const b = new TrainImageStream(l, 0, cursor);
    expect(Array.from((await b.next(5)).images.data)).toEqual(restAfter);
  });

  it('sequentialImageSource cycles through fixed images in order, with their hashes when given', async () => {
    const images = { data: Float32Array.from([0, 1, 2]), dims: [3, 1, 1, 1] };
    const src = sequentialImageSource(images);
    expect(Array.from((await src.next(2)).images.data as Float32Array)).toEqual([0, 1]);
    expect(Array.from((await src.next(2)).images.data as Float32Array)).toEqual([2, 0]);
    const hashed = sequentialImageSource(images, ['a', 'b', 'c']);
    await hashed.next(2);
    expect(await hashed.next(2)).toMatchObject({ hashes: ['c', 'a'], flipped: [false, false] });
  });
});

describe('reward scaling (stable-baselines3 VecNormalize rewards)', () => {
  it('divides by the running std of the discounted return, clips, and restarts returns at episode ends', async () => {
    const gamma = 0.9;
    const steps: { rewards: number[]; dones: number[] }[] = [
      { rewards: [0, 0], dones: [0, 0] },
      { rewards: [1.5, -0.5], dones: [1, 0] },
      { rewards: [0, 2], dones: [0, 1] },
      { rewards: [3, 0], dones: [1, 0] },
    ];
    const inner: VecEnv<StepInfo> = {
      numEnvs: 2,
      stateDim: 1,
      numLevels: 1,
      costs: [1],
      levelNames: ['P2'],
      actionMode: 'independent',
      reset: async () => ({ states: new Float32Array(2), budgets: Float64Array.of(1, 1) }),
      step: async () => {
        const s = steps.shift()!;
        return {
          states: new Float32Array(2),
          budgets: Float64Array.of(1, 1),
          rewards: Float64Array.from(s.rewards),
          dones: Uint8Array.from(s.dones),
          infos: [{ episode: { reward: s.rewards[0] } as never }, {}],
        };
      },
    };
    const env = new RewardScalingEnv(inner, new ReturnScaler(gamma));
    await env.reset();
    // float64 reference: Chan's parallel mean/var from count 1e-4, mean 0, var 1.
    let count = 1e-4;
    let mean = 0;
    let m2v = 1;
    const ret = [0, 0];
    for (const s of [...steps]) {
      const out = await env.step(new Uint8Array(2));
      s.rewards.forEach((r, e) => (ret[e] = ret[e] * gamma + r));
      const bm = (ret[0] + ret[1]) / 2;
      const bv = ((ret[0] - bm) ** 2 + (ret[1] - bm) ** 2) / 2;
      const tot = count + 2;
      const delta = bm - mean;
      m2v = (m2v * count + bv * 2 + (delta * delta * count * 2) / tot) / tot;
      mean += (delta * 2) / tot;
      count = tot;
      s.rewards.forEach((r, e) => {
        expect(out.rewards[e]).toBeCloseTo(Math.max(-10, Math.min(10, r / Math.sqrt(m2v + 1e-8))), 12);
        if (s.dones[e]) ret[e] = 0;
      });
      // Episode summaries keep the raw reward.
      expect((out.infos[0].episode as { reward: number } | undefined)?.reward).toBe(s.rewards[0]);
    }
  });
});
