/**
 * Inference cost of a level selection: the MACs (and element ops) of every node some selected level
 * needs, i.e. of the pruned graph `pruneToLevels` (src/onnx/level-pruning.ts) keeps, counted with the cost
 * model's per-node rules and its cut at folded shape constants.
 */
import { RlpkdError } from '../errors';
import { topologicalSort } from '../onnx/graph-structure';
import type { TensorInfo } from '../onnx/shape-inference';
import type { OnnxModel } from '../onnx/types';
import { levelDependencies, nodeCost } from './cost-model';
import { findPyramidLevels, inferAtSize, type InputSize, type PyramidLevel } from './pyramid';

/** What running only some levels costs per image. */
export interface SelectionCost {
  /** Selected level names (P2, ...), finest first. */
  levels: string[];
  /** MACs of the nodes the selected levels need (shared trunk included once). */
  macs: number;
  elementOps: number;
  /** MACs of every level: the full pyramid's inference cost. */
  totalMacs: number;
  /** macs / totalMacs. */
  share: number;
}

/**
 * The per-image inference cost of computing only `selection` (level names such as `P3`, or their graph
 * outputs) at `size`. Throws when a name is no level of the graph or the selection is empty.
 */
export function selectionCost(
  model: OnnxModel,
  size: InputSize,
  selection: readonly string[],
  options: { info?: Map<string, TensorInfo>; levels?: PyramidLevel[] } = {},
): SelectionCost {
  const info = options.info ?? inferAtSize(model, size);
  const levels = options.levels ?? findPyramidLevels(model, size, info);
  let wanted = 0;
  for (const s of selection) {
    const i = levels.findIndex((l) => l.name === s || l.output === s);
    if (i < 0) {
      throw new RlpkdError(`selection cost: '${s}' is not a pyramid level of graph '${model.graph.name}'`, {
        hint: `levels: ${levels.map((l) => `${l.name} (${l.output})`).join(', ')}`,
      });
    }
    wanted |= 2 ** i;
  }
  if (wanted === 0)
    throw new RlpkdError('selection cost: no levels selected', { hint: 'select at least one level' });
  const masks = levelDependencies(
    model,
    levels.map((l) => l.output),
    info,
  );
  let macs = 0;
  let elementOps = 0;
  let totalMacs = 0;
  for (const node of topologicalSort(model.graph)) {
    const mask = masks.get(node);
    if (!mask) continue;
    const cost = nodeCost(node, info);
    totalMacs += cost.macs;
    if (mask & wanted) {
      macs += cost.macs;
      elementOps += cost.elementOps;
    }
  }
  return {
    levels: levels.filter((_, i) => wanted & (2 ** i)).map((l) => l.name),
    macs,
    elementOps,
    totalMacs,
    share: totalMacs > 0 ? macs / totalMacs : 0,
  };
}
