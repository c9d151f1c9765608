import { computeCostModel } from '../../src/analysis/cost-model';
import { findPyramidLevels } from '../../src/analysis/pyramid';
import { selectionCost } from '../../src/analysis/selection-cost';
import { graphMacs, inferenceCost } from '../../src/eval/inference-cost';
import { tinyFpn } from '../distill/fixtures';

const size = { height: 32, width: 32 };

describe('inferenceCost', () => {
  const teacher = tinyFpn({ arch: 'resnet34-fpn', seed: 1 });
  const student = tinyFpn({ seed: 2 });
  const levels = findPyramidLevels(student, size);
  const outputOf = (name: string) => levels.find((l) => l.name === name)!.output;

  it('costs the whole pyramids as the cost model does', () => {
    const r = inferenceCost(teacher, student, size, [['P2', 'P3', 'P4', 'P5']], outputOf);
    expect(r.teacherMacs).toBe(computeCostModel(teacher, size).totalMacs);
    expect(r.studentMacs).toBe(computeCostModel(student, size).totalMacs);
    expect(r.teacherMacs).toBeGreaterThan(r.studentMacs);
    // all levels selected: the pruned graph is the whole pyramid
    expect(r.selectedMacs).toBe(r.studentMacs);
    expect(r.selectedShare).toBe(1);
  });

  it('averages the pruned subsets over images, each equal to the selection cost', () => {
    const selections = [['P5'], ['P4', 'P5'], ['P5'], ['P2']];
    const r = inferenceCost(teacher, student, size, selections, outputOf);
    const cost = (s: string[]) => selectionCost(student, size, s).macs;
    expect(r.subsets).toEqual([
      { subset: 'P5', images: 2, macs: cost(['P5']) },
      { subset: 'P2', images: 1, macs: cost(['P2']) },
      { subset: 'P4+P5', images: 1, macs: cost(['P4', 'P5']) },
    ]);
    const mean = (2 * cost(['P5']) + cost(['P4', 'P5']) + cost(['P2'])) / 4;
    expect(r.selectedMacs).toBeCloseTo(mean, 6);
    expect(r.selectedMacs).toBeLessThan(r.studentMacs);
    expect(graphMacs(student, size)).toBe(r.studentMacs);
  });
});
