/** Reference (float64) implementations of shape, indexing and constant-producing ops. */
import { DataType, getFloat, getInt, getInts, getString, getTensor, type OnnxNode } from '../../../src/onnx';
import {
  broadcastIndex,
  broadcastShapes,
  fromOnnxTensor,
  intsOf,
  isFloat,
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

type Inputs = readonly (RefTensor | undefined)[];

function withDims(x: RefTensor, dims: number[]): RefTensor {
  return { dataType: x.dataType, dims, data: Float64Array.from(x.data) };
}

function reshape(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const spec = intsOf(need(inputs, 1, ctx));
  const allowZero = getInt(node, 'allowzero', 0) === 1;
  const dims = spec.map((d, i) => (d === 0 && !allowZero ? x.dims[i] : d));
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const out = dims.map((d) => (d === -1 ? x.data.length / known : d));
  if (sizeOf(out) !== x.data.length) throw new Error(`${ctx.label}: cannot reshape [${x.dims}] to [${spec}]`);
  return [withDims(x, out)];
}

function flatten(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const axis = getInt(node, 'axis', 1);
  const a = axis < 0 ? axis + r : axis;
  return [withDims(x, [sizeOf(x.dims.slice(0, a)), sizeOf(x.dims.slice(a))])];
}

function transpose(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const perm = getInts(
    node,
    'perm',
    x.dims.map((_, i) => r - 1 - i),
  );
  const outDims = perm.map((p) => x.dims[p]);
  const xs = stridesOf(x.dims);
  const y = makeTensor(x.dataType, outDims);
  for (let f = 0; f < y.data.length; f++) {
    const o = unravel(f, outDims);
    let src = 0;
    for (let a = 0; a < r; a++) src += o[a] * xs[perm[a]];
    y.data[f] = x.data[src];
  }
  return [y];
}

function concat(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const xs = inputs.filter((t): t is RefTensor => t !== undefined);
  const r = xs[0].dims.length;
  const axis = normAxis(getInt(node, 'axis', 0), r, ctx.label);
  const outDims = [...xs[0].dims];
  outDims[axis] = xs.reduce((s, t) => s + t.dims[axis], 0);
  const y = makeTensor(xs[0].dataType, outDims);
  const outer = sizeOf(outDims.slice(0, axis));
  const inner = sizeOf(outDims.slice(axis + 1));
  let off = 0;
  for (const t of xs) {
    const len = t.dims[axis] * inner;
    for (let o = 0; o < outer; o++) {
      for (let k = 0; k < len; k++) y.data[o * outDims[axis] * inner + off + k] = t.data[o * len + k];
    }
    off += len;
  }
  return [y];
}

/** Slices one axis: `indices` are the source positions along `axis`. */
function takeAlong(x: RefTensor, axis: number, indices: readonly number[]): RefTensor {
  const outDims = [...x.dims];
  outDims[axis] = indices.length;
  const y = makeTensor(x.dataType, outDims);
  const inner = sizeOf(x.dims.slice(axis + 1));
  const outer = sizeOf(x.dims.slice(0, axis));
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < indices.length; j++) {
      const src = (o * x.dims[axis] + indices[j]) * inner;
      const dst = (o * indices.length + j) * inner;
      for (let k = 0; k < inner; k++) y.data[dst + k] = x.data[src + k];
    }
  }
  return y;
}

function split(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const axis = normAxis(getInt(node, 'axis', 0), x.dims.length, ctx.label);
  const n = node.outputs.length;
  let sizes = getInts(node, 'split') ?? (inputs[1] ? intsOf(inputs[1]) : undefined);
  if (!sizes) {
    const d = x.dims[axis];
    const chunk = Math.ceil(d / n);
    sizes = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, d - i * chunk)));
  }
  let start = 0;
  return sizes.map((s) => {
    const idx = Array.from({ length: s }, (_, i) => start + i);
    start += s;
    return takeAlong(x, axis, idx);
  });
}

/** Source indices of a Slice along an axis of length `dim` (ONNX clamping rules, any step). */
export function sliceIndices(dim: number, start: number, end: number, step: number): number[] {
  if (step === 0) throw new Error('Slice: step 0');
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  const out: number[] = [];
  for (let i = s; step > 0 ? i < e : i > e; i += step) out.push(i);
  return out;
}

function slice(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  let x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const starts = getInts(node, 'starts') ?? intsOf(need(inputs, 1, ctx));
  const ends = getInts(node, 'ends') ?? intsOf(need(inputs, 2, ctx));
  const axes = getInts(node, 'axes') ?? (inputs[3] ? intsOf(inputs[3]) : starts.map((_, i) => i));
  const steps = inputs[4] ? intsOf(inputs[4]) : starts.map(() => 1);
  axes.forEach((a, i) => {
    const axis = normAxis(a, r, ctx.label);
    x = takeAlong(x, axis, sliceIndices(x.dims[axis], starts[i], ends[i], steps[i]));
  });
  return [x];
}

function gather(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const ind = need(inputs, 1, ctx);
  const axis = normAxis(getInt(node, 'axis', 0), x.dims.length, ctx.label);
  const d = x.dims[axis];
  const idx = Array.from(ind.data, (i) => {
    if (i < -d || i >= d) throw new Error(`${ctx.label}: index ${i} out of range for axis of ${d}`);
    return i < 0 ? i + d : i;
  });
  const taken = takeAlong(x, axis, idx);
  return [withDims(taken, [...x.dims.slice(0, axis), ...ind.dims, ...x.dims.slice(axis + 1)])];
}

function gatherElements(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const ind = need(inputs, 1, ctx);
  const axis = normAxis(getInt(node, 'axis', 0), x.dims.length, ctx.label);
  const xs = stridesOf(x.dims);
  const y = makeTensor(x.dataType, ind.dims);
  for (let f = 0; f < y.data.length; f++) {
    const idx = unravel(f, ind.dims);
    const i = ind.data[f];
    idx[axis] = i < 0 ? i + x.dims[axis] : i;
    y.data[f] = x.data[ravel(idx, xs)];
  }
  return [y];
}

function scatterElements(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const ind = need(inputs, 1, ctx);
  const upd = need(inputs, 2, ctx);
  const axis = normAxis(getInt(node, 'axis', 0), x.dims.length, ctx.label);
  const reduction = getString(node, 'reduction', 'none');
  const y = withDims(x, [...x.dims]);
  const xs = stridesOf(x.dims);
  for (let f = 0; f < ind.data.length; f++) {
    const idx = unravel(f, ind.dims);
    const i = ind.data[f];
    idx[axis] = i < 0 ? i + x.dims[axis] : i;
    const o = ravel(idx, xs);
    if (reduction === 'add') y.data[o] += upd.data[f];
    else if (reduction === 'mul') y.data[o] *= upd.data[f];
    else y.data[o] = upd.data[f];
  }
  return [y];
}

/** Squeeze/Unsqueeze axes: attribute (opset < 13) or input. */
function axesOf(inputs: Inputs, node: OnnxNode): number[] | undefined {
  return getInts(node, 'axes') ?? (inputs[1] ? intsOf(inputs[1]) : undefined);
}

function squeeze(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const given = axesOf(inputs, node);
  const axes = new Set(
    given ? given.map((a) => normAxis(a, r, ctx.label)) : x.dims.flatMap((d, i) => (d === 1 ? [i] : [])),
  );
  for (const a of axes)
    if (x.dims[a] !== 1) throw new Error(`${ctx.label}: cannot squeeze axis ${a} of [${x.dims}]`);
  return [
    withDims(
      x,
      x.dims.filter((_, i) => !axes.has(i)),
    ),
  ];
}

function unsqueeze(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const given = axesOf(inputs, node) ?? [];
  const r = x.dims.length + given.length;
  const axes = new Set(given.map((a) => normAxis(a, r, ctx.label)));
  const dims: number[] = [];
  let k = 0;
  for (let i = 0; i < r; i++) dims.push(axes.has(i) ? 1 : x.dims[k++]);
  return [withDims(x, dims)];
}

function expand(inputs: Inputs, _node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const out = broadcastShapes([x.dims, intsOf(need(inputs, 1, ctx))], ctx.label);
  const idx = broadcastIndex(x.dims, out);
  const y = makeTensor(x.dataType, out);
  for (let k = 0; k < y.data.length; k++) y.data[k] = x.data[idx[k]];
  return [y];
}

function cast(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const to = getInt(node, 'to', DataType.FLOAT) as DataType;
  const y = makeTensor(to, x.dims);
  for (let i = 0; i < x.data.length; i++) {
    const v = x.data[i];
    y.data[i] = to === DataType.BOOL ? (v !== 0 ? 1 : 0) : isFloat(to) ? v : Math.trunc(v);
  }
  return [y];
}

function shape(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const clampAxis = (a: number): number => Math.min(Math.max(a < 0 ? a + r : a, 0), r);
  const start = clampAxis(getInt(node, 'start', 0));
  const end = clampAxis(getInt(node, 'end', r));
  const dims = x.dims.slice(start, end);
  return [makeTensor(DataType.INT64, [dims.length], dims)];
}

function constant(_inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const t = getTensor(node, 'value');
  if (t) return [fromOnnxTensor(t)];
  const a = node.attributes;
  if (a.value_float) return [makeTensor(DataType.FLOAT, [], [getFloat(node, 'value_float', 0)])];
  if (a.value_int) return [makeTensor(DataType.INT64, [], [getInt(node, 'value_int', 0)])];
  if (a.value_floats?.type === 'floats')
    return [makeTensor(DataType.FLOAT, [a.value_floats.value.length], a.value_floats.value)];
  if (a.value_ints?.type === 'ints')
    return [makeTensor(DataType.INT64, [a.value_ints.value.length], a.value_ints.value)];
  throw new Error(`${ctx.label}: unsupported Constant attribute`);
}

function constantOfShape(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const dims = intsOf(need(inputs, 0, ctx));
  const t = getTensor(node, 'value');
  const v = t ? fromOnnxTensor(t) : makeTensor(DataType.FLOAT, [1], [0]);
  return [makeTensor(v.dataType, dims, new Array(sizeOf(dims)).fill(v.data[0]))];
}

function range(inputs: Inputs, _node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const start = need(inputs, 0, ctx);
  const limit = need(inputs, 1, ctx).data[0];
  const delta = need(inputs, 2, ctx).data[0];
  const n = Math.max(Math.ceil((limit - start.data[0]) / delta), 0);
  return [
    makeTensor(
      start.dataType,
      [n],
      Array.from({ length: n }, (_, i) => start.data[0] + i * delta),
    ),
  ];
}

function tile(inputs: Inputs, _node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const reps = intsOf(need(inputs, 1, ctx));
  const outDims = x.dims.map((d, i) => d * reps[i]);
  const xs = stridesOf(x.dims);
  const y = makeTensor(x.dataType, outDims);
  for (let f = 0; f < y.data.length; f++) {
    const o = unravel(f, outDims).map((v, i) => v % x.dims[i]);
    y.data[f] = x.data[ravel(o, xs)];
  }
  return [y];
}

function pad(inputs: Inputs, node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const mode = getString(node, 'mode', 'constant');
  const raw = getInts(node, 'pads') ?? intsOf(need(inputs, 1, ctx));
  const value = inputs[2] ? inputs[2].data[0] : getFloat(node, 'value', 0);
  const axes = inputs[3] ? intsOf(inputs[3]).map((a) => normAxis(a, r, ctx.label)) : x.dims.map((_, i) => i);
  const begin = new Array<number>(r).fill(0);
  const end = new Array<number>(r).fill(0);
  axes.forEach((a, i) => {
    begin[a] = raw[i];
    end[a] = raw[i + axes.length];
  });
  const outDims = x.dims.map((d, i) => d + begin[i] + end[i]);
  const xs = stridesOf(x.dims);
  const y = makeTensor(x.dataType, outDims);
  for (let f = 0; f < y.data.length; f++) {
    const o = unravel(f, outDims);
    let inside = true;
    const src = o.map((v, i) => {
      let s = v - begin[i];
      const d = x.dims[i];
      if (s < 0 || s >= d) {
        if (mode === 'edge') s = Math.min(Math.max(s, 0), d - 1);
        else if (mode === 'reflect') {
          const period = 2 * (d - 1);
          s = ((s % period) + period) % period;
          if (s >= d) s = period - s;
        } else inside = false;
      }
      return s;
    });
    y.data[f] = inside ? x.data[ravel(src, xs)] : value;
  }
  return [y];
}

const size: RefOp = (inputs, _node, ctx) => [
  makeTensor(DataType.INT64, [], [need(inputs, 0, ctx).data.length]),
];

export const ops: RefOpTable = {
  Reshape: reshape,
  Flatten: flatten,
  Transpose: transpose,
  Concat: concat,
  Split: split,
  Slice: slice,
  Gather: gather,
  GatherElements: gatherElements,
  ScatterElements: scatterElements,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Expand: expand,
  Cast: cast,
  Shape: shape,
  Size: size,
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Range: range,
  Tile: tile,
  Pad: pad,
};
