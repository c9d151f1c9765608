/**
 * Tensors of the float64 reference interpreter: every element type is held as float64 (int64 values are
 * exact up to 2^53, bools are 0/1), so ops are written once. Only the reference uses these.
 */
import { DataType, type OnnxNode, type OnnxTensor } from '../../../src/onnx';
import type { HostTensor } from '../../../src/runtime';

/** A dense tensor of the reference interpreter. */
export interface RefTensor {
  dataType: DataType;
  dims: number[];
  data: Float64Array;
}

/** What every reference op receives besides its inputs. */
export interface RefOpContext {
  /** Default-domain opset of the model. */
  readonly opset: number;
  /** `Conv 'conv1'`, for error messages. */
  readonly label: string;
}

/** A reference op: inputs (undefined where omitted) → outputs (undefined where not produced). */
export type RefOp = (
  inputs: readonly (RefTensor | undefined)[],
  node: OnnxNode,
  ctx: RefOpContext,
) => (RefTensor | undefined)[];

/** Op type → reference implementation, one table per op family. */
export type RefOpTable = Readonly<Record<string, RefOp>>;

const FLOATS = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

/** True for float element types. */
export function isFloat(dt: DataType): boolean {
  return FLOATS.has(dt);
}

/** Number of elements. */
export function sizeOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Row-major strides. */
export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

/** A new tensor (zero-filled unless data is given). */
export function makeTensor(dataType: DataType, dims: readonly number[], data?: ArrayLike<number>): RefTensor {
  const n = sizeOf(dims);
  const arr = data ? Float64Array.from(data) : new Float64Array(n);
  if (arr.length !== n)
    throw new Error(`makeTensor: dims [${dims.join(', ')}] need ${n} values, got ${arr.length}`);
  return { dataType, dims: [...dims], data: arr };
}

/** A float tensor. */
export function floatRef(dims: readonly number[], data?: ArrayLike<number>): RefTensor {
  return makeTensor(DataType.FLOAT, dims, data);
}

/** An int64 tensor. */
export function intRef(dims: readonly number[], data: ArrayLike<number>): RefTensor {
  return makeTensor(DataType.INT64, dims, data);
}

/** Converts an ONNX tensor (initializer, Constant value) to a reference tensor. */
export function fromOnnxTensor(t: OnnxTensor): RefTensor {
  const data = new Float64Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) data[i] = Number(t.data[i]);
  return { dataType: t.dataType, dims: [...t.dims], data };
}

/** Converts a host tensor (a feed) to a reference tensor, typed by its array. */
export function fromHost(t: HostTensor): RefTensor {
  const d = t.data;
  let dataType = DataType.FLOAT;
  if (d instanceof Float64Array) dataType = DataType.DOUBLE;
  else if (d instanceof BigInt64Array) dataType = DataType.INT64;
  else if (d instanceof Int32Array) dataType = DataType.INT32;
  else if (d instanceof Uint8Array) dataType = DataType.BOOL;
  else if (!(d instanceof Float32Array)) dataType = DataType.INT64;
  const data = new Float64Array(d.length);
  for (let i = 0; i < d.length; i++) data[i] = Number(d[i]);
  return { dataType, dims: [...t.dims], data };
}

/** Normalizes a possibly negative axis; throws when out of range. */
export function normAxis(axis: number, rank: number, label: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${label}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** The int values of a small tensor (axes, shapes, indices). */
export function intsOf(t: RefTensor): number[] {
  return Array.from(t.data);
}

/** Numpy-style broadcast of several shapes; throws on incompatible dims. */
export function broadcastShapes(shapes: readonly (readonly number[])[], label: string): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i];
      const o = out[off + i];
      if (d === o || d === 1) continue;
      if (o === 1) out[off + i] = d;
      else
        throw new Error(
          `${label}: cannot broadcast shapes ${shapes.map((x) => `[${x.join(',')}]`).join(' ')}`,
        );
    }
  }
  return out;
}

/** For each output element (row-major), the flat index into an input of shape `dims` broadcast to `out`. */
export function broadcastIndex(dims: readonly number[], out: readonly number[]): Int32Array {
  const n = sizeOf(out);
  const idx = new Int32Array(n);
  const rank = out.length;
  const off = rank - dims.length;
  const inStrides = stridesOf(dims);
  const eff = out.map((_, i) => (i < off || dims[i - off] === 1 ? 0 : inStrides[i - off]));
  const counter = new Array<number>(rank).fill(0);
  let flat = 0;
  for (let k = 0; k < n; k++) {
    idx[k] = flat;
    for (let a = rank - 1; a >= 0; a--) {
      counter[a]++;
      flat += eff[a];
      if (counter[a] < out[a]) break;
      flat -= eff[a] * counter[a];
      counter[a] = 0;
    }
  }
  return idx;
}

/** Elementwise map over broadcast inputs. */
export function mapBroadcast(
  inputs: readonly RefTensor[],
  dataType: DataType,
  fn: (values: number[]) => number,
  label: string,
): RefTensor {
  const out = broadcastShapes(
    inputs.map((t) => t.dims),
    label,
  );
  const idx = inputs.map((t) => broadcastIndex(t.dims, out));
  const res = makeTensor(dataType, out);
  const vals = new Array<number>(inputs.length);
  for (let k = 0; k < res.data.length; k++) {
    for (let j = 0; j < inputs.length; j++) vals[j] = inputs[j].data[idx[j][k]];
    res.data[k] = fn(vals);
  }
  return res;
}

/** Multi-index of a flat row-major position. */
export function unravel(flat: number, dims: readonly number[]): number[] {
  const idx = new Array<number>(dims.length);
  for (let a = dims.length - 1; a >= 0; a--) {
    idx[a] = flat % dims[a];
    flat = Math.floor(flat / dims[a]);
  }
  return idx;
}

/** Flat row-major position of a multi-index. */
export function ravel(idx: readonly number[], strides: readonly number[]): number {
  let f = 0;
  for (let a = 0; a < idx.length; a++) f += idx[a] * strides[a];
  return f;
}

/** Input `i`, or an error naming the op when it is missing. */
export function need(inputs: readonly (RefTensor | undefined)[], i: number, ctx: RefOpContext): RefTensor {
  const t = inputs[i];
  if (!t) throw new Error(`${ctx.label}: input ${i} is required`);
  return t;
}
