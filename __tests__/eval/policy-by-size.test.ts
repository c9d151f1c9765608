import type { ImageRecord } from '../../src/data/types';
import { averageRanks, policyBySize, recordSizeBin, spearman } from '../../src/eval/policy-by-size';

const box = (area: number) => ({
  bbox: [0, 0, Math.sqrt(area), Math.sqrt(area)] as [number, number, number, number],
  categoryId: 1,
  label: 0,
  iscrowd: false,
  area,
});
const rec = (id: string, areas: number[], sizeBin?: ImageRecord['sizeBin']): ImageRecord => ({
  id,
  file: `/x/${id}.png`,
  boxes: areas.map(box),
  width: 100,
  height: 100,
  ...(sizeBin ? { sizeBin } : {}),
});
const LEVELS = ['P2', 'P3', 'P4', 'P5'];

describe('spearman', () => {
  it('gives average ranks to ties', () => {
    expect(averageRanks([3, 1, 3, 2])).toEqual([3.5, 1, 3.5, 2]);
  });
  it('equals hand-computed values', () => {
    expect(spearman([1, 2, 3, 4], [0, 1, 2, 3]).value).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [3, 2, 1, 0]).value).toBeCloseTo(-1, 12);
    // ranks y = [2, 2, 4, 2]: Σdxdy = 1, Σdx² = 5, Σdy² = 3
    expect(spearman([1, 2, 3, 4], [0, 0, 1, 0]).value).toBeCloseTo(1 / Math.sqrt(15), 12);
  });
  it('is undefined, with a reason, for constant data or fewer than 2 images', () => {
    expect(spearman([1, 2, 3], [2, 2, 2])).toEqual({
      value: null,
      reason: 'every image has the same finest selected level',
    });
    expect(spearman([1, 1], [0, 1]).reason).toMatch(/same object size/);
    expect(spearman([1], [0]).reason).toMatch(/1 image/);
  });
});

describe('policyBySize', () => {
  const records = [
    rec('a', [4], 'small'), // fraction 4e-4
    rec('b', [2500]), // 0.25: large (computed bin)
    rec('c', [100]), // 0.01: medium
    { id: 'd', file: '/x/d.png' }, // no boxes: unlabelled, no size
    rec('e', [4, 2500]), // mean 1252 -> 0.1252: mixed
  ];
  const selections = [['P2'], ['P5'], ['P3', 'P5'], ['P4'], ['P4']];

  it('bins images and counts level frequencies per bin', () => {
    expect(records.map(recordSizeBin)).toEqual(['small', 'large', 'medium', 'unlabelled', 'mixed']);
    const r = policyBySize(selections, records, LEVELS);
    expect(r.byBin.map((b) => [b.bin, b.images])).toEqual([
      ['small', 1],
      ['medium', 1],
      ['large', 1],
      ['mixed', 1],
      ['unlabelled', 1],
    ]);
    expect(r.byBin.find((b) => b.bin === 'medium')!.levels).toEqual({ P2: 0, P3: 1, P4: 0, P5: 1 });
  });

  it('correlates object size with the finest selected level', () => {
    // sizes 4e-4, 0.25, 0.01, 0.1252 with finest levels 0, 3, 1, 2: the same order, ρ = 1
    const r = policyBySize(selections, records, LEVELS);
    expect(r.correlation.images).toBe(4);
    expect(r.correlation.value).toBeCloseTo(1, 12);
    const flipped = policyBySize([['P5'], ['P2'], ['P4'], ['P4'], ['P3']], records, LEVELS);
    expect(flipped.correlation.value).toBeCloseTo(-1, 12);
    const same = policyBySize(
      selections.map(() => ['P5']),
      records,
      LEVELS,
    );
    expect(same.correlation.value).toBeNull();
    expect(same.correlation.reason).toMatch(/same finest selected level/);
  });

  it('with budgets and costs, gives the share of each bin whose budget covers each level', () => {
    const smallOnes = [rec('s1', [4], 'small'), rec('s2', [4], 'small'), rec('s3', [9], 'small')];
    const all = [...smallOnes, rec('l1', [2500])];
    const costs = [0.75, 0.19, 0.05, 0.01];
    // Budgets 0.8 (everything), 0.2 (P3 and coarser), 0.05 (P4 exactly: ≥ counts), 0.9 for the large image.
    const r = policyBySize([['P3'], ['P4'], ['P5'], ['P2']], all, LEVELS, {
      budgets: [0.8, 0.2, 0.05, 0.9],
      costs,
    });
    const small = r.byBin.find((b) => b.bin === 'small')!;
    expect(small.affordable).toEqual({ P2: 1 / 3, P3: 2 / 3, P4: 1, P5: 1 });
    expect(small.levels).toEqual({ P2: 0, P3: 1 / 3, P4: 1 / 3, P5: 1 / 3 });
    expect(r.byBin.find((b) => b.bin === 'large')!.affordable).toEqual({ P2: 1, P3: 1, P4: 1, P5: 1 });
    expect(policyBySize([['P3']], [smallOnes[0]], LEVELS).byBin[0].affordable).toBeUndefined();
  });
});
