/**
 * Shape rules for reductions (axes as an attribute or, from opset 13 for ReduceSum and 18 for the others, as
 * an input) and ArgMax/ArgMin. Small known inputs are folded.
 */
import { getInt, getInts } from '../attributes';
import { DataType, type Dim } from '../types';
import { isStatic, normalizeAxis, sizeOf, stridesOf, tensor } from './fold';
import type { InferContext, Scalar, ShapeRule } from './types';

type Reducer = (values: number[]) => number;

const REDUCERS: Record<string, Reducer | undefined> = {
  ReduceSum: (v) => v.reduce((a, b) => a + b, 0),
  ReduceProd: (v) => v.reduce((a, b) => a * b, 1),
  ReduceMax: (v) => Math.max(...v),
  ReduceMin: (v) => Math.min(...v),
  ReduceMean: (v) => v.reduce((a, b) => a + b, 0) / v.length,
};

/** The reduced axes, or undefined when they come from an input that is not known. 'all' reduces every axis. */
function reducedAxes(ctx: InferContext, rank: number, axesAsInput: boolean): number[] | 'noop' | undefined {
  let axes: number[] | undefined;
  if (axesAsInput) {
    if (ctx.has(1)) {
      axes = ctx.ints(1);
      if (!axes) return undefined;
    }
  } else axes = getInts(ctx.node, 'axes');
  if (!axes || axes.length === 0) {
    if (axesAsInput && getInt(ctx.node, 'noop_with_empty_axes', 0) === 1) return 'noop';
    return Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => normalizeAxis(a, rank, ctx.fail, 'reduction axis'));
}

function foldReduce(
  shape: number[],
  elems: Scalar[],
  axes: number[],
  f: Reducer,
  outSize: number,
): Scalar[] | undefined {
  if (!elems.every((e) => typeof e === 'number')) return undefined;
  const groups: number[][] = Array.from({ length: outSize }, () => []);
  const strides = stridesOf(shape);
  const keptShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const keptStrides = stridesOf(keptShape);
  for (let flat = 0; flat < elems.length; flat++) {
    let out = 0;
    let r = flat;
    for (let d = 0; d < shape.length; d++) {
      const c = Math.floor(r / strides[d]);
      r -= c * strides[d];
      if (!axes.includes(d)) out += c * keptStrides[d];
    }
    groups[out].push(elems[flat] as number);
  }
  return groups.map((g) => (g.length === 0 ? null : f(g)));
}

function reduceRule(opType: string, inputFromOpset: number): ShapeRule {
  return (ctx) => {
    const x = ctx.shape(0);
    const dt = ctx.dataType(0);
    const keep = getInt(ctx.node, 'keepdims', 1) === 1;
    if (!x) return [tensor(dt, undefined)];
    const axes = reducedAxes(ctx, x.length, ctx.opset >= inputFromOpset);
    if (axes === 'noop') return [tensor(dt, x, ctx.elems(0))];
    if (!axes) return [tensor(dt, keep ? x.map(() => null) : undefined)];
    const shape: Dim[] = keep
      ? x.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.filter((_, i) => !axes.includes(i));
    const f = REDUCERS[opType];
    const e = ctx.elems(0);
    const elems =
      f && e && isStatic(x) && isStatic(shape) ? foldReduce(x, e, axes, f, sizeOf(shape)) : undefined;
    return [tensor(dt, shape, elems)];
  };
}

const argReduce: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  if (!x) return [tensor(DataType.INT64, undefined)];
  const axis = normalizeAxis(getInt(ctx.node, 'axis', 0), x.length, ctx.fail);
  const keep = getInt(ctx.node, 'keepdims', 1) === 1;
  return [
    tensor(DataType.INT64, keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis)),
  ];
};

const OPSET_18 = [
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
];

/** Shape rules of this family, by op type. */
export const rules: Record<string, ShapeRule> = {
  ReduceSum: reduceRule('ReduceSum', 13),
  ...Object.fromEntries(OPSET_18.map((op) => [op, reduceRule(op, 18)])),
  ArgMax: argReduce,
  ArgMin: argReduce,
};
