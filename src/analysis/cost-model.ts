/**
 * Per-level compute of a pyramid backbone: the multiply-accumulates (MACs) of the sub-graph only one level
 * needs (exclusive), the part several levels share, and the distillation-cost shares the RL environment
 * spends its budget in.
 *
 * What is counted: MACs of Conv, ConvTranspose, Gemm and MatMul only (per image, batch 1). Element-wise
 * ops, activations, Resize and pooling are counted separately as `elementOps` (one per output element;
 * pooling: one per window element) and do not enter `macs`, `costShare` or `distillCost`. A node belongs
 * to a level when the level's output depends on its value; dependencies only on a tensor's shape do not
 * count when shape inference folds that shape to a constant.
 *
 * Distillation cost (the MDP's `cost_l`, src/rl/README.md): per level,
 *   w_l = 3 · exclusiveMACs_l + 3 · C_l·H_l·W_l
 * (forward + input-gradient + weight-gradient passes over the level's exclusive sub-graph, each as many
 * MACs as the forward; plus the per-element MSE loss: difference, square-accumulate and its gradient),
 * and cost_l = w_l / Σ_k w_k, so Σ cost_l = 1. The shared trunk is spent whenever any level is selected,
 * so it is not charged to any level.
 */
import { RlpkdError } from '../errors';
import { getInts } from '../onnx/attributes';
import { isFloatType, isStatic, sizeOf } from '../onnx/infer/fold';
import { topologicalSort } from '../onnx/graph-structure';
import { levelDependencyMasks } from '../onnx/level-pruning';
import type { TensorInfo } from '../onnx/shape-inference';
import type { Dim, OnnxModel, OnnxNode } from '../onnx/types';
import { findPyramidLevels, inferAtSize, type InputSize, type PyramidLevel } from './pyramid';

/** Passes over a level's exclusive sub-graph per distillation step: forward, input- and weight-gradients. */
export const FORWARD_BACKWARD_FACTOR = 3;
/** Operations per feature element of the per-level MSE loss (difference, square-accumulate, gradient). */
export const LOSS_OPS_PER_ELEMENT = 3;

/** Compute of one node, per image. */
export interface NodeCost {
  macs: number;
  elementOps: number;
  /** False when the node should have MACs but its shapes are not known (counted as 0). */
  known: boolean;
}

/** Cost of one pyramid level. */
export interface LevelCost extends PyramidLevel {
  /** MACs of the nodes only this level needs. */
  macs: number;
  /** Element ops of the nodes only this level needs. */
  elementOps: number;
  /** macs / totalMacs. */
  costShare: number;
  /** Elements of the level's feature map per image (what the distillation loss reads). */
  lossElements: number;
  /** The MDP's cost_l: share of the full-pyramid distillation compute (Σ over levels = 1). */
  distillCost: number;
}

/** Per-level and shared compute of a pyramid graph at one input size. */
export interface CostModel {
  inputSize: InputSize;
  levels: LevelCost[];
  /** MACs of nodes that two or more levels need. */
  sharedMacs: number;
  /** MACs of every node some level needs (= sharedMacs + Σ level macs). */
  totalMacs: number;
  sharedElementOps: number;
  totalElementOps: number;
  /** Names of MAC-bearing nodes whose shapes could not be inferred (their MACs count as 0). */
  unknownNodes: string[];
}

const MAC_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);
const POOL_OPS = new Set(['MaxPool', 'AveragePool', 'LpPool']);
const GLOBAL_POOL_OPS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);

function staticShape(info: Map<string, TensorInfo>, name: string): number[] | undefined {
  const s = info.get(name)?.shape;
  return isStatic(s) ? s : undefined;
}

/** Replaces a symbolic batch (first dim) by 1 so costs are per image. */
function perImage(shape: Dim[] | undefined): number[] | undefined {
  if (!shape) return undefined;
  const s = shape.map((d, i) => (i === 0 && typeof d !== 'number' ? 1 : d));
  return isStatic(s) ? s : undefined;
}

/** MACs and element ops of one node, from inferred shapes. */
export function nodeCost(node: OnnxNode, info: Map<string, TensorInfo>): NodeCost {
  const out = node.outputs[0] ? perImage(info.get(node.outputs[0])?.shape) : undefined;
  const outType = node.outputs[0] ? info.get(node.outputs[0])?.dataType : undefined;
  if (MAC_OPS.has(node.opType)) {
    const macs = macsOf(node, info, out);
    return macs === undefined
      ? { macs: 0, elementOps: 0, known: false }
      : { macs, elementOps: 0, known: true };
  }
  if (!out || outType === undefined || !isFloatType(outType)) return { macs: 0, elementOps: 0, known: true };
  if (POOL_OPS.has(node.opType)) {
    const k = getInts(node, 'kernel_shape', []);
    return { macs: 0, elementOps: sizeOf(out) * sizeOf(k), known: true };
  }
  if (GLOBAL_POOL_OPS.has(node.opType)) {
    const x = perImage(info.get(node.inputs[0])?.shape);
    return { macs: 0, elementOps: x ? sizeOf(x) : 0, known: true };
  }
  if (node.opType === 'Constant' || node.opType === 'Identity')
    return { macs: 0, elementOps: 0, known: true };
  return { macs: 0, elementOps: sizeOf(out), known: true };
}

function macsOf(
  node: OnnxNode,
  info: Map<string, TensorInfo>,
  out: number[] | undefined,
): number | undefined {
  const a = perImage(info.get(node.inputs[0])?.shape);
  const b = staticShape(info, node.inputs[1]);
  switch (node.opType) {
    case 'Conv': {
      // N·Cout·Ho·Wo · (Cin/g)·kh·kw; the weight is [Cout, Cin/g, kh, kw].
      if (!out || !b) return undefined;
      return sizeOf(out) * sizeOf(b.slice(1));
    }
    case 'ConvTranspose': {
      // Every input pixel scatters a (Cout/g)·kh·kw window: N·Cin·Hi·Wi · (Cout/g)·kh·kw; weight [Cin, Cout/g, kh, kw].
      if (!a || !b) return undefined;
      return sizeOf(a) * sizeOf(b.slice(1));
    }
    case 'Gemm': {
      if (!out || !a) return undefined;
      const transA = node.attributes.transA?.type === 'int' && node.attributes.transA.value === 1;
      const k = transA ? a[0] : a[1];
      return sizeOf(out) * k;
    }
    case 'MatMul': {
      if (!out || !a) return undefined;
      return sizeOf(out) * a[a.length - 1];
    }
    default:
      return undefined;
  }
}

/**
 * For each node, the set of levels (bit mask over `outputs`) whose value depends on it. Tensors with a
 * folded constant value cut the dependency (a Shape of a statically shaped tensor needs nothing).
 */
export function levelDependencies(
  model: OnnxModel,
  outputs: readonly string[],
  info: Map<string, TensorInfo>,
): Map<OnnxNode, number> {
  if (outputs.length > 30)
    throw new RlpkdError(`cost model: ${outputs.length} pyramid outputs is more than 30`);
  const masks = levelDependencyMasks(
    model.graph,
    outputs,
    (name) => info.get(name)?.value !== undefined && !outputs.includes(name),
  );
  return new Map([...masks].map(([node, mask]) => [node, Number(mask)]));
}

/** Exclusive and shared MACs per pyramid level, and the distillation-cost shares, at an input size. */
export function computeCostModel(
  model: OnnxModel,
  size: InputSize,
  options: { info?: Map<string, TensorInfo>; levels?: PyramidLevel[] } = {},
): CostModel {
  const info = options.info ?? inferAtSize(model, size);
  const levels = options.levels ?? findPyramidLevels(model, size, info);
  const masks = levelDependencies(
    model,
    levels.map((l) => l.output),
    info,
  );
  const exclusiveMacs = new Array<number>(levels.length).fill(0);
  const exclusiveOps = new Array<number>(levels.length).fill(0);
  let sharedMacs = 0;
  let sharedElementOps = 0;
  const unknownNodes: string[] = [];
  for (const node of topologicalSort(model.graph)) {
    const mask = masks.get(node);
    if (!mask) continue;
    const cost = nodeCost(node, info);
    if (!cost.known) unknownNodes.push(node.name || node.outputs[0]);
    const single = Math.log2(mask);
    if (Number.isInteger(single)) {
      exclusiveMacs[single] += cost.macs;
      exclusiveOps[single] += cost.elementOps;
    } else {
      sharedMacs += cost.macs;
      sharedElementOps += cost.elementOps;
    }
  }
  const totalMacs = sharedMacs + exclusiveMacs.reduce((a, b) => a + b, 0);
  const totalElementOps = sharedElementOps + exclusiveOps.reduce((a, b) => a + b, 0);
  const lossElements = levels.map((l) => l.channels * l.height * l.width);
  const weights = levels.map(
    (_, i) => FORWARD_BACKWARD_FACTOR * exclusiveMacs[i] + LOSS_OPS_PER_ELEMENT * lossElements[i],
  );
  const weightSum = weights.reduce((a, b) => a + b, 0);
  return {
    inputSize: size,
    levels: levels.map((l, i) => ({
      ...l,
      macs: exclusiveMacs[i],
      elementOps: exclusiveOps[i],
      costShare: totalMacs > 0 ? exclusiveMacs[i] / totalMacs : 0,
      lossElements: lossElements[i],
      distillCost: weightSum > 0 ? weights[i] / weightSum : 1 / levels.length,
    })),
    sharedMacs,
    totalMacs,
    sharedElementOps,
    totalElementOps,
    unknownNodes,
  };
}
