/** Policy heatmap data: image orders against hand-worked orders, cells, and the errors for missing data. */
import { defaultHeatmapSort, policyHeatmapData, type HeatmapInput } from '../../src/viz/policy-heatmap';

const levelNames = ['P2', 'P3', 'P4'];
// Image 0: P3+P4 (cost 0.3+0.2), 1: P2 (0.5), 2: none, 3: P4 (0.2), 4: P2+P3+P4 (1.0).
const input: HeatmapInput = {
  levelNames,
  selections: [['P3', 'P4'], ['P2'], [], ['P4'], ['P2', 'P3', 'P4']],
  costs: [0.5, 0.3, 0.2],
  objectSizes: [12, null, 40, 3, 12],
};

describe('policyHeatmapData', () => {
  it('orders by the number of levels chosen, ties in held-out order', () => {
    const d = policyHeatmapData(input, 'levels');
    expect(d.order).toEqual([2, 1, 3, 0, 4]);
    expect(d.keys).toEqual([0, 1, 1, 2, 3]);
    expect(d.sortLabel).toBe('number of levels chosen');
  });

  it('orders by the cost chosen (0, 0.2, 0.5, 0.5, 1.0)', () => {
    const d = policyHeatmapData(input, 'cost');
    expect(d.order).toEqual([2, 3, 0, 1, 4]);
    expect(d.keys.map((k) => Number(k.toFixed(12)))).toEqual([0, 0.2, 0.5, 0.5, 1]);
  });

  it('orders by object size with images without boxes last', () => {
    const d = policyHeatmapData(input, 'object-size');
    expect(d.order).toEqual([3, 0, 4, 2, 1]);
    expect(Number.isNaN(d.keys[4])).toBe(true);
  });

  it('takes a custom key (here: P2 chosen first)', () => {
    const d = policyHeatmapData(input, { label: 'P2 first', key: (i) => (i.levels.includes('P2') ? 0 : 1) });
    expect(d.order).toEqual([1, 4, 0, 2, 3]);
    expect(d.sortLabel).toBe('P2 first');
  });

  it('lays out one cell per level and image, in column order', () => {
    const d = policyHeatmapData(input, 'none');
    expect(d.order).toEqual([0, 1, 2, 3, 4]);
    expect(d.cells).toHaveLength(15);
    expect(d.cells.slice(0, 3)).toEqual([
      { column: 0, image: 0, level: 'P2', distilled: false },
      { column: 0, image: 0, level: 'P3', distilled: true },
      { column: 0, image: 0, level: 'P4', distilled: true },
    ]);
    expect(d.cells.filter((c) => c.distilled)).toHaveLength(7);
  });

  it('defaults to object size, else cost, else level count', () => {
    expect(defaultHeatmapSort(input)).toBe('object-size');
    expect(defaultHeatmapSort({ costs: input.costs, objectSizes: [null, null] })).toBe('cost');
    expect(defaultHeatmapSort({})).toBe('levels');
  });

  it('says what is missing for an order the run has no data for, and rejects unknown levels', () => {
    const bare = { levelNames, selections: input.selections };
    expect(() => policyHeatmapData(bare, 'cost')).toThrow(/no level costs/);
    expect(() => policyHeatmapData(bare, 'object-size')).toThrow(/no boxes/);
    expect(() => policyHeatmapData({ levelNames, selections: [['P7']] })).toThrow(/'P7'.*P2, P3, P4/);
  });
});
