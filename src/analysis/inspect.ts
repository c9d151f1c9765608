/**
 * Everything `rlpkd inspect` reports about a graph, as one plain object: inputs and outputs, opset, op
 * histogram, parameters, shared initializers, pyramid levels with their costs, and the ops on a trainable
 * path that the gradient engine cannot differentiate.
 */
import { GRADIENT_RULES } from '../autodiff/rules';
import { isFloatType } from '../onnx/infer/fold';
import { defaultOpset, topologicalSort } from '../onnx/graph-structure';
import { elementTypeName } from '../onnx/tensor-data';
import { inferShapes, type TensorInfo } from '../onnx/shape-inference';
import { DataType, type Dim, type OnnxModel, type OnnxNode } from '../onnx/types';
import { computeCostModel } from './cost-model';
import { classifyParameters, type ParameterPatterns } from './parameters';
import { findPyramidLevels, imageInput, inferAtSize, type InputSize } from './pyramid';

/** A graph input or output as the report shows it. */
export interface TensorSummary {
  name: string;
  /** float32, int64, ... */
  dataType: string;
  /** As declared (inputs) or as inferred at the analysed size with a symbolic batch (outputs). */
  shape: Dim[] | null;
}

/** One pyramid level with its exclusive cost. */
export interface LevelReport {
  name: string;
  output: string;
  stride: number;
  channels: number;
  height: number;
  width: number;
  /** Exclusive MACs per image: the sub-graph only this level needs. */
  macs: number;
  /** macs / totalMacs. */
  costShare: number;
  /** Share of the full-pyramid distillation compute (the MDP's cost_l; sums to 1). */
  distillCost: number;
}

/** A stored tensor read under several names (see src/onnx/shared-initializers.ts). */
export interface SharedInitializerReport {
  initializer: string;
  dims: number[];
  kind: 'parameter' | 'constant';
  /** Distinct names the readers use (the initializer and its Identity aliases). */
  readAs: string[];
  uses: number;
}

/** An op type the gradient engine cannot differentiate, found on a trainable path. */
export interface UnsupportedOpReport {
  opType: string;
  count: number;
  /** Name of one such node. */
  example: string;
}

/** Everything `rlpkd inspect` prints; `--json` prints exactly this object. */
export interface InspectReport {
  graph: string;
  producer: string;
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  opset: number;
  opsetImports: { domain: string; version: number }[];
  nodes: number;
  /** Op type → node count, most frequent first. */
  ops: Record<string, number>;
  inputSize: InputSize;
  /** Trainable parameter elements after untying shared parameters (one parameter per consumer). */
  trainableParameters: number;
  trainableTensors: number;
  /** Trainable elements as stored, where a tied initializer counts once. */
  trainableParametersAsStored: number;
  parameterCounting: 'after-untying' | 'as-stored';
  /** Initializers that are not trainable (folded batch-norm, shape constants, ...). */
  constants: number;
  constantElements: number;
  sharedInitializers: SharedInitializerReport[];
  levels: LevelReport[];
  /** MACs per image of the nodes two or more levels need. */
  sharedMacs: number;
  /** MACs per image of the whole pyramid. */
  totalMacs: number;
  unsupportedOps: UnsupportedOpReport[];
}

/** Inspects a model at an input size (see resolveInputSize for choosing one). */
export function inspectModel(
  model: OnnxModel,
  size: InputSize,
  options: { parameters?: ParameterPatterns } = {},
): InspectReport {
  const g = model.graph;
  const info = inferAtSize(model, size);
  const levels = findPyramidLevels(model, size, info);
  const cost = computeCostModel(model, size, { info, levels });
  const params = classifyParameters(model, options.parameters ?? {});
  const symbolic = symbolicOutputShapes(model, size);
  return {
    graph: g.name,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    inputs: g.inputs
      .filter((v) => !g.initializers.some((t) => t.name === v.name))
      .map((v) => ({ name: v.name, dataType: elementTypeName(v.dataType), shape: v.shape ?? null })),
    outputs: g.outputs.map((o) => {
      const t = symbolic.get(o.name);
      return {
        name: o.name,
        dataType: elementTypeName(t?.dataType ?? o.dataType),
        shape: t?.shape ?? o.shape ?? null,
      };
    }),
    opset: defaultOpset(model),
    opsetImports: model.opsetImports.map((o) => ({ domain: o.domain || 'ai.onnx', version: o.version })),
    nodes: g.nodes.length,
    ops: opHistogram(model),
    inputSize: size,
    trainableParameters: params.trainableElements,
    trainableTensors: params.trainable.length,
    trainableParametersAsStored: params.storedTrainableElements,
    parameterCounting: params.counting,
    constants: params.constants.length,
    constantElements: params.constantElements,
    sharedInitializers: params.sharedInitializers.map((s) => ({
      initializer: s.initializer,
      dims: s.dims,
      kind: s.kind,
      readAs: [...new Set(s.uses.map((u) => u.via))],
      uses: s.uses.length,
    })),
    levels: cost.levels.map((l) => ({
      name: l.name,
      output: l.output,
      stride: l.stride,
      channels: l.channels,
      height: l.height,
      width: l.width,
      macs: l.macs,
      costShare: l.costShare,
      distillCost: l.distillCost,
    })),
    sharedMacs: cost.sharedMacs,
    totalMacs: cost.totalMacs,
    unsupportedOps: findUnsupportedOps(
      params.model,
      params.trainable.map((p) => p.name),
    ),
  };
}

/** Output shapes at the analysed size with the input's declared batch axis (usually symbolic). */
function symbolicOutputShapes(model: OnnxModel, size: InputSize): Map<string, TensorInfo> {
  const input = imageInput(model);
  const [batch, channels] = input.shape!;
  return inferShapes(model, { [input.name]: [batch, channels, size.height, size.width] });
}

/** Op type → count (domain-qualified outside ai.onnx), most frequent first, ties by name. */
export function opHistogram(model: OnnxModel): Record<string, number> {
  const counts = new Map<string, number>();
  for (const n of model.graph.nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/**
 * Ops on a path from a trainable parameter to a graph output that have no gradient rule. Gradients flow
 * only through float tensors and through inputs a rule does not declare non-differentiable, so integer
 * and shape ops (Shape, Gather on shapes, Cast to int64, ...) never count.
 */
export function findUnsupportedOps(model: OnnxModel, trainable: readonly string[]): UnsupportedOpReport[] {
  const g = model.graph;
  const order = topologicalSort(g);
  const floatTensors = floatTensorNames(model);
  // Forward: tensors that depend (differentiably) on a trainable parameter.
  const reached = new Set(trainable);
  const onForward = new Set<OnnxNode>();
  for (const n of order) {
    const rule = isDefaultDomain(n) ? GRADIENT_RULES.get(n.opType) : undefined;
    const blocked = new Set(rule?.nonDifferentiableInputs ?? []);
    const hit = n.inputs.some((name, i) => name && !blocked.has(i) && reached.has(name));
    if (!hit) continue;
    const floatOuts = n.outputs.filter((o) => o && floatTensors.has(o));
    if (floatOuts.length === 0) continue;
    onForward.add(n);
    for (const o of floatOuts) reached.add(o);
  }
  // Backward: tensors a graph output depends on.
  const needed = new Set(g.outputs.map((o) => o.name));
  const onPath: OnnxNode[] = [];
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    for (const i of n.inputs) if (i) needed.add(i);
    if (onForward.has(n)) onPath.push(n);
  }
  const byOp = new Map<string, UnsupportedOpReport>();
  for (const n of onPath.reverse()) {
    if (isDefaultDomain(n) && GRADIENT_RULES.has(n.opType)) continue;
    const key = isDefaultDomain(n) ? n.opType : `${n.domain}.${n.opType}`;
    const e = byOp.get(key);
    if (e) e.count++;
    else byOp.set(key, { opType: key, count: 1, example: n.name || n.outputs[0] });
  }
  return [...byOp.values()].sort((a, b) => b.count - a.count || a.opType.localeCompare(b.opType));
}

function isDefaultDomain(n: OnnxNode): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/** Names of node outputs with a float element type (unknown types count as float, to stay on the safe side). */
function floatTensorNames(model: OnnxModel): Set<string> {
  const out = new Set<string>();
  const types = inferShapes(model); // element types do not depend on the input size
  for (const n of model.graph.nodes) {
    for (const o of n.outputs) {
      if (!o) continue;
      const dt = types.get(o)?.dataType ?? DataType.UNDEFINED;
      if (dt === DataType.UNDEFINED || isFloatType(dt)) out.add(o);
    }
  }
  return out;
}
