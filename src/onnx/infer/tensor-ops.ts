/**
 * Shape rules for ops that move data without arithmetic: Reshape, Flatten, Transpose, Concat, Split, Slice,
 * Gather, Squeeze, Unsqueeze, Expand, Tile, Pad, scatters. Each folds small known inputs element by element,
 * so `Shape → Slice[2:4]` of a `[batch, C, 14, 14]` tensor is the constant `[14, 14]`.
 */
import { getInt, getInts } from '../attributes';
import { DataType, type Dim } from '../types';
import {
  broadcastIndexer,
  broadcastShapes,
  isStatic,
  normalizeAxis,
  productDims,
  scalarToDim,
  sizeOf,
  stridesOf,
  tensor,
} from './fold';
import type { InferContext, Scalar, ShapeRule } from './types';

/** Values at or beyond this are "to the end" sentinels (INT64_MAX and friends). */
const HUGE = 2 ** 60;

/** Maps each flat output index to a flat input index through per-axis coordinate maps. */
function remap(
  inShape: number[],
  outShape: number[],
  elems: Scalar[],
  coord: (outCoords: number[]) => number[],
): Scalar[] | undefined {
  const n = sizeOf(outShape);
  if (n > 4096) return undefined;
  const inStrides = stridesOf(inShape);
  const outStrides = stridesOf(outShape);
  const out = new Array<Scalar>(n);
  const oc = new Array<number>(outShape.length);
  for (let flat = 0; flat < n; flat++) {
    let r = flat;
    for (let d = 0; d < outShape.length; d++) {
      oc[d] = Math.floor(r / outStrides[d]);
      r -= oc[d] * outStrides[d];
    }
    const ic = coord(oc);
    let idx = 0;
    for (let d = 0; d < ic.length; d++) idx += ic[d] * inStrides[d];
    out[flat] = elems[idx];
  }
  return out;
}

/** The dim a `-1` in a Reshape target stands for. */
function inferMinusOne(input: Dim[] | undefined, others: Dim[]): Dim {
  if (!input || input.some((d) => d === null) || others.some((d) => d === null)) return null;
  const symbolsIn = input.filter((d): d is string => typeof d === 'string');
  let pIn = 1;
  for (const d of input) if (typeof d === 'number') pIn *= d;
  let pOut = 1;
  for (const d of others) {
    if (typeof d === 'number') pOut *= d;
    else {
      const at = symbolsIn.indexOf(d as string);
      if (at < 0) return null;
      symbolsIn.splice(at, 1);
    }
  }
  if (symbolsIn.length === 0) return pOut !== 0 && pIn % pOut === 0 ? pIn / pOut : null;
  if (symbolsIn.length === 1 && pIn === pOut) return symbolsIn[0];
  return null;
}

const reshape: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  const target = ctx.elems(1);
  const allowZero = ctx.opset >= 14 && getInt(ctx.node, 'allowzero', 0) === 1;
  if (!target) {
    const ts = ctx.shape(1);
    return [
      tensor(
        dt,
        ts && ts.length === 1 && typeof ts[0] === 'number' ? new Array<Dim>(ts[0]).fill(null) : undefined,
      ),
    ];
  }
  if (target.filter((t) => t === -1).length > 1) return ctx.fail('shape has more than one -1');
  const out: Dim[] = target.map((t, i) => {
    if (t === 0 && !allowZero) {
      if (x && i >= x.length)
        return ctx.fail(`shape copies dim ${i} (0), but the input has rank ${x.length}`);
      return x ? x[i] : null;
    }
    if (t === -1) return -1;
    return scalarToDim(t);
  });
  const minus = out.indexOf(-1);
  if (minus >= 0)
    out[minus] = inferMinusOne(
      x,
      out.filter((_, i) => i !== minus),
    );
  if (isStatic(x) && isStatic(out) && sizeOf(x) !== sizeOf(out)) {
    ctx.fail(`cannot reshape [${x.join(', ')}] (${sizeOf(x)} elements) to [${out.join(', ')}]`);
  }
  return [tensor(dt, out, ctx.elems(0))];
};

const flatten: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  if (!x) return [tensor(dt, [null, null])];
  let axis = getInt(ctx.node, 'axis', 1);
  if (axis < 0) axis += x.length;
  if (axis < 0 || axis > x.length)
    ctx.fail(`axis ${getInt(ctx.node, 'axis', 1)} is out of range for rank ${x.length}`);
  return [tensor(dt, [productDims(x.slice(0, axis)), productDims(x.slice(axis))], ctx.elems(0))];
};

const transpose: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  if (!x) return [tensor(dt, undefined)];
  const perm = getInts(
    ctx.node,
    'perm',
    x.map((_, i) => x.length - 1 - i),
  );
  if (perm.length !== x.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    ctx.fail(`perm [${perm.join(', ')}] is not a permutation of rank ${x.length}`);
  }
  const shape = perm.map((p) => x[p]);
  const e = ctx.elems(0);
  const elems =
    e && isStatic(x) && isStatic(shape)
      ? remap(x, shape, e, (oc) => {
          const ic = new Array<number>(x.length);
          perm.forEach((p, i) => (ic[p] = oc[i]));
          return ic;
        })
      : undefined;
  return [tensor(dt, shape, elems)];
};

function mergeDims(dims: Dim[]): Dim {
  return dims.find((d) => typeof d === 'number') ?? dims.find((d) => typeof d === 'string') ?? null;
}

const concat: ShapeRule = (ctx) => {
  const n = ctx.node.inputs.length;
  const idx = Array.from({ length: n }, (_, i) => i).filter((i) => ctx.has(i));
  const shapes = idx.map((i) => ctx.shape(i));
  const dt = idx.map((i) => ctx.dataType(i)).find((t) => t !== DataType.UNDEFINED) ?? DataType.UNDEFINED;
  const known = shapes.filter((s): s is Dim[] => s !== undefined);
  if (known.length === 0) return [tensor(dt, undefined)];
  const rank = known[0].length;
  if (known.some((s) => s.length !== rank))
    ctx.fail(`inputs have different ranks: ${known.map((s) => s.length).join(', ')}`);
  const axis = normalizeAxis(getInt(ctx.node, 'axis', 0), rank, ctx.fail);
  const out: Dim[] = [];
  for (let d = 0; d < rank; d++) {
    if (d !== axis) out.push(mergeDims(known.map((s) => s[d])));
    else if (known.length < shapes.length) out.push(null);
    else {
      const along = known.map((s) => s[d]);
      if (along.every((a) => typeof a === 'number')) out.push((along as number[]).reduce((a, b) => a + b, 0));
      else {
        // Only a single non-empty input keeps its symbolic length.
        const nonEmpty = along.filter((a) => a !== 0);
        out.push(nonEmpty.length === 1 ? nonEmpty[0] : null);
      }
    }
  }
  const parts = idx.map((i) => ctx.elems(i));
  let elems: Scalar[] | undefined;
  if (isStatic(out) && parts.every((p) => p !== undefined) && shapes.every((s) => isStatic(s))) {
    const outer = sizeOf(out.slice(0, axis));
    elems = [];
    for (let o = 0; o < outer; o++) {
      shapes.forEach((s, k) => {
        const chunk = sizeOf((s as number[]).slice(axis));
        elems!.push(...parts[k]!.slice(o * chunk, (o + 1) * chunk));
      });
    }
  }
  return [tensor(dt, out, elems)];
};

function splitSizes(ctx: InferContext, dim: Dim, outputs: number): (number | null)[] {
  let split: number[] | undefined;
  if (ctx.opset >= 13) {
    if (ctx.has(1)) {
      split = ctx.ints(1);
      if (!split) return new Array<null>(outputs).fill(null);
    }
  } else split = getInts(ctx.node, 'split');
  if (split && split.length > 0) {
    if (split.length !== outputs) return ctx.fail(`split has ${split.length} sizes for ${outputs} outputs`);
    if (typeof dim === 'number' && split.reduce((a, b) => a + b, 0) !== dim) {
      ctx.fail(`split sizes [${split.join(', ')}] do not add up to the axis length ${dim}`);
    }
    return split;
  }
  if (typeof dim !== 'number') return new Array<null>(outputs).fill(null);
  const chunk = Math.ceil(dim / outputs);
  if (ctx.opset < 18 && dim % outputs !== 0)
    ctx.fail(`axis length ${dim} does not split evenly into ${outputs}`);
  return Array.from({ length: outputs }, (_, i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
}

const split: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  const outputs = ctx.node.outputs.length;
  if (!x) return ctx.node.outputs.map(() => tensor(dt, undefined));
  const axis = normalizeAxis(getInt(ctx.node, 'axis', 0), x.length, ctx.fail);
  const sizes = splitSizes(ctx, x[axis], outputs);
  const e = ctx.elems(0);
  let offset = 0;
  return sizes.map((size) => {
    const shape = x.map((d, i) => (i === axis ? size : d));
    const start = offset;
    offset += size ?? 0;
    const elems =
      e && isStatic(x) && isStatic(shape)
        ? remap(x, shape, e, (oc) => oc.map((c, i) => (i === axis ? c + start : c)))
        : undefined;
    return tensor(dt, shape, elems);
  });
};

interface SliceSpec {
  starts: number[];
  ends: number[];
  axes: number[];
  steps: number[];
}

function sliceSpec(ctx: InferContext, rank: number): SliceSpec | 'axes-unknown' | undefined {
  let starts: number[] | undefined;
  let ends: number[] | undefined;
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = getInts(ctx.node, 'starts');
    ends = getInts(ctx.node, 'ends');
    axes = getInts(ctx.node, 'axes');
  } else {
    starts = ctx.ints(1);
    ends = ctx.ints(2);
    if (ctx.has(3)) {
      axes = ctx.ints(3);
      if (!axes) return 'axes-unknown';
    }
    if (ctx.has(4)) {
      steps = ctx.ints(4);
      if (!steps) return undefined;
    }
  }
  if (!starts || !ends) return undefined;
  if (starts.length !== ends.length)
    return ctx.fail(`starts has ${starts.length} values, ends ${ends.length}`);
  axes = (axes ?? starts.map((_, i) => i)).map((a) => normalizeAxis(a, rank, ctx.fail));
  steps = steps ?? starts.map(() => 1);
  if (steps.some((s) => s === 0)) return ctx.fail('steps must not be 0');
  return { starts, ends, axes, steps };
}

/** [first index, length] of a slice of an axis of length `dim`, with ONNX's clamping rules. */
function sliceRange(dim: number, start: number, end: number, step: number): [number, number] {
  const [s, e] = clampSliceBounds(dim, start, end, step);
  return [s, Math.max(0, Math.ceil((e - s) / step))];
}

/**
 * Start and end of a Slice along an axis of length `dim` after ONNX's rules: negative values count from
 * the end, then both are clamped to [0, dim] (step > 0) or [-1, dim - 1] (step < 0).
 */
export function clampSliceBounds(dim: number, start: number, end: number, step: number): [number, number] {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  return [s, e];
}

const slice: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  if (!x) return [tensor(dt, undefined)];
  const spec = sliceSpec(ctx, x.length);
  if (spec === 'axes-unknown')
    return [
      tensor(
        dt,
        x.map(() => null),
      ),
    ];
  if (!spec) {
    // Which axes are sliced is known when `axes` is; the others keep their length.
    const axes = ctx.opset >= 10 && ctx.has(3) ? ctx.ints(3) : undefined;
    if (!axes)
      return [
        tensor(
          dt,
          x.map(() => null),
        ),
      ];
    const sliced = new Set(axes.map((a) => normalizeAxis(a, x.length, ctx.fail)));
    return [
      tensor(
        dt,
        x.map((d, i) => (sliced.has(i) ? null : d)),
      ),
    ];
  }
  const shape: Dim[] = [...x];
  const firsts = new Array<number>(x.length).fill(0);
  const steps = new Array<number>(x.length).fill(1);
  spec.axes.forEach((axis, i) => {
    const d = x[axis];
    const [st, en, sp] = [spec.starts[i], spec.ends[i], spec.steps[i]];
    if (typeof d === 'number') {
      const [first, len] = sliceRange(d, st, en, sp);
      shape[axis] = len;
      firsts[axis] = first;
      steps[axis] = sp;
    } else shape[axis] = st === 0 && en >= HUGE && sp === 1 ? d : null;
  });
  const e = ctx.elems(0);
  const elems =
    e && isStatic(x) && isStatic(shape)
      ? remap(x, shape, e, (oc) => oc.map((c, i) => firsts[i] + c * steps[i]))
      : undefined;
  return [tensor(dt, shape, elems)];
};

const gather: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const ind = ctx.shape(1);
  const dt = ctx.dataType(0);
  if (!x || !ind) return [tensor(dt, undefined)];
  const axis = normalizeAxis(getInt(ctx.node, 'axis', 0), x.length, ctx.fail);
  const shape = [...x.slice(0, axis), ...ind, ...x.slice(axis + 1)];
  const e = ctx.elems(0);
  const indices = ctx.ints(1);
  let elems: Scalar[] | undefined;
  if (e && indices && isStatic(x) && isStatic(shape) && isStatic(ind)) {
    const len = x[axis];
    for (const i of indices)
      if (i < -len || i >= len) return ctx.fail(`index ${i} is out of range for axis length ${len}`);
    elems = remap(x, shape, e, (oc) => {
      const flatInd = ind.reduce((acc, d, k) => acc * d + oc[axis + k], 0);
      const i = indices[flatInd];
      return [...oc.slice(0, axis), i < 0 ? i + len : i, ...oc.slice(axis + ind.length)];
    });
  }
  return [tensor(dt, shape, elems)];
};

const gatherElements: ShapeRule = (ctx) => [tensor(ctx.dataType(0), ctx.shape(1))];

const gatherND: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const ind = ctx.shape(1);
  const dt = ctx.dataType(0);
  if (!x || !ind || ind.length === 0) return [tensor(dt, undefined)];
  const last = ind[ind.length - 1];
  if (typeof last !== 'number') return [tensor(dt, undefined)];
  const b = getInt(ctx.node, 'batch_dims', 0);
  return [tensor(dt, [...ind.slice(0, -1), ...x.slice(b + last)])];
};

function axesFor(ctx: InferContext, inputFromOpset: number): number[] | undefined | 'unknown' {
  if (ctx.opset >= inputFromOpset) {
    if (!ctx.has(1)) return undefined;
    return ctx.ints(1) ?? 'unknown';
  }
  return getInts(ctx.node, 'axes');
}

const squeeze: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  const axes = axesFor(ctx, 13);
  if (!x || axes === 'unknown') return [tensor(dt, undefined)];
  let shape: Dim[] | undefined;
  if (!axes || axes.length === 0)
    shape = x.every((d) => typeof d === 'number') ? x.filter((d) => d !== 1) : undefined;
  else {
    const drop = new Set(axes.map((a) => normalizeAxis(a, x.length, ctx.fail)));
    for (const a of drop) {
      if (typeof x[a] === 'number' && x[a] !== 1)
        return ctx.fail(`cannot squeeze axis ${a} of length ${x[a]}`);
    }
    shape = x.filter((_, i) => !drop.has(i));
  }
  return [tensor(dt, shape, ctx.elems(0))];
};

const unsqueeze: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  const axes = axesFor(ctx, 13);
  if (!axes) return ctx.fail('axes are required');
  if (!x || axes === 'unknown') return [tensor(dt, undefined)];
  const rank = x.length + axes.length;
  const insert = new Set(axes.map((a) => normalizeAxis(a, rank, ctx.fail)));
  if (insert.size !== axes.length) return ctx.fail(`axes [${axes.join(', ')}] repeat an axis`);
  const shape: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) shape.push(insert.has(i) ? 1 : x[k++]);
  return [tensor(dt, shape, ctx.elems(0))];
};

const expand: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  const target = ctx.elems(1);
  const ts = ctx.shape(1);
  let dims: Dim[] | undefined;
  if (target) dims = target.map((t) => (t === 1 ? 1 : scalarToDim(t)));
  else if (ts && typeof ts[0] === 'number') dims = new Array<Dim>(ts[0]).fill(null);
  if (!dims || !x) return [tensor(dt, undefined)];
  // An unknown target dim broadcast against a known one > 1 is that one; against 1 it stays unknown.
  const shape = broadcastShapes([x, dims], ctx.fail);
  const e = ctx.elems(0);
  let elems: Scalar[] | undefined;
  if (e && isStatic(x) && isStatic(shape) && sizeOf(shape) <= 4096) {
    const map = broadcastIndexer(x, shape);
    elems = Array.from({ length: sizeOf(shape) }, (_, i) => e[map(i)]);
  }
  return [tensor(dt, shape, elems)];
};

const tile: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  const reps = ctx.ints(1);
  if (!x) return [tensor(dt, undefined)];
  if (!reps)
    return [
      tensor(
        dt,
        x.map(() => null),
      ),
    ];
  if (reps.length !== x.length) return ctx.fail(`repeats has ${reps.length} values for rank ${x.length}`);
  return [
    tensor(
      dt,
      x.map((d, i) => (reps[i] === 1 ? d : typeof d === 'number' ? d * reps[i] : null)),
    ),
  ];
};

const pad: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  if (!x) return [tensor(dt, undefined)];
  const pads = ctx.opset >= 11 ? ctx.ints(1) : getInts(ctx.node, 'pads');
  if (!pads)
    return [
      tensor(
        dt,
        x.map(() => null),
      ),
    ];
  let axes = x.map((_, i) => i);
  if (ctx.opset >= 18 && ctx.has(3)) {
    const a = ctx.ints(3);
    if (!a)
      return [
        tensor(
          dt,
          x.map(() => null),
        ),
      ];
    axes = a.map((v) => normalizeAxis(v, x.length, ctx.fail));
  }
  if (pads.length !== 2 * axes.length)
    ctx.fail(`pads must have ${2 * axes.length} values, got ${pads.length}`);
  const shape = [...x];
  axes.forEach((a, i) => {
    const d = x[a];
    const p = pads[i] + pads[i + axes.length];
    shape[a] = p === 0 ? d : typeof d === 'number' ? d + p : null;
  });
  return [tensor(dt, shape)];
};

const sameAsData: ShapeRule = (ctx) => [tensor(ctx.dataType(0), ctx.shape(0))];

const topK: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  if (!x) return [tensor(dt, undefined), tensor(DataType.INT64, undefined)];
  const axis = normalizeAxis(getInt(ctx.node, 'axis', -1), x.length, ctx.fail);
  const k = ctx.opset >= 10 ? ctx.ints(1)?.[0] : getInt(ctx.node, 'k');
  const shape = x.map((d, i) => (i === axis ? (k ?? null) : d));
  return [tensor(dt, shape), tensor(DataType.INT64, shape)];
};

const nonZero: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  return [tensor(DataType.INT64, [x ? x.length : null, null])];
};

function blockRule(toDepth: boolean): ShapeRule {
  return (ctx) => {
    const x = ctx.shape(0);
    const dt = ctx.dataType(0);
    const b = getInt(ctx.node, 'blocksize');
    if (b === undefined) return ctx.fail('attribute blocksize is required');
    if (!x) return [tensor(dt, undefined)];
    if (x.length !== 4) return ctx.fail(`input must have rank 4, got ${x.length}`);
    const [n, c, h, w] = x;
    const scale = (d: Dim, f: number): Dim => (typeof d === 'number' ? d * f : null);
    return toDepth
      ? [tensor(dt, [n, scale(c, b * b), scale(h, 1 / b), scale(w, 1 / b)])]
      : [tensor(dt, [n, scale(c, 1 / (b * b)), scale(h, b), scale(w, b)])];
  };
}

/** Shape rules of this family, by op type. */
export const rules: Record<string, ShapeRule> = {
  Reshape: reshape,
  Flatten: flatten,
  Transpose: transpose,
  Concat: concat,
  Split: split,
  Slice: slice,
  Gather: gather,
  GatherElements: gatherElements,
  GatherND: gatherND,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Expand: expand,
  Tile: tile,
  Pad: pad,
  ScatterElements: sameAsData,
  ScatterND: sameAsData,
  Scatter: sameAsData,
  TopK: topK,
  NonZero: nonZero,
  DepthToSpace: blockRule(false),
  SpaceToDepth: blockRule(true),
};
