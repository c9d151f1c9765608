/**
 * Level pruning of a pyramid graph: the sub-graph that computes only some pyramid levels, and the split
 * of the whole graph into the trunk several levels share and one part per level. Pure graph surgery
 * (no runtime): per-subset updates, the inference cost of a selection and a split browser bundle build
 * on it. Levels are graph outputs; src/analysis/pyramid.ts finds and names them.
 *
 * Trunk and parts. A node belongs to the levels whose output depends on it. The trunk is every node two
 * or more levels need; the part of level l is every node only l needs. So the trunk is not just the
 * backbone: in an FPN the top-down path adds each coarser merged map (lateral 1×1 conv + upsampled
 * coarser map) into every finer level, so those merged maps, and the laterals of all but the finest
 * level, are trunk; a level's part is its 3×3 output conv (the finest level's part also holds its
 * lateral conv and the merge). When a level's output feeds another level (torchvision's LastLevelMaxPool
 * computes P6 from P5), that output is itself trunk and the level's part is empty: it passes the trunk
 * tensor through. Nodes whose value is a constant (Constant nodes and what only constants feed) are never
 * trunk: each model that needs one gets its own copy, so no constant crosses the boundary.
 *
 * Boundary tensors keep their names in the full graph, so they are stable for a given graph whatever the
 * selection, and feeding the trunk's outputs to the parts by name composes the full graph.
 */
import { GraphError } from '../errors';
import { pruneToOutputs } from './extract-subgraph';
import { nodeReads, producerMap, topologicalSort } from './graph-structure';
import { inferShapes } from './shape-inference';
import { DataType, type OnnxGraph, type OnnxModel, type OnnxNode, type ValueInfo } from './types';

/** A pyramid level: its graph output name, or anything naming it as `output` (e.g. a PyramidLevel). */
export type LevelRef = string | { readonly output: string };

/** One level's part of a split: a standalone model from trunk tensors to the level's output. */
export interface LevelPart {
  /** The level's graph output (also the part's only output). */
  output: string;
  /** Inputs of the part: trunk boundary tensors, and graph inputs it reads directly (rare). */
  inputs: string[];
  model: OnnxModel;
}

/** The trunk every selected level needs and one part per level. */
export interface PyramidSplit {
  /** From the graph inputs to the boundary tensors. */
  trunk: OnnxModel;
  /** Trunk outputs: what the parts read, and level outputs the trunk computes; in graph order. */
  boundary: string[];
  /** One per level, in the order of the graph's outputs. */
  parts: LevelPart[];
}

/** The graph output names `levels` refer to, in the order of the graph's outputs, checked and deduplicated. */
export function levelOutputs(model: OnnxModel, levels: readonly LevelRef[]): string[] {
  const wanted = new Set(levels.map((l) => (typeof l === 'string' ? l : l.output)));
  const outputs = model.graph.outputs.map((o) => o.name);
  const unknown = [...wanted].filter((w) => !outputs.includes(w));
  if (unknown.length > 0) {
    throw new GraphError(
      `level pruning: ${unknown.map((u) => `'${u}'`).join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not ` +
        `an output of graph '${model.graph.name}' (outputs: ${outputs.join(', ') || 'none'})`,
      { hint: 'name pyramid levels by their graph outputs; `rlpkd inspect` lists them' },
    );
  }
  if (wanted.size === 0) {
    throw new GraphError(`level pruning: no levels selected of graph '${model.graph.name}'`, {
      hint: 'select at least one pyramid level',
    });
  }
  return outputs.filter((o) => wanted.has(o));
}

/**
 * The sub-graph that computes only `levels`' outputs: nodes, initializers and inputs no selected level
 * needs are removed; what remains is unchanged (same names, same node order), so it computes the same
 * values. Outputs follow the graph's output order.
 */
export function pruneToLevels(model: OnnxModel, levels: readonly LevelRef[]): OnnxModel {
  return pruneToOutputs(model, levelOutputs(model, levels));
}

/**
 * Splits the graph into the trunk that two or more of `levels` (default: every graph output) need and
 * one part per level (see the module comment for how an FPN's top-down path falls). Running the trunk,
 * then each part on the trunk's outputs, computes exactly what the full graph computes. Nodes no given
 * level needs are in neither; with a single level the trunk is empty and the part reads the graph inputs.
 */
export function splitPyramid(model: OnnxModel, levels?: readonly LevelRef[]): PyramidSplit {
  const outputs = levelOutputs(model, levels ?? model.graph.outputs.map((o) => o.name));
  const g = model.graph;
  const order = topologicalSort(g);
  const producer = producerMap(g);
  const constant = constantNodes(model, order);
  const masks = levelDependencyMasks(g, outputs, (_, p) => constant.has(p));
  const isTrunk = (n: OnnxNode): boolean => !constant.has(n) && popCount(masks.get(n) ?? 0n) >= 2;

  // Boundary: trunk tensors a part node reads, and level outputs the trunk computes.
  const boundarySet = new Set<string>();
  for (const n of order) {
    const m = masks.get(n);
    if (m === undefined || constant.has(n) || isTrunk(n)) continue;
    for (const r of nodeReads(n)) {
      const p = producer.get(r);
      if (p && isTrunk(p)) boundarySet.add(r);
    }
  }
  for (const o of outputs) {
    const p = producer.get(o);
    if (p && isTrunk(p)) boundarySet.add(o);
  }
  const boundary = order.flatMap((n) => n.outputs.filter((o) => o && boundarySet.has(o)));
  const infos = boundaryInfos(model, boundary);
  const trunk = pruneToOutputs(model, infos);
  const parts = outputs.map((output): LevelPart => {
    const part = pruneToOutputs(model, [output], infos);
    return { output, inputs: part.graph.inputs.map((v) => v.name), model: part };
  });
  return { trunk: { ...trunk, graph: { ...trunk.graph, name: `${g.name}_trunk` } }, boundary, parts };
}

/** Nodes whose every read is an initializer or another such node's output (Constant nodes included). */
function constantNodes(model: OnnxModel, order: readonly OnnxNode[]): Set<OnnxNode> {
  const g = model.graph;
  const fedInputs = new Set(g.inputs.map((v) => v.name));
  const constTensors = new Set(g.initializers.filter((t) => !fedInputs.has(t.name)).map((t) => t.name));
  const out = new Set<OnnxNode>();
  for (const n of order) {
    if (nodeReads(n).every((r) => constTensors.has(r))) {
      out.add(n);
      for (const o of n.outputs) if (o) constTensors.add(o);
    }
  }
  return out;
}

/**
 * For each node some level needs, the bit mask of those levels (bit i: `outputs[i]`). The walk from each
 * output goes back through producers; `stop(tensor, producer)` true ends it at that tensor (its producer
 * and what only it reads are not charged), e.g. for constants.
 */
export function levelDependencyMasks(
  graph: OnnxGraph,
  outputs: readonly string[],
  stop: (tensor: string, producer: OnnxNode) => boolean = () => false,
): Map<OnnxNode, bigint> {
  const producer = producerMap(graph);
  const masks = new Map<OnnxNode, bigint>();
  outputs.forEach((output, level) => {
    const bit = 1n << BigInt(level);
    const stack = [output];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const p = producer.get(name);
      if (!p || stop(name, p)) continue;
      masks.set(p, (masks.get(p) ?? 0n) | bit);
      for (const r of nodeReads(p)) stack.push(r);
    }
  });
  return masks;
}

function popCount(mask: bigint): number {
  let n = 0;
  for (let m = mask; m > 0n; m >>= 1n) n += Number(m & 1n);
  return n;
}

/** Type and shape of each boundary tensor (declared, else inferred with the graph's own input shapes). */
function boundaryInfos(model: OnnxModel, names: readonly string[]): ValueInfo[] {
  if (names.length === 0) return [];
  const info = inferShapes(model);
  return names.map((name) => {
    const t = info.get(name);
    if (!t || t.dataType === DataType.UNDEFINED) {
      throw new GraphError(
        `level split: the element type of boundary tensor '${name}' of graph '${model.graph.name}' is unknown`,
        { hint: 'declare it in the graph value_info (onnx.shape_inference.infer_shapes does)' },
      );
    }
    return { name, dataType: t.dataType, ...(t.shape ? { shape: [...t.shape] } : {}) };
  });
}
