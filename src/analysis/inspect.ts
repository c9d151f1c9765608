/**
 * Everything `rlpkd inspect` reports about a graph, as one plain object: inputs and outputs, opset, op
 * histogram, parameters, shared initializers, pyramid levels with their costs, and the ops on a trainable
 * path that the gradient engine cannot differentiate.
 */
import { listUnsupportedOps } from '../autodiff/gradient-graph';
import { defaultOpset } from '../onnx/graph-structure';
import { elementTypeName } from '../onnx/tensor-data';
import { inferShapes, type TensorInfo } from '../onnx/shape-inference';
import type { Dim, OnnxModel } from '../onnx/types';
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
 * Ops on a path from a trainable parameter to a graph output that have no gradient rule, grouped by op
 * type. The path walk is the autodiff's own (`listUnsupportedOps`), so inspect and training agree.
 */
export function findUnsupportedOps(model: OnnxModel, trainable: readonly string[]): UnsupportedOpReport[] {
  const byOp = new Map<string, UnsupportedOpReport>();
  for (const { opType, node } of listUnsupportedOps(model, [...trainable])) {
    const e = byOp.get(opType);
    if (e) e.count++;
    else byOp.set(opType, { opType, count: 1, example: node });
  }
  return [...byOp.values()].sort((a, b) => b.count - a.count || a.opType.localeCompare(b.opType));
}
