/**
 * Shape rules for ops that create values: Shape (the root of every computed-size chain), Size, Constant,
 * ConstantOfShape, Range, EyeLike.
 */
import { getInt, getTensor } from '../attributes';
import { DataType, type Dim } from '../types';
import { FOLD_LIMIT, isStatic, productDims, scalarToDim, sizeOf, tensor } from './fold';
import type { Inferred, ShapeRule } from './types';

const shape: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(DataType.INT64, [null])];
  const rank = x.length;
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = ctx.opset >= 15 ? clamp(getInt(ctx.node, 'start', 0)) : 0;
  const end = ctx.opset >= 15 ? clamp(getInt(ctx.node, 'end', rank)) : rank;
  const dims = x.slice(start, Math.max(start, end));
  return [tensor(DataType.INT64, [dims.length], dims)];
};

const size: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const n = x ? productDims(x) : null;
  return [tensor(DataType.INT64, [], [n])];
};

const constant: ShapeRule = (ctx) => {
  const { node } = ctx;
  const t = getTensor(node, 'value');
  if (t) {
    const out: Inferred = { dataType: t.dataType, shape: [...t.dims] };
    if (t.dataType !== DataType.STRING) out.value = t.data;
    return [out];
  }
  const a = node.attributes;
  if (a.value_float?.type === 'float' || a.value_float?.type === 'int') {
    return [tensor(DataType.FLOAT, [], [a.value_float.value])];
  }
  if (a.value_floats?.type === 'floats' || a.value_floats?.type === 'ints') {
    return [tensor(DataType.FLOAT, [a.value_floats.value.length], a.value_floats.value)];
  }
  if (a.value_int?.type === 'int') return [tensor(DataType.INT64, [], [a.value_int.value])];
  if (a.value_ints?.type === 'ints')
    return [tensor(DataType.INT64, [a.value_ints.value.length], a.value_ints.value)];
  if (a.value_string) return [tensor(DataType.STRING, [])];
  if (a.value_strings?.type === 'strings') return [tensor(DataType.STRING, [a.value_strings.value.length])];
  return [undefined];
};

const constantOfShape: ShapeRule = (ctx) => {
  const fill = getTensor(ctx.node, 'value');
  const dt = fill?.dataType ?? DataType.FLOAT;
  const v = fill && fill.data.length > 0 ? Number(fill.data[0]) : 0;
  const target = ctx.elems(0);
  let dims: Dim[] | undefined;
  if (target) dims = target.map(scalarToDim);
  else {
    const ts = ctx.shape(0);
    if (ts && typeof ts[0] === 'number') dims = new Array<Dim>(ts[0]).fill(null);
  }
  const elems =
    isStatic(dims) && sizeOf(dims) <= FOLD_LIMIT ? new Array<number>(sizeOf(dims)).fill(v) : undefined;
  return [tensor(dt, dims, elems)];
};

const range: ShapeRule = (ctx) => {
  const dt = ctx.dataType(0);
  const [start, limit, delta] = [0, 1, 2].map((i) => ctx.ints(i)?.[0]);
  if (start === undefined || limit === undefined || delta === undefined) return [tensor(dt, [null])];
  if (delta === 0) return ctx.fail('delta must not be 0');
  const n = Math.max(Math.ceil((limit - start) / delta), 0);
  const elems = n <= FOLD_LIMIT ? Array.from({ length: n }, (_, i) => start + i * delta) : undefined;
  return [tensor(dt, [n], elems)];
};

const eyeLike: ShapeRule = (ctx) => {
  const to = getInt(ctx.node, 'dtype');
  return [tensor(to === undefined ? ctx.dataType(0) : (to as DataType), ctx.shape(0))];
};

/** Shape rules of this family, by op type. */
export const rules: Record<string, ShapeRule> = {
  Shape: shape,
  Size: size,
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Range: range,
  EyeLike: eyeLike,
};
