/**
 * Gradient rules for shape and indexing ops. Reshape-like ops reshape dy back; Transpose inverts its
 * permutation; Concat/Split swap roles; Slice pads (step 1, static dims) or scatters into zeros along each
 * sliced axis (any step, dynamic dims: the source indices come from slicing an iota with the same
 * starts/ends/steps, so onnxruntime's own clamping decides them); Gather/GatherElements scatter-add
 * (ScatterElements reduction='add', opset 16).
 */
import { clampSliceBounds } from '../../onnx/infer/tensor-ops';
import { GraphError } from '../../errors';
import { getInt, getInts } from '../../onnx/attributes';
import { DataType } from '../../onnx/types';
import { emitSplit } from '../emit';
import { constInts, dy0, isStaticShape, normalizeAxis, only, rankOf, staticShapeOf } from '../rule-helpers';
import type { GradContext, GradientRule, GradientRuleEntry } from '../types';

/** Reshape, Flatten, Squeeze, Unsqueeze: dx = Reshape(dy, Shape(x)). */
const reshapeBack: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const x = ctx.node.inputs[0];
  return only(ctx, { 0: () => ctx.b.op('Reshape', [dy, ctx.shapeOf(x)]) });
};

const transpose: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const perm = getInts(ctx.node, 'perm');
  return only(ctx, {
    0: () => {
      if (!perm) return ctx.b.op('Transpose', [dy]); // reversing the axes is its own inverse
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => (inv[p] = i));
      return ctx.b.op('Transpose', [dy], { perm: inv });
    },
  });
};

/** Concat: Split dy by the static input sizes, or Slice at run-time offsets when a size is symbolic. */
const concat: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const b = ctx.b;
  const inputs = ctx.node.inputs;
  const axis = getInt(ctx.node, 'axis', 0);
  const rank = rankOf(ctx, inputs[0]);
  const a = normalizeAxis(ctx, axis, rank);
  const sizes = inputs.map((x) => staticShapeOf(ctx, x)?.[a]);
  if (sizes.every((s): s is number => typeof s === 'number')) {
    const parts = emitSplit(ctx, dy, a, sizes);
    return inputs.map((_, i) => (ctx.needs[i] ? parts[i] : undefined));
  }
  const axesT = ctx.ints([a]);
  let offset = ctx.ints([0]);
  return inputs.map((x, i) => {
    const len =
      typeof sizes[i] === 'number' ? ctx.ints([sizes[i] as number]) : b.op('Gather', [ctx.shapeOf(x), axesT]);
    const end = b.op('Add', [offset, len]);
    const g = ctx.needs[i] ? b.op('Slice', [dy, offset, end, axesT]) : undefined;
    offset = end;
    return g;
  });
};

/** Split: Concat the output gradients, zeros for outputs that get none. */
const split: GradientRule = (ctx) => {
  const axis = getInt(ctx.node, 'axis', 0);
  const parts = ctx.node.outputs.map((o, i) => ctx.dY[i] ?? ctx.zerosLike(o));
  return only(ctx, { 0: () => ctx.b.op('Concat', parts, { axis }) });
};

/** Source indices of a Slice along an axis of static length (ONNX clamping rules, any non-zero step). */
export function sliceIndices(dim: number, start: number, end: number, step: number): number[] {
  const [s, e] = clampSliceBounds(dim, start, end, step);
  const out: number[] = [];
  for (let i = s; step > 0 ? i < e : i > e; i += step) out.push(i);
  return out;
}

/** Reshapes a 1-D index vector so it broadcasts along `axis` of a rank-`rank` tensor. */
function alongAxis(ctx: GradContext, idx: string, axis: number, rank: number): string {
  const shape = Array.from({ length: rank }, (_, i) => (i === axis ? -1 : 1));
  return ctx.b.op('Reshape', [idx, ctx.ints(shape)]);
}

/** `shape` with element `axis` replaced by `dim` (all int64 1-D tensors). */
function replaceDim(ctx: GradContext, shape: string, axis: number, dim: string, rank: number): string {
  const b = ctx.b;
  const head = axis > 0 ? [b.op('Slice', [shape, ctx.ints([0]), ctx.ints([axis])])] : [];
  const tail = axis < rank - 1 ? [b.op('Slice', [shape, ctx.ints([axis + 1]), ctx.ints([rank])])] : [];
  return b.op('Concat', [...head, dim, ...tail], { axis: 0 });
}

/**
 * Slice. Step 1 on axes of static length: one Pad. Otherwise, per sliced axis, ScatterElements (no
 * reduction: the indices of a slice are distinct) of the gradient into zeros of the restored shape.
 */
const slice: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const b = ctx.b;
  const [x, startsT, endsT, axesT, stepsT] = ctx.node.inputs;
  const rank = rankOf(ctx, x);
  const xs = staticShapeOf(ctx, x)!;
  const starts = constInts(ctx, startsT);
  const ends = constInts(ctx, endsT);
  const nAxes = starts?.length ?? staticShapeOf(ctx, startsT)?.[0];
  let axes = axesT
    ? constInts(ctx, axesT)
    : typeof nAxes === 'number'
      ? Array.from({ length: nAxes }, (_, i) => i)
      : undefined;
  if (!axes) {
    throw new GraphError(`${ctx.label}: Slice with run-time axes cannot be differentiated`, {
      hint: 'make the axes input a constant (initializer or Constant)',
    });
  }
  axes = axes.map((a) => normalizeAxis(ctx, a, rank));
  const steps = stepsT ? constInts(ctx, stepsT) : axes.map(() => 1);
  const known = starts && ends && steps;
  const staticDims = axes.every((a) => typeof xs[a] === 'number');
  return only(ctx, {
    0: () => {
      if (known && staticDims && steps.every((s) => s === 1)) {
        const pads = new Array<number>(2 * rank).fill(0);
        axes.forEach((a, j) => {
          const dim = xs[a] as number;
          const idx = sliceIndices(dim, starts[j], ends[j], 1);
          const first = idx.length > 0 ? idx[0] : 0;
          pads[a] = first;
          pads[a + rank] = dim - first - idx.length;
        });
        return b.op('Pad', [dy, ctx.ints(pads)], { mode: 'constant' });
      }
      let g = dy;
      let shape = ctx.shapeOf(ctx.node.outputs[0]);
      const xShape = ctx.shapeOf(x);
      axes.forEach((a, j) => {
        let idx: string;
        if (known && typeof xs[a] === 'number') {
          idx = ctx.ints(sliceIndices(xs[a] as number, starts[j], ends[j], steps[j]));
        } else {
          const dim = b.op('Squeeze', [b.op('Gather', [xShape, ctx.ints([a])]), ctx.ints([0])]);
          const iota = b.op('Range', [b.constInt64(0), dim, b.constInt64(1)]);
          const pick = (t: string | undefined, fallback: number): string =>
            t ? b.op('Slice', [t, ctx.ints([j]), ctx.ints([j + 1])]) : ctx.ints([fallback]);
          const startJ = starts ? ctx.ints([starts[j]]) : pick(startsT, 0);
          const endJ = ends ? ctx.ints([ends[j]]) : pick(endsT, 0);
          const stepJ = steps ? ctx.ints([steps[j]]) : pick(stepsT, 1);
          idx = b.op('Slice', [iota, startJ, endJ, ctx.ints([0]), stepJ]);
        }
        const target = replaceDim(ctx, shape, a, b.op('Gather', [xShape, ctx.ints([a])]), rank);
        const indices = b.op('Expand', [alongAxis(ctx, idx, a, rank), shape]);
        g = b.op('ScatterElements', [b.op('ConstantOfShape', [target]), indices, g], { axis: a });
        shape = target;
      });
      return g;
    },
  });
};

/** Indices as int64 with negative values wrapped by the length of `axis` of `data`. */
function normalizedIndices(ctx: GradContext, indices: string, data: string, axis: number): string {
  const b = ctx.b;
  const idx =
    ctx.info(indices).dataType === DataType.INT64 ? indices : b.op('Cast', [indices], { to: DataType.INT64 });
  const v = constInts(ctx, indices);
  if (v && v.every((i) => i >= 0)) return idx;
  const dim = b.op('Gather', [ctx.shapeOf(data), ctx.ints([axis])]);
  const neg = b.op('Cast', [b.op('Less', [idx, ctx.ints([0])])], { to: DataType.INT64 });
  return b.op('Add', [idx, b.op('Mul', [neg, dim])]);
}

/**
 * Gather(data, indices, axis): scatter-add dy into zeros of data's shape. dy is reshaped to
 * data.shape with the gathered axis flattened to K = |indices|; the flat indices broadcast over it.
 */
const gather: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const b = ctx.b;
  const [data, indices] = ctx.node.inputs;
  const rank = rankOf(ctx, data);
  const a = normalizeAxis(ctx, getInt(ctx.node, 'axis', 0), rank);
  return only(ctx, {
    0: () => {
      ctx.requireOpset(16, "ScatterElements reduction='add'");
      const ds = staticShapeOf(ctx, data)!;
      const others = ds.map((d, i) => (i === a ? -1 : d));
      const updShape = isStaticShape(others)
        ? ctx.ints(others)
        : replaceDim(ctx, ctx.shapeOf(data), a, ctx.ints([-1]), rank);
      const upd = b.op('Reshape', [dy, updShape]);
      const flat = b.op('Reshape', [normalizedIndices(ctx, indices, data, a), ctx.ints([-1])]);
      const idx = b.op('Expand', [alongAxis(ctx, flat, a, rank), b.op('Shape', [upd])]);
      return b.op('ScatterElements', [ctx.zerosLike(data), idx, upd], { axis: a, reduction: 'add' });
    },
  });
};

/** GatherElements: scatter-add dy at the same indices. */
const gatherElements: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const [data, indices] = ctx.node.inputs;
  const a = normalizeAxis(ctx, getInt(ctx.node, 'axis', 0), rankOf(ctx, data));
  return only(ctx, {
    0: () => {
      ctx.requireOpset(16, "ScatterElements reduction='add'");
      const idx = normalizedIndices(ctx, indices, data, a);
      return ctx.b.op('ScatterElements', [ctx.zerosLike(data), idx, dy], { axis: a, reduction: 'add' });
    },
  });
};

/** Expand: sum dy over the broadcast axes. */
const expand: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const x = ctx.node.inputs[0];
  return only(ctx, { 0: () => ctx.unbroadcast(dy, x, staticShapeOf(ctx, ctx.node.outputs[0])) });
};

/** Cast between float types: cast dy back. (Casts to or from integers are not on differentiable paths.) */
const cast: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const x = ctx.node.inputs[0];
  const from = ctx.info(x).dataType;
  const to = getInt(ctx.node, 'to', DataType.FLOAT);
  return only(ctx, { 0: () => (from === to ? dy : ctx.b.op('Cast', [dy], { to: from })) });
};

export const rules: GradientRuleEntry[] = [
  { opType: 'Reshape', rule: reshapeBack, nonDifferentiableInputs: [1] },
  { opType: 'Flatten', rule: reshapeBack },
  { opType: 'Squeeze', rule: reshapeBack, nonDifferentiableInputs: [1] },
  { opType: 'Unsqueeze', rule: reshapeBack, nonDifferentiableInputs: [1] },
  { opType: 'Transpose', rule: transpose },
  { opType: 'Concat', rule: concat },
  { opType: 'Split', rule: split, nonDifferentiableInputs: [1] },
  { opType: 'Slice', rule: slice, nonDifferentiableInputs: [1, 2, 3, 4] },
  { opType: 'Gather', rule: gather, nonDifferentiableInputs: [1] },
  { opType: 'GatherElements', rule: gatherElements, nonDifferentiableInputs: [1] },
  { opType: 'Expand', rule: expand, nonDifferentiableInputs: [1] },
  { opType: 'Cast', rule: cast },
];
