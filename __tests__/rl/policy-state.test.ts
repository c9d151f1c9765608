import { pooledStateFeatures, stateLayout, writeState } from '../../src/rl/policy-state';
import { Rng } from '../../src/util/rng';

describe('policy state (kind train)', () => {
  it("lays out SPEC.md's state: 1542 values for 4 levels × 256 channels, the coarsest level by stride", () => {
    const levels = ['P2', 'P3', 'P4', 'P5'].map((name, i) => ({ name, stride: 4 << i, channels: 256 }));
    const l = stateLayout('train', levels);
    expect(l.dim).toBe(1542);
    expect([l.pooledWidth, l.lossIndex, l.selectedOffset, l.budgetIndex]).toEqual([1536, 1536, 1537, 1541]);
    // Decision order P5 first: the coarsest is still P5, found by its stride, not its position.
    const mixed = [
      { name: 'P5', stride: 32, channels: 3 },
      { name: 'P3', stride: 8, channels: 5 },
    ];
    const m = stateLayout('train', mixed);
    expect(m.coarsest.name).toBe('P5');
    expect(m.dim).toBe(2 * 3 + (3 + 5) + 1 + 2 + 1);
  });

  it('pools avg ‖ max of the coarsest level, then the avg of every level in the given order', () => {
    const rng = new Rng(7);
    const N = 2;
    const shapes = { P3: [N, 2, 3, 2], P5: [N, 3, 1, 2] };
    const features = Object.fromEntries(
      Object.entries(shapes).map(([k, dims]) => [
        k,
        { data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal()), dims },
      ]),
    );
    const layout = stateLayout('train', [
      { name: 'P5', stride: 32, channels: 3 },
      { name: 'P3', stride: 8, channels: 2 },
    ]);
    const pooled = pooledStateFeatures(layout, features, N);
    // Float64 reference, written out per channel.
    const channel = (level: 'P3' | 'P5', n: number, c: number): number[] => {
      const [, C, H, W] = shapes[level];
      const d = features[level].data;
      return Array.from(d.subarray((n * C + c) * H * W, (n * C + c + 1) * H * W));
    };
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    for (let n = 0; n < N; n++) {
      const want = [
        ...[0, 1, 2].map((c) => avg(channel('P5', n, c))),
        ...[0, 1, 2].map((c) => Math.max(...channel('P5', n, c))),
        ...[0, 1, 2].map((c) => avg(channel('P5', n, c))),
        ...[0, 1].map((c) => avg(channel('P3', n, c))),
      ];
      const got = Array.from(pooled.subarray(n * layout.pooledWidth, (n + 1) * layout.pooledWidth));
      got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    }
    const state = new Float32Array(layout.dim + 1).fill(-1);
    writeState(layout, pooled, { loss: 0.5, selected: [1, 0], budgetLeft: 0.25 }, 1, state, 1);
    expect(state[0]).toBe(-1);
    expect(Array.from(state.subarray(1, 1 + layout.pooledWidth))).toEqual(
      Array.from(pooled.subarray(layout.pooledWidth)),
    );
    expect(Array.from(state.subarray(1 + layout.lossIndex!))).toEqual([0.5, 1, 0, 0.25]);
  });

  it('names the level whose features do not fit', () => {
    const layout = stateLayout('train', [{ name: 'P4', stride: 16, channels: 4 }]);
    expect(() =>
      pooledStateFeatures(layout, { P4: { data: new Float32Array(6), dims: [1, 3, 1, 2] } }, 1),
    ).toThrow(/level P4 features are \[1, 3, 1, 2\], expected \[1, 4, H, W\]/);
  });
});
