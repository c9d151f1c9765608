/**
 * Sub-graph extraction: keep only what a set of outputs depends on, optionally cutting the graph at
 * given tensors, which become the sub-graph's inputs (as onnx.utils.extract_model does). Pure functions
 * on the plain IR; the input model is never mutated.
 */
import { GraphError } from '../errors';
import { nodeReads, producerMap } from './graph-structure';
import { DataType, type OnnxModel, type OnnxNode, type ValueInfo } from './types';

/**
 * Keeps only what `outputs` (default: the graph outputs) depend on: nodes, initializers and graph inputs
 * nothing reads are removed. Output ValueInfos come from the graph's outputs or value_info when listed
 * there, else they are declared float with unknown shape.
 * @param cutAt tensors where the walk stops: each one the kept nodes read becomes a graph input with this
 *   ValueInfo (its producer and everything only it needed are dropped). Default: no cut.
 */
export function pruneToOutputs(
  model: OnnxModel,
  outputs?: readonly (string | ValueInfo)[],
  cutAt: readonly ValueInfo[] = [],
): OnnxModel {
  const g = model.graph;
  const known = new Map<string, ValueInfo>();
  for (const v of [...g.valueInfo, ...g.inputs, ...g.outputs]) known.set(v.name, v);
  const outInfos: ValueInfo[] = (outputs ?? g.outputs).map((o) =>
    typeof o === 'string' ? (known.get(o) ?? { name: o, dataType: DataType.FLOAT }) : o,
  );
  const cut = new Map(cutAt.map((v) => [v.name, v]));
  const producer = producerMap(g);
  const needed = new Set<string>();
  const keepNodes = new Set<OnnxNode>();
  const stack = outInfos.map((o) => o.name);
  const available = new Set([...g.inputs.map((v) => v.name), ...g.initializers.map((t) => t.name)]);
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (needed.has(name)) continue;
    needed.add(name);
    const p = cut.has(name) ? undefined : producer.get(name);
    if (p) {
      if (!keepNodes.has(p)) {
        keepNodes.add(p);
        for (const r of nodeReads(p)) stack.push(r);
      }
    } else if (!available.has(name) && !cut.has(name)) {
      throw new GraphError(
        `graph '${g.name}': output '${name}' is produced by no node, input or initializer`,
      );
    }
  }
  // A cut tensor that is also an initializer stays a constant (nothing computes it).
  const initNames = new Set(g.initializers.map((t) => t.name));
  const cutInputs = cutAt.filter(
    (v) => needed.has(v.name) && !initNames.has(v.name) && !g.inputs.some((i) => i.name === v.name),
  );
  return {
    ...model,
    graph: {
      ...g,
      nodes: g.nodes.filter((n) => keepNodes.has(n)),
      initializers: g.initializers.filter((t) => needed.has(t.name)),
      inputs: [...g.inputs.filter((v) => needed.has(v.name)), ...cutInputs],
      outputs: outInfos,
      valueInfo: g.valueInfo.filter((v) => needed.has(v.name) && !cut.has(v.name)),
    },
  };
}
