/**
 * Typed array → onnxruntime element type, with no onnxruntime import, so the Node sessions and the wasm
 * (browser) sessions share it without pulling onnxruntime-node into a browser bundle.
 */
import { RlpkdError } from '../errors';
import type { TensorData } from '../onnx/types';

/** onnxruntime's element-type name for a typed array (shared by the Node and wasm sessions). */
export function ortElementType(
  data: TensorData,
): 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'uint64' {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof BigUint64Array) return 'uint64';
  throw new RlpkdError('unsupported typed array for an onnxruntime tensor');
}
