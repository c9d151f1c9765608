/**
 * Static shape and type inference over the ops this toolkit handles (placeholder signature; implemented by
 * the pyramid-analysis work).
 */
import type { DataType, Dim, OnnxModel, TensorData } from './types';

export interface TensorInfo {
  dataType: DataType;
  /** Undefined when even the rank is unknown. Symbolic dims (e.g. 'batch') are strings; unknown are null. */
  shape: Dim[] | undefined;
  /** The tensor's value when it is a compile-time constant (initializers, Constant, folded shape arithmetic). */
  value?: TensorData;
}

/** Infers type, shape and constant value of every tensor in the graph. */
export function inferShapes(
  _model: OnnxModel,
  _inputShapes?: Record<string, Dim[]>,
): Map<string, TensorInfo> {
  throw new Error('inferShapes: not implemented yet');
}
