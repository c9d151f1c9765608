import * as path from 'node:path';
import { computeCostModel } from '../../src/analysis/cost-model';
import { selectionCost } from '../../src/analysis/selection-cost';
import { loadModel } from '../../src/onnx';
import { pruneToLevels } from '../../src/onnx/level-pruning';
import { TINY_FPN_MACS, tinyFpn } from './tiny-fpn';

const size = { height: 64, width: 64 };

describe('selectionCost', () => {
  it('gives the hand-computed MACs of each selection of the tiny FPN', () => {
    const model = tinyFpn();
    // Shared 133,120 + P2's own 26,624, + P3's own 9,216; both = everything a level needs (not the head).
    expect(selectionCost(model, size, ['P2']).macs).toBe(133_120 + 26_624);
    expect(selectionCost(model, size, ['p3']).macs).toBe(133_120 + 9_216);
    const both = selectionCost(model, size, ['P3', 'P2']);
    expect(both).toMatchObject({
      levels: ['P2', 'P3'],
      macs: 168_960,
      totalMacs: TINY_FPN_MACS.total,
      share: 1,
    });
    expect(selectionCost(model, size, ['P3']).share).toBeCloseTo(142_336 / 168_960, 12);
  });

  it('charges a pooled level for the conv it pools from', () => {
    const model = tinyFpn({ pooledLevel: true });
    // P4 = MaxPool(P3): it needs the shared trunk and layer_blocks.1 (9,216), and 64 max-pool element ops.
    const p4 = selectionCost(model, size, ['P4']);
    expect(p4.macs).toBe(133_120 + 9_216);
    expect(selectionCost(model, size, ['P3', 'P4']).macs).toBe(p4.macs);
  });

  it('equals the total MACs of the pruned graph for every subset of the demo student', () => {
    const model = loadModel(path.resolve(__dirname, '..', '..', 'onnx-graphs', 'student.onnx'));
    const at = { height: 96, width: 96 };
    const outputs = model.graph.outputs.map((o) => o.name);
    for (let m = 1; m < 2 ** outputs.length; m++) {
      const selection = outputs.filter((_, i) => (m >> i) & 1);
      const pruned = computeCostModel(pruneToLevels(model, selection), at);
      expect([selection.join('+'), selectionCost(model, at, selection).macs]).toEqual([
        selection.join('+'),
        pruned.totalMacs,
      ]);
    }
  });

  it('rejects an unknown level and an empty selection', () => {
    expect(() => selectionCost(tinyFpn(), size, ['P7'])).toThrow(/'P7' is not a pyramid level/);
    expect(() => selectionCost(tinyFpn(), size, [])).toThrow(/no levels selected/);
  });
});
