/**
 * Graph surgery that lets producers write graph outputs directly: an Identity that only renames a
 * computed tensor to a graph output, and a Reshape producing one of `reshapedOutputs` from a tensor of
 * static shape, are removed and the producer writes the output under its name. onnxruntime keeps such
 * nodes when the tensor has other readers, copying it, and a Reshape into a caller's buffer copies too
 * (~30 ms per ResNet-50 gradient step).
 */
import { producerMap } from './graph-structure';
import { inferShapes } from './shape-inference';
import type { OnnxGraph, OnnxModel, OnnxNode } from './types';

/** The rewritten model and, for each bypassed Reshape's output, its new shape (its source's). */
export interface BypassedOutputs {
  model: OnnxModel;
  reshaped: Record<string, number[]>;
}

/**
 * `model` with its output copies bypassed (see the module doc); `model` itself is left unchanged. A
 * bypassed Reshape's output keeps its source's shape, listed in `reshaped`.
 */
export function bypassOutputCopies(
  model: OnnxModel,
  reshapedOutputs: ReadonlySet<string> = new Set(),
): BypassedOutputs {
  const source = model.graph;
  // A copy of the graph's lists and nodes (tensors are shared, never written), so `model` stays as it is.
  const g: OnnxGraph = {
    ...source,
    nodes: source.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs] })),
    outputs: source.outputs.map((o) => ({ ...o })),
    valueInfo: [...source.valueInfo],
    initializers: [...source.initializers],
  };
  // Sources keep their names until bypassed, and a bypassed one becomes an output (never a source again).
  const shapes = reshapedOutputs.size > 0 ? inferShapes(model) : undefined;
  const reshaped: Record<string, number[]> = {};
  // Repeated because one bypass can expose another (an Identity renaming a Reshape's output).
  for (let changed = true; changed;) {
    const outputs = new Set(g.outputs.map((o) => o.name));
    const outer = new Set([...outputs, ...g.inputs.map((v) => v.name), ...g.initializers.map((t) => t.name)]);
    const producer = producerMap(g);
    const rename = new Map<string, string>();
    const drop = new Set<OnnxNode>();
    for (const n of g.nodes) {
      const out = n.outputs[0];
      if (n.domain || !outputs.has(out)) continue;
      const src = n.inputs[0];
      if (!producer.has(src) || outer.has(src) || rename.has(src)) continue;
      if (n.opType === 'Reshape' && reshapedOutputs.has(out)) {
        const dims = shapes!.get(src)?.shape;
        if (!dims || !dims.every((d): d is number => typeof d === 'number')) continue;
        reshaped[out] = dims;
      } else if (n.opType !== 'Identity') continue;
      rename.set(src, out);
      drop.add(n);
    }
    changed = rename.size > 0;
    g.nodes = g.nodes.filter((n) => !drop.has(n));
    for (const n of g.nodes) {
      n.inputs = n.inputs.map((i) => rename.get(i) ?? i);
      n.outputs = n.outputs.map((o) => rename.get(o) ?? o);
    }
    g.valueInfo = g.valueInfo.filter((v) => !rename.has(v.name) && !reshaped[v.name]);
  }
  for (const o of g.outputs) if (reshaped[o.name]) o.shape = [...reshaped[o.name]];
  // The dropped Reshapes' shape constants are read by nothing now (onnxruntime would warn about each).
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  const io = new Set([...g.inputs, ...g.outputs].map((v) => v.name));
  g.initializers = g.initializers.filter((t) => read.has(t.name) || io.has(t.name));
  return { model: { ...model, graph: g }, reshaped };
}
