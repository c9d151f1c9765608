/**
 * Inference cost (the cost model's MACs per image; FLOPs = 2 · MACs) of the teacher's and the student's
 * whole pyramids, and of the student computing only the levels the policy selects for each held-out image:
 * the graph pruned to each selected subset (pruneToLevels), its MACs counted node by node, averaged over
 * the images.
 */
import { computeCostModel, nodeCost } from '../analysis/cost-model';
import { inferAtSize, type InputSize } from '../analysis/pyramid';
import { pruneToLevels } from '../onnx/level-pruning';
import type { OnnxModel } from '../onnx/types';

/** MACs of one level subset of the student. */
export interface SubsetCost {
  subset: string;
  images: number;
  macs: number;
}

/** The inference costs of an evaluation. */
export interface InferenceCost {
  teacherMacs: number;
  studentMacs: number;
  /** Mean over held-out images of the MACs of the student pruned to the image's selected levels. */
  selectedMacs: number;
  /** selectedMacs / studentMacs. */
  selectedShare: number;
  subsets: SubsetCost[];
}

/** MACs per image of every node of `model` at `size`. */
export function graphMacs(model: OnnxModel, size: InputSize): number {
  const info = inferAtSize(model, size);
  return model.graph.nodes.reduce((s, n) => s + nodeCost(n, info).macs, 0);
}

/**
 * Costs of the teacher, the student and the policy's selections (see module doc). `selections[i]` names
 * the selected levels of image i; `outputOf` maps a level name to the student's graph output.
 */
export function inferenceCost(
  teacher: OnnxModel,
  student: OnnxModel,
  size: InputSize,
  selections: readonly (readonly string[])[],
  outputOf: (level: string) => string,
): InferenceCost {
  const teacherMacs = computeCostModel(teacher, size).totalMacs;
  const studentMacs = computeCostModel(student, size).totalMacs;
  const counts = new Map<string, { levels: readonly string[]; images: number }>();
  for (const s of selections) {
    const key = s.join('+');
    const c = counts.get(key);
    if (c) c.images++;
    else counts.set(key, { levels: s, images: 1 });
  }
  const subsets: SubsetCost[] = [...counts.entries()].map(([subset, c]) => ({
    subset: subset || '(none)',
    images: c.images,
    macs: c.levels.length === 0 ? 0 : graphMacs(pruneToLevels(student, c.levels.map(outputOf)), size),
  }));
  const total = subsets.reduce((s, c) => s + c.images * c.macs, 0);
  const selectedMacs = selections.length > 0 ? total / selections.length : 0;
  return {
    teacherMacs,
    studentMacs,
    selectedMacs,
    selectedShare: studentMacs > 0 ? selectedMacs / studentMacs : 0,
    subsets: subsets.sort((a, b) => b.images - a.images || (a.subset < b.subset ? -1 : 1)),
  };
}
