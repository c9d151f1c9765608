/**
 * A model's structure without its large weights: what level matching, shape inference and the cost model
 * read (every tensor's dims, small constants such as Reshape shapes and Resize scales) at a fraction of
 * the memory. For graphs whose sessions load from a file anyway: a run keeps its ResNet-101-FPN teacher
 * this way instead of holding ~180 MB of weights it never reads again.
 */
import { GraphError } from '../errors';
import { shapeSize } from './tensor-data';
import { DataType, type OnnxModel, type OnnxTensor } from './types';

const FLOATING = new Set<DataType>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

/** Floating-point initializers of at least this many elements lose their data by default. */
export const DEFAULT_DROP_ELEMENTS = 1024;

/**
 * A copy of `model` whose floating-point initializers with at least `minElements` elements (and, when
 * `only` is given, named in it) keep their name, type and dims but no data; integer tensors and small ones
 * are kept whole. The result is marked `weightsDropped`: serializing it (saving, hashing, opening a session
 * on it) is an error until withWeightsRestored finds every initializer whole again.
 */
export function withoutWeightData(
  model: OnnxModel,
  minElements = DEFAULT_DROP_ELEMENTS,
  only?: ReadonlySet<string>,
): OnnxModel {
  const initializers = model.graph.initializers.map((t): OnnxTensor => {
    const drop = FLOATING.has(t.dataType) && t.data.length >= minElements && (!only || only.has(t.name));
    return drop ? { ...t, data: new Float32Array(0) } : t;
  });
  return { ...model, graph: { ...model.graph, initializers }, weightsDropped: true };
}

/**
 * `model` (derived from a withoutWeightData model, e.g. with new values embedded for the dropped
 * initializers) unmarked, so it can be saved and run again; throws when an initializer still lacks data.
 */
export function withWeightsRestored(model: OnnxModel): OnnxModel {
  if (!model.weightsDropped) return model;
  const empty = model.graph.initializers.filter(
    (t) => t.dataType !== DataType.STRING && t.data.length !== shapeSize(t.dims),
  );
  if (empty.length) {
    throw new GraphError(
      `model '${model.graph.name}': initializers ${empty
        .slice(0, 3)
        .map((t) => `'${t.name}'`)
        .join(', ')}${empty.length > 3 ? ` and ${empty.length - 3} more` : ''} still have no data`,
      { hint: 'give values for every initializer whose weights were dropped' },
    );
  }
  const { weightsDropped: _dropped, ...whole } = model;
  return whole;
}
