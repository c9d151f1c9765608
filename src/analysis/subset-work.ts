/**
 * The cost model's prediction for a distillation step that computes only some pyramid levels (a gradient
 * graph pruned to them): 3 passes (forward, input and weight gradients: FORWARD_BACKWARD_FACTOR) over the
 * MACs of every node the selected levels need, shared trunk included (selectionCost), plus
 * LOSS_OPS_PER_ELEMENT operations per distilled feature element. Its ratio to the all-levels step is the
 * share of the step's time the selection should take.
 */
import type { TensorInfo } from '../onnx/shape-inference';
import type { OnnxModel } from '../onnx/types';
import { FORWARD_BACKWARD_FACTOR, LOSS_OPS_PER_ELEMENT } from './cost-model';
import type { InputSize, PyramidLevel } from './pyramid';
import { selectionCost } from './selection-cost';

/** Predicted work per image of a step over some levels. */
export interface SubsetWork {
  /** MACs per image of the pruned student's forward. */
  macs: number;
  /** Element ops per image of the pruned forward (not in the prediction; shown beside it). */
  elementOps: number;
  /** Feature elements per image the subset's loss reads. */
  lossElements: number;
  /** 3 · macs + 3 · lossElements. */
  work: number;
}

/**
 * The predicted work of a step over `chosen` (levels of `levels`, the student's pyramid at `size`, with the
 * channels the loss compares), see the module doc.
 */
export function subsetWork(
  model: OnnxModel,
  size: InputSize,
  chosen: readonly PyramidLevel[],
  context: { info?: Map<string, TensorInfo>; levels: PyramidLevel[] },
): SubsetWork {
  const { macs, elementOps } = selectionCost(
    model,
    size,
    chosen.map((l) => l.name),
    context,
  );
  const lossElements = chosen.reduce((a, l) => a + l.channels * l.height * l.width, 0);
  return {
    macs,
    elementOps,
    lossElements,
    work: FORWARD_BACKWARD_FACTOR * macs + LOSS_OPS_PER_ELEMENT * lossElements,
  };
}
