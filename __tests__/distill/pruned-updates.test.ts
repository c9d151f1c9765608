/**
 * The grouped, pruned update route of StudentDistiller.step against the masked all-levels route: same
 * parameters (and optimizer state) after steps on batches whose images select different level subsets.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StudentDistiller, distillerArtifactsDir } from '../../src/distill/student-distiller';
import { gatherBlock, gatherRows, groupBySubset } from '../../src/distill/subset-groups';
import type { HostTensor } from '../../src/runtime';
import type { OptimizerConfig } from '../../src/training/optimizers';
import { Rng } from '../../src/util/rng';
import { tinyDistillGraphs } from './fixtures';
import { tempDir } from './run-fixtures';

const L = 4;
/** Largest relative L2 difference per tensor between the routes (float32 sums in another order). */
const REL_TOL = 1e-6;

function images(seed: number, n: number): HostTensor {
  const rng = new Rng(seed);
  return { data: Float32Array.from({ length: n * 3 * 32 * 32 }, () => rng.normal()), dims: [n, 3, 32, 32] };
}

async function makeDistiller(
  updates: 'pruned' | 'masked',
  optimizer: OptimizerConfig,
  extra: { artifactsDir?: string; maxGradNorm?: number } = {},
) {
  return StudentDistiller.create({ ...tinyDistillGraphs(16), optimizer, updates, ...extra });
}

/** Rows: P2 | P4+P5 | all | P4+P5 | P3 | none (level order P2..P5). */
function mixedMask(): Float32Array {
  const rows = [
    [1, 0, 0, 0],
    [0, 0, 1, 1],
    [1, 1, 1, 1],
    [0, 0, 1, 1],
    [0, 1, 0, 0],
    [0, 0, 0, 0],
  ];
  return Float32Array.from(rows.flat());
}

function relL2(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return n === 0 ? Math.sqrt(d) : Math.sqrt(d / n);
}

function worstStateDifference(a: StudentDistiller, b: StudentDistiller): number {
  const sa = a.checkpointState();
  const sb = b.checkpointState();
  let worst = 0;
  for (const [name, t] of Object.entries(sb.parameters))
    worst = Math.max(worst, relL2(sa.parameters[name].data as Float32Array, t.data as Float32Array));
  for (const [name, t] of Object.entries(sb.optimizer.state)) {
    const other = sa.optimizer.state[name].data as Float32Array;
    worst = Math.max(worst, relL2(other, t.data as Float32Array));
  }
  return worst;
}

describe('pruned per-subset updates', () => {
  jest.setTimeout(120000);

  it('groups a batch by selected subset, empty rows in no group', () => {
    const groups = groupBySubset(mixedMask(), 6, L);
    expect(groups).toEqual([
      { levels: [0], rows: [0] },
      { levels: [2, 3], rows: [1, 3] },
      { levels: [0, 1, 2, 3], rows: [2] },
      { levels: [1], rows: [4] },
    ]);
    const t: HostTensor = { data: Float32Array.from([0, 1, 2, 3, 4, 5]), dims: [3, 2] };
    expect(Array.from(gatherRows(t, [2, 0]).data as Float32Array)).toEqual([4, 5, 0, 1]);
    expect(gatherRows(t, [0, 1, 2])).toBe(t);
    expect(Array.from(gatherBlock(mixedMask(), L, [1, 2], [2, 0]))).toEqual([1, 0, 1, 1]);
  });

  for (const [label, optimizer, clip] of [
    ['AdamW', { type: 'adamw', lr: 1e-3, weightDecay: 1e-2 }, undefined],
    [
      'SGD with momentum, gradient clipping',
      { type: 'sgd', lr: 1e-2, momentum: 0.9, weightDecay: 1e-3 },
      0.05,
    ],
  ] as const) {
    it(`equals the masked all-levels update on mixed subsets (${label})`, async () => {
      const dir = tempDir('pruned-updates');
      const root = path.join(dir, 'artifacts');
      const extra = clip !== undefined ? { maxGradNorm: clip } : {};
      const pruned = await makeDistiller('pruned', optimizer, {
        artifactsDir: distillerArtifactsDir(root, 'all'),
        ...extra,
      });
      const masked = await makeDistiller('masked', optimizer, extra);
      try {
        const weights = Float32Array.from([0.1, 0.2, 0.3, 0.4]);
        const mask = mixedMask();
        // An all-levels step first, so the optimizer state is not zero when the mixed steps come.
        const batches = [
          { x: images(1, 6), mask: new Float32Array(6 * L).fill(1) },
          { x: images(2, 6), mask },
          { x: images(3, 6), mask },
        ];
        for (const [i, b] of batches.entries()) {
          const a = await pruned.step({ images: b.x }, b.mask, weights);
          const m = await masked.step({ images: b.x }, b.mask, weights);
          expect(a.route).toBe(i === 0 ? 'full' : 'grouped');
          expect(m.route).toBe('full');
          expect(Math.abs(a.loss - m.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(m.loss));
          a.levelLosses.forEach((v, l) =>
            expect(Math.abs(v - m.levelLosses[l])).toBeLessThanOrEqual(
              1e-6 * Math.abs(m.levelLosses[l]) + 1e-12,
            ),
          );
          expect(Math.abs(a.gradNorm - m.gradNorm)).toBeLessThanOrEqual(1e-5 * m.gradNorm);
          // Distances of selected levels agree; the pruned route did not compute the others.
          for (let k = 0; k < b.mask.length; k++) {
            if (b.mask[k])
              expect(Math.abs(a.perSample[k] - m.perSample[k])).toBeLessThanOrEqual(1e-6 * m.perSample[k]);
            else expect(a.perSample[k]).toBeNaN();
          }
          if (i > 0) {
            expect(a.groups!.map((g) => g.levels)).toEqual(['all', ['P2'], ['P4', 'P5'], ['P3']]);
          }
          expect(worstStateDifference(pruned, masked)).toBeLessThanOrEqual(REL_TOL);
        }
        // The state really moved (the comparison is not between two untouched students).
        const start = (await makeDistiller('masked', optimizer)).checkpointState();
        expect(
          worstStateDifference(pruned, { checkpointState: () => start } as StudentDistiller),
        ).toBeGreaterThan(1e-4);
        // Per-subset artifacts are cached on disk beside the all-levels ones.
        expect(fs.readdirSync(root).sort()).toEqual([
          'student-all-levels',
          'student-levels-P2',
          'student-levels-P3',
          'student-levels-P4+P5',
        ]);
      } finally {
        await pruned.release();
        await masked.release();
      }
    });
  }

  it('rolls a trial back bit for bit and measures the same trial as the masked route', async () => {
    const optimizer: OptimizerConfig = { type: 'sgd', lr: 1e-2, momentum: 0.9 };
    const pruned = await makeDistiller('pruned', optimizer);
    const masked = await makeDistiller('masked', optimizer);
    try {
      const x = { images: images(4, 6) };
      const weights = new Float32Array(L).fill(0.25);
      const before = pruned.checkpointState();
      const a = await pruned.trial(x, mixedMask(), weights);
      const m = await masked.trial(x, mixedMask(), weights);
      expect(relL2(a.after, m.after)).toBeLessThanOrEqual(REL_TOL);
      const after = pruned.checkpointState();
      for (const [name, t] of Object.entries(before.parameters))
        expect(after.parameters[name].data).toEqual(t.data);
    } finally {
      await pruned.release();
      await masked.release();
    }
  });
});
