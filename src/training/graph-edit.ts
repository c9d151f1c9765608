/**
 * The graph surgery training artifacts need: parameters moved from initializers to graph inputs (so they
 * live in JS and every session shares them), moved back for inference, and pruning to the outputs that
 * matter (pruneToOutputs, general graph surgery that lives in src/onnx/). Pure functions on the plain
 * IR; the input model is never mutated.
 */
import { GraphError } from '../errors';
import { DataType, type OnnxModel, type OnnxTensor, type ValueInfo } from '../onnx/types';
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

/** Re-exported for the artifact builders; the implementation is general graph surgery in src/onnx/. */
export { pruneToOutputs } from '../onnx/extract-subgraph';
