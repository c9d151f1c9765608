/** Conversions between ONNX element types, typed arrays and raw little-endian bytes. */
import { GraphError } from '../errors';
import { DataType, type OnnxTensor, type TensorData } from './types';

interface ElementKind {
  name: string;
  bytes: number;
  create: (n: number) => TensorData;
  fromBuffer: (buf: ArrayBuffer, byteOffset: number, length: number) => TensorData;
}

const KINDS: Partial<Record<DataType, ElementKind>> = {
  [DataType.FLOAT]: kind('float32', 4, Float32Array),
  [DataType.DOUBLE]: kind('float64', 8, Float64Array),
  [DataType.INT8]: kind('int8', 1, Int8Array),
  [DataType.UINT8]: kind('uint8', 1, Uint8Array),
  [DataType.BOOL]: kind('bool', 1, Uint8Array),
  [DataType.INT16]: kind('int16', 2, Int16Array),
  [DataType.UINT16]: kind('uint16', 2, Uint16Array),
  [DataType.FLOAT16]: kind('float16', 2, Uint16Array),
  [DataType.BFLOAT16]: kind('bfloat16', 2, Uint16Array),
  [DataType.INT32]: kind('int32', 4, Int32Array),
  [DataType.UINT32]: kind('uint32', 4, Uint32Array),
  [DataType.INT64]: kind('int64', 8, BigInt64Array),
  [DataType.UINT64]: kind('uint64', 8, BigUint64Array),
};

type TypedCtor = {
  new (n: number): TensorData;
  new (buf: ArrayBuffer, byteOffset: number, length: number): TensorData;
};

function kind(name: string, bytes: number, ctor: TypedCtor): ElementKind {
  return {
    name,
    bytes,
    create: (n) => new ctor(n),
    fromBuffer: (buf, off, len) => new ctor(buf, off, len),
  };
}

function elementKind(dataType: DataType, what: string): ElementKind {
  const k = KINDS[dataType];
  if (!k) throw new GraphError(`${what}: unsupported tensor element type ${DataType[dataType] ?? dataType}`);
  return k;
}

/** Bytes per element of an ONNX element type. */
export function bytesPerElement(dataType: DataType): number {
  return elementKind(dataType, 'bytesPerElement').bytes;
}

/** Short lowercase name of an element type (float32, int64, ...), as onnxruntime spells it. */
export function elementTypeName(dataType: DataType): string {
  return KINDS[dataType]?.name ?? (dataType === DataType.STRING ? 'string' : `type${dataType}`);
}

/** Number of elements of a shape ([] is a scalar: 1 element). */
export function shapeSize(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A zero-filled typed array for `n` elements of `dataType`. */
export function allocateTensorData(dataType: DataType, n: number): TensorData {
  return elementKind(dataType, 'allocateTensorData').create(n);
}

/**
 * Typed array over little-endian raw bytes. Copies, because protobuf's raw_data views are not aligned to
 * the element size (and must not alias the file buffer once the model is edited).
 */
export function tensorDataFromBytes(dataType: DataType, bytes: Uint8Array, what: string): TensorData {
  const k = elementKind(dataType, what);
  if (bytes.byteLength % k.bytes !== 0) {
    throw new GraphError(
      `${what}: ${bytes.byteLength} raw bytes is not a whole number of ${k.name} elements`,
    );
  }
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return k.fromBuffer(copy, 0, bytes.byteLength / k.bytes);
}

/** Little-endian bytes of a typed array (a view, no copy). */
export function tensorDataToBytes(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Checks that a tensor's data length equals the product of its dims. */
export function checkTensorSize(tensor: OnnxTensor): void {
  if (tensor.dataType === DataType.STRING) return;
  const expected = shapeSize(tensor.dims);
  if (tensor.data.length !== expected) {
    throw new GraphError(
      `tensor '${tensor.name}': dims [${tensor.dims.join(', ')}] need ${expected} elements, data has ${tensor.data.length}`,
    );
  }
}

/** Builds a float32 tensor. */
export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): OnnxTensor {
  const t: OnnxTensor = { name, dataType: DataType.FLOAT, dims: [...dims], data: Float32Array.from(values) };
  checkTensorSize(t);
  return t;
}

/** Builds an int64 tensor from numbers. */
export function int64Tensor(name: string, dims: number[], values: ArrayLike<number>): OnnxTensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(Math.trunc(values[i]));
  const t: OnnxTensor = { name, dataType: DataType.INT64, dims: [...dims], data };
  checkTensorSize(t);
  return t;
}

/** Element values as plain numbers (int64 converted with Number()). */
export function tensorValuesAsNumbers(tensor: OnnxTensor): number[] {
  const out: number[] = new Array(tensor.data.length);
  for (let i = 0; i < tensor.data.length; i++) out[i] = Number(tensor.data[i]);
  return out;
}
