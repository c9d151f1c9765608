import { randomSubsetDistribution } from '../../src/distill/random-selection';
import { rewardLandscape, summarizeLandscape, formatRewardLandscape } from '../../src/eval/reward-landscape';
import type { Distiller, ImageBatch } from '../../src/rl/distiller';
import { heldOutRewardLandscape } from '../../src/distill/evaluate-run';
import type { DistillSetup } from '../../src/distill/setup';
import type { StudentDistiller } from '../../src/distill/student-distiller';

// Two levels A (cost 0.8) and B (cost 0.2): subsets in bit-mask order A, B, A+B.
const subsets = [
  { name: 'A', cost: 0.8 },
  { name: 'B', cost: 0.2 },
  { name: 'A+B', cost: 1 },
];

describe('reward landscape', () => {
  it('compares the policy with random at its cost, the best fixed subset and the per-bin and per-image oracles', () => {
    const images = [
      { bin: 'small', lossBefore: 1, quality: [0.5, 0.0, 0.6] },
      { bin: 'small', lossBefore: 1, quality: [0.3, 0.1, 0.4] },
      { bin: 'large', lossBefore: 1, quality: [0.0, 0.2, 0.1] },
    ];
    const lambda = 0.5;
    const r = summarizeLandscape(images, subsets, lambda, [['A'], ['B'], ['B']]);
    const byName = Object.fromEntries(r.methods.map((m) => [m.name, m]));
    // Rewards q + 0.5·(1 − cost): image 0: 0.6, 0.4, 0.6; image 1: 0.4, 0.5, 0.4; image 2: 0.1, 0.6, 0.1.
    expect(byName.policy.reward).toBeCloseTo((0.6 + 0.5 + 0.6) / 3, 12);
    expect(byName.policy.meanCost).toBeCloseTo(0.4, 12);
    expect(byName.policy.quality).toBeCloseTo((0.5 + 0.1 + 0.2) / 3, 12);
    // Best fixed: A 1.1/3, B 1.5/3, A+B 1.1/3 → B.
    expect(byName['fixed B'].reward).toBeCloseTo(0.5, 12);
    // Per bin: small → A (0.5 mean) vs B (0.45) vs A+B (0.5): the first best, A; large → B.
    expect(r.byBin.map((b) => [b.bin, b.best])).toEqual([
      ['small', 'A'],
      ['large', 'B'],
    ]);
    expect(byName['best per bin'].reward).toBeCloseTo((0.6 + 0.4 + 0.6) / 3, 12);
    expect(byName['best per image'].reward).toBeCloseTo((0.6 + 0.5 + 0.6) / 3, 12);
    // Random at the policy's cost 0.4: the expectation under the maximum-entropy distribution.
    const dist = randomSubsetDistribution([0.8, 0.2], 0.4);
    const order = dist.subsets.map((s) => s.map((l) => 'AB'[l]).join('+'));
    const rewardOf = (i: number, name: string) => {
      const k = subsets.findIndex((s) => s.name === name);
      return images[i].quality[k] + lambda * (1 - subsets[k].cost);
    };
    const want =
      [0, 1, 2].reduce((a, i) => a + order.reduce((b, n, k) => b + dist.probs[k] * rewardOf(i, n), 0), 0) / 3;
    expect(byName.random.reward).toBeCloseTo(want, 12);
    expect(byName.random.meanCost).toBeCloseTo(0.4, 9);
    expect(formatRewardLandscape(r)).toContain('best per image');
  });

  it('measures one trial per image and subset on the yardstick, with the subset as the mask', async () => {
    // A fake distiller: the image's yardstick is its pixel value; a trial lowers it by 0.1 per selected level
    // weight-summed with the mask, so quality = 0.1·Σ mask / value.
    const seen: number[][] = [];
    const value = (b: ImageBatch) => (b.images.data as Float32Array)[0];
    const distiller: Distiller = {
      levels: [
        { name: 'A', stride: 4, channels: 1 },
        { name: 'B', stride: 8, channels: 1 },
      ],
      prepare: async (b) => b,
      evaluate: async (b) => ({ distances: new Float32Array(2), yardstick: Float64Array.of(value(b)) }),
      trial: async (b, mask) => {
        seen.push(Array.from(mask));
        return {
          perSample: new Float32Array(2),
          after: new Float32Array(2),
          afterYardstick: Float64Array.of(value(b) - 0.1 * (mask[0] + mask[1])),
        };
      },
      step: async () => ({ perSample: new Float32Array(2) }),
    };
    const pixels = [1, 2];
    /** The landscape of the two images (pixel values 1, 2) over `d`. */
    const landscape = (d: Distiller, quality?: 'share') => {
      let next = 0;
      return rewardLandscape({
        distiller: d,
        images: {
          next: async () => ({ images: { data: Float32Array.of(pixels[next++]), dims: [1, 1, 1, 1] } }),
        },
        count: 2,
        levelNames: ['A', 'B'],
        costs: [0.8, 0.2],
        weights: Float32Array.of(0.5, 0.5),
        lambda: 0.5,
        ...(quality ? { quality } : {}),
        bins: ['small', 'large'],
      });
    };
    const r = await landscape(distiller);
    expect(seen).toEqual([
      [1, 0],
      [0, 1],
      [1, 1],
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    expect(r.images.map((im) => im.quality.map((q) => Number(q.toFixed(12))))).toEqual([
      [0.1, 0.1, 0.2],
      [0.05, 0.05, 0.1],
    ]);
    expect(r.subsets).toEqual(subsets);
    // The 'share' quality: each subset's gain over the all-level subset's (the last trial).
    const shares = await landscape(
      {
        ...distiller,
        trial: async (b, mask) => ({
          perSample: new Float32Array(2),
          after: new Float32Array(2),
          afterYardstick: Float64Array.of(value(b) - 0.1 * mask[0] - 0.3 * mask[1]),
        }),
      },
      'share',
    );
    expect(shares.images.map((im) => im.quality.map((q) => Number(q.toFixed(12))))).toEqual([
      [0.25, 0.75, 1],
      [0.25, 0.75, 1],
    ]);
  });
});

describe('heldOutRewardLandscape', () => {
  it.each(['current', 'preconditioned'] as const)(
    'is skipped, saying why, when trials need the moments (%s) and the checkpoint has none',
    async (state) => {
      const setup = { config: { rl: { environment: { trial_optimizer_state: state } } } } as DistillSetup;
      const r = await heldOutRewardLandscape(setup, {} as StudentDistiller, {
        selection: { selections: [], histogram: [], meanUsedCost: 0, source: 'fixed' },
        optimizerStateOmitted: true,
      });
      expect(r).toEqual({ skipped: expect.stringContaining(`trial_optimizer_state is ${state}`) });
    },
  );
});
