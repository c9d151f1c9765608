import { ParallelDistillationEnv, type DistillationStepInfo } from '../../src/rl/distillation-env';
import type { Distiller, ImageBatch } from '../../src/rl/distiller';
import { qualityTerm, SHARE_LIMIT } from '../../src/rl/reward-quality';

describe('qualityTerm', () => {
  it('relative: the relative gain; share: the gain over the all-level gain, bounded and guarded', () => {
    expect(qualityTerm('relative', 2, 1.5)).toBeCloseTo(0.25, 15);
    expect(qualityTerm('relative', 0, 1)).toBe(0);
    // Gain 0.5 of an all-level gain 0.8.
    expect(qualityTerm('share', 2, 1.5, 1.2)).toBeCloseTo(0.625, 15);
    // A selection that does better than all levels, or harm, within ±SHARE_LIMIT.
    expect(qualityTerm('share', 2, 1.9, 1.95)).toBeCloseTo(2, 12);
    expect(qualityTerm('share', 2, 1.0, 1.95)).toBe(SHARE_LIMIT);
    expect(qualityTerm('share', 2, 2.5, 1.95)).toBe(-SHARE_LIMIT);
    // No all-level gain to share (≤ 1e-4 of L_before): 0 whatever the selection did.
    expect(qualityTerm('share', 2, 1.0, 1.9999)).toBe(0);
    expect(qualityTerm('share', 2, 1.0, 2.5)).toBe(0);
    expect(() => qualityTerm('share', 2, 1.5)).toThrow(/all-level update/);
  });
});

describe("the environment's 'share' quality", () => {
  // Two images (yardstick = pixel value), two levels A (cost 0.7) and B (0.3). A trial lowers image n's
  // yardstick by gain[n][l] for each selected level l: image 0 gains on A, image 1 on B.
  const gain = [
    [0.3, 0.1],
    [0.02, 0.2],
  ];
  const trials: number[][] = [];
  const value = (b: ImageBatch, n: number) => (b.images.data as Float32Array)[n];
  const distiller: Distiller = {
    levels: [
      { name: 'A', stride: 4, channels: 1 },
      { name: 'B', stride: 8, channels: 1 },
    ],
    prepare: async (b) => b,
    evaluate: async (b) => ({
      distances: new Float32Array(4).fill(1),
      features: {
        A: { data: Float32Array.of(1, 2), dims: [2, 1, 1, 1] },
        B: { data: Float32Array.of(3, 4), dims: [2, 1, 1, 1] },
      },
      yardstick: Float64Array.of(value(b, 0), value(b, 1)),
    }),
    trial: async (b, mask) => {
      trials.push(Array.from(mask));
      const after = [0, 1].map((n) => value(b, n) - gain[n][0] * mask[2 * n] - gain[n][1] * mask[2 * n + 1]);
      return {
        perSample: new Float32Array(4),
        after: new Float32Array(4),
        afterYardstick: Float64Array.from(after),
      };
    },
    step: async () => ({ perSample: new Float32Array(4) }),
  };

  /** The two images (pixel values 2 and 4) in one batch, independent decisions, λ 0.5. */
  const twoImageEnv = (o: { quality?: 'share'; episodesPerImage?: number }) =>
    new ParallelDistillationEnv({
      distiller,
      images: { next: async () => ({ images: { data: Float32Array.of(2, 4), dims: [2, 1, 1, 1] } }) },
      numEnvs: 2,
      costs: [0.7, 0.3],
      actionMode: 'independent',
      lambdaTradeoff: 0.5,
      ...o,
    });

  it('pays the share of the all-level trial gain, one all-level trial per batch of new images', async () => {
    const env = twoImageEnv({ quality: 'share', episodesPerImage: 2 });
    await env.reset();
    expect(trials).toEqual([[1, 1, 1, 1]]);
    // Group repeat 1: image 0 selects A, image 1 selects A; repeat 2: B and B.
    const first = await env.step(Uint8Array.of(1, 0, 1, 0));
    const second = await env.step(Uint8Array.of(0, 1, 0, 1));
    // Still one all-level trial (the group's repeats share it), plus one per episode batch.
    expect(trials).toEqual([
      [1, 1, 1, 1],
      [1, 0, 1, 0],
      [0, 1, 0, 1],
      [1, 1, 1, 1], // the next images' reference, after the group
    ]);
    expect(env.referenceTrials).toBe(2);
    const q = (out: { infos: DistillationStepInfo[] }) => out.infos.map((i) => i.episode!.qualityReward);
    // Shares: image 0: A 0.3/0.4, B 0.1/0.4; image 1: A 0.02/0.22, B 0.2/0.22.
    const near = (xs: number[], ys: number[]) => xs.forEach((x, i) => expect(x).toBeCloseTo(ys[i], 6));
    near(q(first), [0.75, 0.02 / 0.22]);
    near(q(second), [0.25, 0.2 / 0.22]);
    near(Array.from(first.rewards), [0.75 + 0.5 * 0.3, 0.02 / 0.22 + 0.5 * 0.3]);
    near(Array.from(second.rewards), [0.25 + 0.5 * 0.7, 0.2 / 0.22 + 0.5 * 0.7]);
  });

  it("leaves the 'relative' term as SPEC.md defines it, with no extra trial", async () => {
    trials.length = 0;
    const env = twoImageEnv({});
    await env.reset();
    const out = await env.step(Uint8Array.of(1, 0, 0, 1));
    expect(trials).toEqual([[1, 0, 0, 1]]);
    expect(env.referenceTrials).toBe(0);
    const q = out.infos.map((i) => i.episode!.qualityReward);
    expect(q[0]).toBeCloseTo(0.3 / 2, 6);
    expect(q[1]).toBeCloseTo(0.2 / 4, 6);
  });
});
