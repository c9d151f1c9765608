/**
 * The one tensor type at the toolkit's boundary: a typed array plus dims. Conversions to and from
 * onnxruntime Tensors live here so no other module needs to know onnxruntime's Tensor class.
 */
import type * as ort from 'onnxruntime-node';
import { RlpkdError } from '../errors';
import type { TensorData } from '../onnx/types';
import { ortElementType } from './element-types';
import { ortModule } from './ort-module';

/** A dense tensor: data + dims. */
export interface HostTensor {
  data: TensorData;
  dims: readonly number[];
}

/** Wraps a host tensor as an onnxruntime Tensor (no copy for CPU inputs). */
export function toOrtTensor(t: HostTensor): ort.Tensor {
  // The union of typed arrays does not narrow per element type; the pairing is checked by ortElementType.
  return new (ortModule().Tensor)(ortElementType(t.data), t.data as Float32Array, [...t.dims]);
}

/** Wraps a bool tensor (Uint8Array of 0/1) as an onnxruntime bool Tensor. */
export function toOrtBoolTensor(t: HostTensor): ort.Tensor {
  return new (ortModule().Tensor)('bool', t.data as Uint8Array, [...t.dims]);
}

/** Converts an onnxruntime output Tensor into a host tensor. */
export function fromOrtTensor(t: ort.Tensor): HostTensor {
  return { data: t.data as TensorData, dims: [...t.dims] };
}

/** A float32 host tensor. */
export function hostFloat(dims: readonly number[], data?: ArrayLike<number>): HostTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const arr = data ? Float32Array.from(data) : new Float32Array(n);
  if (arr.length !== n)
    throw new RlpkdError(`hostFloat: dims [${dims.join(', ')}] need ${n} values, got ${arr.length}`);
  return { data: arr, dims: [...dims] };
}
