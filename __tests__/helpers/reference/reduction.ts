/** Reference (float64) implementations of the Reduce* family and ArgMax/ArgMin. */
import { DataType, getInt, getInts, type OnnxNode } from '../../../src/onnx';
import {
  intsOf,
  makeTensor,
  need,
  normAxis,
  ravel,
  sizeOf,
  stridesOf,
  unravel,
  type RefOp,
  type RefOpContext,
  type RefOpTable,
  type RefTensor,
} from './tensor';

/** Axes of a Reduce node (attribute or input), or undefined for "no axes given". */
function reduceAxes(inputs: readonly (RefTensor | undefined)[], node: OnnxNode): number[] | undefined {
  const fromAttr = getInts(node, 'axes');
  if (fromAttr) return fromAttr;
  const t = inputs[1];
  return t && t.data.length > 0 ? intsOf(t) : undefined;
}

/**
 * Generic reduction: `init`, `step(acc, x)`, `finish(acc, count)`. Empty axes reduce everything unless
 * noop_with_empty_axes=1, which reduces over no axis (an elementwise map, as onnxruntime does).
 */
function reduce(
  init: number,
  step: (acc: number, x: number) => number,
  finish: (acc: number, count: number) => number = (a) => a,
): RefOp {
  return (inputs, node, ctx) => {
    const x = need(inputs, 0, ctx);
    const rank = x.dims.length;
    const keep = getInt(node, 'keepdims', 1) === 1;
    const given = reduceAxes(inputs, node);
    if (!given && getInt(node, 'noop_with_empty_axes', 0) === 1) {
      // onnxruntime reduces over the empty axis set: each element alone (ReduceL2 gives |x|, ReduceSum x).
      const y = makeTensor(x.dataType, x.dims);
      for (let i = 0; i < x.data.length; i++) y.data[i] = finish(step(init, x.data[i]), 1);
      return [y];
    }
    const axes = new Set((given ?? x.dims.map((_, i) => i)).map((a) => normAxis(a, rank, ctx.label)));
    const keptDims = x.dims.map((d, i) => (axes.has(i) ? 1 : d));
    const outDims = keep ? keptDims : x.dims.filter((_, i) => !axes.has(i));
    const acc = new Float64Array(sizeOf(keptDims)).fill(init);
    const ks = stridesOf(keptDims);
    let count = 1;
    for (const a of axes) count *= x.dims[a];
    for (let f = 0; f < x.data.length; f++) {
      const idx = unravel(f, x.dims);
      for (const a of axes) idx[a] = 0;
      const o = ravel(idx, ks);
      acc[o] = step(acc[o], x.data[f]);
    }
    const y = makeTensor(x.dataType, outDims);
    for (let i = 0; i < acc.length; i++) y.data[i] = finish(acc[i], count);
    return [y];
  };
}

function argReduce(better: (a: number, b: number) => boolean): RefOp {
  return (inputs, node: OnnxNode, ctx: RefOpContext) => {
    const x = need(inputs, 0, ctx);
    const axis = normAxis(getInt(node, 'axis', 0), x.dims.length, ctx.label);
    const keep = getInt(node, 'keepdims', 1) === 1;
    const last = getInt(node, 'select_last_index', 0) === 1;
    const keptDims = x.dims.map((d, i) => (i === axis ? 1 : d));
    const best = new Float64Array(sizeOf(keptDims)).fill(NaN);
    const arg = new Float64Array(best.length);
    const ks = stridesOf(keptDims);
    for (let f = 0; f < x.data.length; f++) {
      const idx = unravel(f, x.dims);
      const k = idx[axis];
      idx[axis] = 0;
      const o = ravel(idx, ks);
      const v = x.data[f];
      if (Number.isNaN(best[o]) || better(v, best[o]) || (last && v === best[o])) {
        best[o] = v;
        arg[o] = k;
      }
    }
    const outDims = keep ? keptDims : x.dims.filter((_, i) => i !== axis);
    return [makeTensor(DataType.INT64, outDims, arg)];
  };
}

export const ops: RefOpTable = {
  ReduceSum: reduce(0, (a, x) => a + x),
  ReduceMean: reduce(
    0,
    (a, x) => a + x,
    (a, n) => a / n,
  ),
  ReduceMax: reduce(-Infinity, (a, x) => Math.max(a, x)),
  ReduceMin: reduce(Infinity, (a, x) => Math.min(a, x)),
  ReduceProd: reduce(1, (a, x) => a * x),
  ReduceL1: reduce(0, (a, x) => a + Math.abs(x)),
  ReduceL2: reduce(
    0,
    (a, x) => a + x * x,
    (a) => Math.sqrt(a),
  ),
  ReduceSumSquare: reduce(0, (a, x) => a + x * x),
  ReduceLogSum: reduce(
    0,
    (a, x) => a + x,
    (a) => Math.log(a),
  ),
  ReduceLogSumExp: reduce(
    0,
    (a, x) => a + Math.exp(x),
    (a) => Math.log(a),
  ),
  ArgMax: argReduce((a, b) => a > b),
  ArgMin: argReduce((a, b) => a < b),
};
