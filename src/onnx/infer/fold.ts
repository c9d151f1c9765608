/**
 * Helpers shared by the shape rules: dim arithmetic with symbolic dims, broadcasting, and element-wise
 * constant folding over small partially known tensors.
 */
import { DataType, type Dim, type TensorData } from '../types';
import type { Inferred, Scalar } from './types';

/** Tensors bigger than this are never expanded to per-element values (shape arithmetic is tiny). */
export const FOLD_LIMIT = 4096;

const INT_TYPES = new Set<DataType>([
  DataType.INT8,
  DataType.UINT8,
  DataType.INT16,
  DataType.UINT16,
  DataType.INT32,
  DataType.UINT32,
  DataType.INT64,
  DataType.UINT64,
]);

const FLOAT_TYPES = new Set<DataType>([DataType.FLOAT, DataType.DOUBLE]);

/** True for integer element types (bool excluded). */
export function isIntType(dt: DataType): boolean {
  return INT_TYPES.has(dt);
}

/** True for float element types (float16/bfloat16 included). */
export function isFloatType(dt: DataType): boolean {
  return FLOAT_TYPES.has(dt) || dt === DataType.FLOAT16 || dt === DataType.BFLOAT16;
}

/** True when every dim is a number. */
export function isStatic(shape: readonly Dim[] | undefined): shape is number[] {
  return shape !== undefined && shape.every((d) => typeof d === 'number');
}

/** Product of static dims. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Product of dims: symbolic only when one symbolic dim is multiplied by ones. */
export function productDims(dims: readonly Dim[]): Dim {
  let n = 1;
  let sym: string | undefined;
  for (const d of dims) {
    if (d === null) return null;
    if (typeof d === 'string') {
      if (sym !== undefined) return null;
      sym = d;
    } else n *= d;
  }
  if (sym === undefined) return n;
  return n === 1 ? sym : n === 0 ? 0 : null;
}

/** Normalizes a possibly negative axis against a rank; throws via `fail` when out of range. */
export function normalizeAxis(axis: number, rank: number, fail: (m: string) => never, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) return fail(`${what} ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Numpy-style broadcast of two dims; throws via `fail` when incompatible. */
export function broadcastDim(a: Dim, b: Dim, fail: (m: string) => never): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  if (typeof a === 'number' && typeof b === 'number') return fail(`cannot broadcast dims ${a} and ${b}`);
  if (typeof a === 'number') return a; // a > 1: b must be a (or 1)
  if (typeof b === 'number') return b;
  return null;
}

/** Numpy-style broadcast of several shapes; undefined when any rank is unknown. */
export function broadcastShapes(
  shapes: readonly (Dim[] | undefined)[],
  fail: (m: string) => never,
): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const list = shapes as Dim[][];
  const rank = Math.max(0, ...list.map((s) => s.length));
  const out: Dim[] = new Array<Dim>(rank).fill(1);
  for (const s of list) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) out[off + i] = broadcastDim(out[off + i], s[i], fail);
  }
  return out;
}

/** Maps a flat index of `outShape` to the flat index of a tensor of `inShape` broadcast to it. */
export function broadcastIndexer(
  inShape: readonly number[],
  outShape: readonly number[],
): (i: number) => number {
  const off = outShape.length - inShape.length;
  const inStrides = stridesOf(inShape);
  const outStrides = stridesOf(outShape);
  return (flat: number): number => {
    let r = flat;
    let idx = 0;
    for (let d = 0; d < outShape.length; d++) {
      const coord = Math.floor(r / outStrides[d]);
      r -= coord * outStrides[d];
      const k = d - off;
      if (k >= 0 && inShape[k] !== 1) idx += coord * inStrides[k];
    }
    return idx;
  };
}

/** Per-element values of a tensor when small, static and of a numeric type; otherwise undefined. */
export function elemsOf(t: Inferred | undefined): Scalar[] | undefined {
  if (!t) return undefined;
  if (t.elems) return t.elems;
  if (!t.value || !isStatic(t.shape) || sizeOf(t.shape) > FOLD_LIMIT) return undefined;
  if (t.dataType === DataType.FLOAT16 || t.dataType === DataType.BFLOAT16) return undefined;
  const out: Scalar[] = new Array<Scalar>(t.value.length);
  for (let i = 0; i < t.value.length; i++) out[i] = Number(t.value[i]);
  return out;
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** Rounds a JS number to what an element of `dt` can hold. */
export function castNumber(x: number, dt: DataType): number {
  switch (dt) {
    case DataType.FLOAT:
      return Math.fround(x);
    case DataType.DOUBLE:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return x;
    case DataType.BOOL:
      return x !== 0 && !Number.isNaN(x) ? 1 : 0;
    case DataType.INT8:
      return (Math.trunc(x) << 24) >> 24;
    case DataType.UINT8:
      return Math.trunc(x) & 0xff;
    case DataType.INT16:
      return (Math.trunc(x) << 16) >> 16;
    case DataType.UINT16:
      return Math.trunc(x) & 0xffff;
    case DataType.INT32:
      return Math.trunc(x) | 0;
    case DataType.UINT32:
      return Math.trunc(x) >>> 0;
    default:
      return Number.isFinite(x) ? Math.trunc(x) : x;
  }
}

/** Typed array of `dt` holding `values` (int64 saturates, as ONNX's INT64_MAX sentinels need). */
export function typedArrayOf(dt: DataType, values: readonly number[]): TensorData | undefined {
  const n = values.length;
  switch (dt) {
    case DataType.FLOAT:
      return Float32Array.from(values);
    case DataType.DOUBLE:
      return Float64Array.from(values);
    case DataType.INT8:
      return Int8Array.from(values);
    case DataType.UINT8:
    case DataType.BOOL:
      return Uint8Array.from(values);
    case DataType.INT16:
      return Int16Array.from(values);
    case DataType.UINT16:
      return Uint16Array.from(values);
    case DataType.INT32:
      return Int32Array.from(values);
    case DataType.UINT32:
      return Uint32Array.from(values);
    case DataType.INT64: {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = toInt64(values[i]);
      return a;
    }
    case DataType.UINT64: {
      const a = new BigUint64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(Math.max(0, Math.trunc(values[i])));
      return a;
    }
    default:
      return undefined;
  }
}

function toInt64(x: number): bigint {
  if (!Number.isFinite(x)) return x > 0 ? INT64_MAX : INT64_MIN;
  const b = BigInt(Math.trunc(x));
  return b > INT64_MAX ? INT64_MAX : b < INT64_MIN ? INT64_MIN : b;
}

/**
 * An output description. Per-element values are kept only for small static shapes, rounded to the element
 * type; elements that are not numbers stay symbolic/unknown.
 */
export function tensor(dataType: DataType, shape: Dim[] | undefined, elems?: readonly Scalar[]): Inferred {
  const t: Inferred = { dataType, shape };
  if (elems && isStatic(shape) && sizeOf(shape) === elems.length && elems.length <= FOLD_LIMIT) {
    t.elems = elems.map((e) => (typeof e === 'number' ? castNumber(e, dataType) : e));
  }
  return t;
}

/** True when every element is a known number. */
export function allKnown(elems: readonly Scalar[] | undefined): elems is number[] {
  return elems !== undefined && elems.every((e) => typeof e === 'number');
}

/** A Scalar used as a dim: negative or fractional numbers become unknown. */
export function scalarToDim(s: Scalar): Dim {
  if (typeof s === 'number') return Number.isInteger(s) && s >= 0 ? s : null;
  return s;
}

/**
 * Element-wise fold with numpy broadcasting over small static tensors. `f` gets one Scalar per input and
 * returns the output element. Undefined when any input's elements or shape are not known.
 */
export function foldBroadcast(
  inputs: readonly { shape: Dim[] | undefined; elems: Scalar[] | undefined }[],
  outShape: Dim[] | undefined,
  f: (args: Scalar[]) => Scalar,
): Scalar[] | undefined {
  if (!isStatic(outShape) || sizeOf(outShape) > FOLD_LIMIT) return undefined;
  if (inputs.some((t) => !t.elems || !isStatic(t.shape))) return undefined;
  const maps = inputs.map((t) => broadcastIndexer(t.shape as number[], outShape));
  const n = sizeOf(outShape);
  const out = new Array<Scalar>(n);
  const args = new Array<Scalar>(inputs.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < inputs.length; k++) args[k] = inputs[k].elems![maps[k](i)];
    out[i] = f(args);
  }
  return out;
}

/** Lifts a numeric function to Scalars: any unknown or symbolic argument gives unknown. */
export function numeric(f: (...x: number[]) => number): (args: Scalar[]) => Scalar {
  return (args) => {
    for (const a of args) if (typeof a !== 'number') return null;
    return f(...(args as number[]));
  };
}
