/**
 * The graph surgery training artifacts need: parameters moved from initializers to graph inputs (so they
 * live in JS and every session shares them), moved back for inference, and pruning to the outputs that
 * matter. Pure functions on the plain IR; the input model is never mutated.
 */
import { GraphError } from '../errors';
import { nodeReads, producerMap } from '../onnx/graph-structure';
import { DataType, type OnnxModel, type OnnxNode, type OnnxTensor, type ValueInfo } from '../onnx/types';
import type { HostTensor } from '../runtime/tensors';

/** Turns the named initializers into graph inputs of the same name, type and shape. */
export function moveInitializersToInputs(model: OnnxModel, names: readonly string[]): OnnxModel {
  const g = model.graph;
  const byName = new Map(g.initializers.map((t) => [t.name, t]));
  const inputs = new Set(g.inputs.map((v) => v.name));
  const moved = new Set<string>();
  const newInputs: ValueInfo[] = [];
  for (const name of names) {
    const t = byName.get(name);
    if (!t) throw new GraphError(`'${name}' is not an initializer of graph '${g.name}'`);
    if (moved.has(name)) continue;
    moved.add(name);
    if (!inputs.has(name)) newInputs.push({ name, dataType: t.dataType, shape: [...t.dims] });
  }
  return {
    ...model,
    graph: {
      ...g,
      inputs: [...g.inputs, ...newInputs],
      initializers: g.initializers.filter((t) => !moved.has(t.name)),
    },
  };
}

/**
 * Makes `params` constants of the graph: graph inputs of those names become initializers and existing
 * initializers get the new values. Shapes must match the graph's.
 */
export function embedParameters(model: OnnxModel, params: Record<string, HostTensor>): OnnxModel {
  const g = model.graph;
  const inputByName = new Map(g.inputs.map((v) => [v.name, v]));
  const initByName = new Map(g.initializers.map((t) => [t.name, t]));
  const replaced = new Map<string, OnnxTensor>();
  for (const [name, value] of Object.entries(params)) {
    const declared = initByName.get(name)?.dims ?? inputByName.get(name)?.shape;
    if (!initByName.has(name) && !inputByName.has(name)) {
      throw new GraphError(`parameter '${name}' is neither an input nor an initializer of graph '${g.name}'`);
    }
    if (
      declared &&
      (declared.length !== value.dims.length ||
        declared.some((d, i) => typeof d === 'number' && d !== value.dims[i]))
    ) {
      throw new GraphError(
        `parameter '${name}': value is [${value.dims.join(', ')}] but graph '${g.name}' declares [${declared.join(', ')}]`,
      );
    }
    if (!(value.data instanceof Float32Array)) throw new GraphError(`parameter '${name}' must be float32`);
    replaced.set(name, { name, dataType: DataType.FLOAT, dims: [...value.dims], data: value.data });
  }
  const initializers = g.initializers.map((t) => replaced.get(t.name) ?? t);
  for (const [name, t] of replaced) if (!initByName.has(name)) initializers.push(t);
  return {
    ...model,
    graph: {
      ...g,
      inputs: g.inputs.filter((v) => !replaced.has(v.name) || initByName.has(v.name)),
      initializers,
    },
  };
}

/**
 * Keeps only what `outputs` (default: the graph outputs) depend on: nodes, initializers and graph inputs
 * nothing reads are removed. Output ValueInfos come from the graph's outputs or value_info when listed
 * there, else they are declared float with unknown shape.
 */
export function pruneToOutputs(model: OnnxModel, outputs?: readonly (string | ValueInfo)[]): OnnxModel {
  const g = model.graph;
  const known = new Map<string, ValueInfo>();
  for (const v of [...g.valueInfo, ...g.inputs, ...g.outputs]) known.set(v.name, v);
  const outInfos: ValueInfo[] = (outputs ?? g.outputs).map((o) =>
    typeof o === 'string' ? (known.get(o) ?? { name: o, dataType: DataType.FLOAT }) : o,
  );
  const producer = producerMap(g);
  const needed = new Set<string>();
  const keepNodes = new Set<OnnxNode>();
  const stack = outInfos.map((o) => o.name);
  const available = new Set([...g.inputs.map((v) => v.name), ...g.initializers.map((t) => t.name)]);
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (needed.has(name)) continue;
    needed.add(name);
    const p = producer.get(name);
    if (p) {
      if (!keepNodes.has(p)) {
        keepNodes.add(p);
        for (const r of nodeReads(p)) stack.push(r);
      }
    } else if (!available.has(name)) {
      throw new GraphError(
        `graph '${g.name}': output '${name}' is produced by no node, input or initializer`,
      );
    }
  }
  return {
    ...model,
    graph: {
      ...g,
      nodes: g.nodes.filter((n) => keepNodes.has(n)),
      initializers: g.initializers.filter((t) => needed.has(t.name)),
      inputs: g.inputs.filter((v) => needed.has(v.name)),
      outputs: outInfos,
      valueInfo: g.valueInfo.filter((v) => needed.has(v.name)),
    },
  };
}
