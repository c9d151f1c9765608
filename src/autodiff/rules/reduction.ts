/**
 * Gradient rules for the Reduce* family. dy is first brought back to the input's rank (Unsqueeze over the
 * reduced axes when keepdims=0), then broadcast against x. Axes may be an attribute or an input (ReduceSum
 * from opset 13, the others from 18); constant axes inputs are read at build time, others used as tensors.
 * ReduceMax/ReduceMin split dy evenly among tied maxima (as torch.amax/amin). With noop_with_empty_axes=1
 * and no axes, onnxruntime reduces over the empty axis set — an elementwise map (ReduceL2 gives |x|,
 * ReduceSumSquare x²) — and the rules differentiate exactly that.
 */
import { getInt, getInts } from '../../onnx/attributes';
import { DataType } from '../../onnx/types';
import { constInts, dy0, isStaticShape, normalizeAxis, only, staticShapeOf } from '../rule-helpers';
import type { GradContext, GradientRule, GradientRuleEntry } from '../types';

/** A Reduce node's axes: numbers, a run-time int64 tensor, 'all', or 'none' (noop_with_empty_axes). */
type Axes =
  { kind: 'list'; axes: number[] } | { kind: 'tensor'; name: string } | { kind: 'all' } | { kind: 'none' };

function reduceAxes(ctx: GradContext): Axes {
  const node = ctx.node;
  const noop = getInt(node, 'noop_with_empty_axes', 0) === 1;
  const fromAttr = getInts(node, 'axes');
  let axes: number[] | undefined = fromAttr;
  const input = node.inputs[1];
  if (!axes && input) {
    const v = constInts(ctx, input);
    if (!v) return { kind: 'tensor', name: input };
    axes = v;
  }
  if (!axes || axes.length === 0) return noop && !fromAttr ? { kind: 'none' } : { kind: 'all' };
  return { kind: 'list', axes };
}

interface Reduced {
  x: string;
  y: string;
  axes: Axes;
  /** dy with the reduced axes restored (size 1), broadcastable against x. */
  dyk: string;
  /** y with the reduced axes restored. */
  yk(): string;
  /** ReduceSum over the same axes, keepdims=1. */
  sumKeep(t: string): string;
}

function restore(ctx: GradContext, t: string, axes: Axes): string {
  if (getInt(ctx.node, 'keepdims', 1) === 1) return t;
  if (axes.kind === 'list') return ctx.unsqueeze(t, axes.axes);
  if (axes.kind === 'tensor') return ctx.unsqueeze(t, axes.name);
  return t; // 'all' with keepdims=0 is a scalar, which broadcasts; 'none' keeps the shape
}

function reduced(ctx: GradContext): Reduced {
  const x = ctx.node.inputs[0];
  const y = ctx.node.outputs[0];
  const axes = reduceAxes(ctx);
  let yk: string | undefined;
  return {
    x,
    y,
    axes,
    dyk: restore(ctx, dy0(ctx), axes),
    yk: () => (yk ??= restore(ctx, y, axes)),
    sumKeep: (t) =>
      ctx.reduceSum(t, axes.kind === 'list' ? axes.axes : axes.kind === 'tensor' ? axes.name : [], true),
  };
}

function reduceRule(local: (ctx: GradContext, r: Reduced) => string): GradientRule {
  return (ctx) => only(ctx, { 0: () => local(ctx, reduced(ctx)) });
}

const expandTo = (ctx: GradContext, t: string, x: string): string => ctx.b.op('Expand', [t, ctx.shapeOf(x)]);

const reduceSum = reduceRule((ctx, r) => (r.axes.kind === 'none' ? r.dyk : expandTo(ctx, r.dyk, r.x)));

/** Number of elements averaged per output: static when the reduced dims are known. */
function meanCount(ctx: GradContext, r: Reduced): string {
  const xs = staticShapeOf(ctx, r.x);
  if (xs && r.axes.kind !== 'tensor') {
    const axes =
      r.axes.kind === 'list' ? r.axes.axes.map((a) => normalizeAxis(ctx, a, xs.length)) : xs.map((_, i) => i);
    const dims = axes.map((a) => xs[a]);
    if (isStaticShape(dims)) return ctx.scalar(dims.reduce((p, d) => p * d, 1));
  }
  const b = ctx.b;
  const size = (t: string): string => b.op('Cast', [b.op('Size', [t])], { to: DataType.FLOAT });
  return b.op('Div', [size(r.x), size(r.y)]);
}

const reduceMean = reduceRule((ctx, r) => {
  if (r.axes.kind === 'none') return r.dyk;
  return expandTo(ctx, ctx.b.op('Div', [r.dyk, meanCount(ctx, r)]), r.x);
});

/** Max/Min: mask of the elements equal to the result, dy shared evenly among them. */
const reduceExtremum = reduceRule((ctx, r) => {
  if (r.axes.kind === 'none') return r.dyk;
  const b = ctx.b;
  const mask = b.op('Cast', [b.op('Equal', [r.x, r.yk()])], { to: DataType.FLOAT });
  return b.op('Mul', [mask, b.op('Div', [r.dyk, r.sumKeep(mask)])]);
});

/** L2: dx = x·dy/y, and 0 where y = 0 (PyTorch's convention). */
const reduceL2 = reduceRule((ctx, r) => {
  const b = ctx.b;
  if (r.axes.kind === 'none') return b.op('Mul', [r.dyk, b.op('Sign', [r.x])]);
  const yk = r.yk();
  const scale = b.op('Where', [b.op('Equal', [yk, ctx.scalar(0)]), ctx.scalar(0), b.op('Div', [r.dyk, yk])]);
  return b.op('Mul', [r.x, scale]);
});

const reduceL1 = reduceRule((ctx, r) => ctx.b.op('Mul', [ctx.b.op('Sign', [r.x]), r.dyk]));

const reduceSumSquare = reduceRule((ctx, r) =>
  ctx.b.op('Mul', [ctx.b.op('Mul', [r.x, ctx.scalar(2)]), r.dyk]),
);

/** LogSumExp: dx = dy·exp(x − y). */
const reduceLogSumExp = reduceRule((ctx, r) =>
  ctx.b.op('Mul', [r.dyk, ctx.b.op('Exp', [ctx.b.op('Sub', [r.x, r.yk()])])]),
);

/** LogSum: dx = dy / Σx = dy·exp(−y), broadcast to x. */
const reduceLogSum = reduceRule((ctx, r) => {
  const local = ctx.b.op('Div', [r.dyk, ctx.b.op('Exp', [r.yk()])]);
  return r.axes.kind === 'none' ? local : expandTo(ctx, local, r.x);
});

const axesInput = [1];

export const rules: GradientRuleEntry[] = [
  { opType: 'ReduceSum', rule: reduceSum, nonDifferentiableInputs: axesInput },
  { opType: 'ReduceMean', rule: reduceMean, nonDifferentiableInputs: axesInput },
  { opType: 'ReduceMax', rule: reduceExtremum, nonDifferentiableInputs: axesInput },
  { opType: 'ReduceMin', rule: reduceExtremum, nonDifferentiableInputs: axesInput },
  { opType: 'ReduceL2', rule: reduceL2, nonDifferentiableInputs: axesInput },
  { opType: 'ReduceL1', rule: reduceL1, nonDifferentiableInputs: axesInput },
  { opType: 'ReduceSumSquare', rule: reduceSumSquare, nonDifferentiableInputs: axesInput },
  { opType: 'ReduceLogSumExp', rule: reduceLogSumExp, nonDifferentiableInputs: axesInput },
  { opType: 'ReduceLogSum', rule: reduceLogSum, nonDifferentiableInputs: axesInput },
];
