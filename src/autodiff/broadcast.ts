/**
 * Reduce-to-shape for broadcasting ops: the gradient of an input that numpy broadcasting expanded is the
 * output gradient summed over the expanded axes. Axes are decided at build time when the static shapes
 * settle it, otherwise at run time from Shape(), so a dynamic batch stays dynamic.
 */
import { GraphError } from '../errors';
import type { Dim } from '../onnx/types';
import { emitReduce, scalarTensorAttr, type EmitTarget } from './emit';

/** What unbroadcast needs besides the emit target. */
export interface UnbroadcastDeps extends EmitTarget {
  /** Static shape of `like` (undefined when even the rank is unknown). */
  likeShape: readonly Dim[] | undefined;
  /** Shape(like) as an int64 tensor (a constant when static). */
  shapeOfLike(): string;
}

/**
 * Axes of `gradShape` to sum so it becomes `likeShape` (right-aligned numpy rules), or undefined when a
 * symbolic or unknown dim of `like` could be 1 or not at run time.
 */
export function broadcastReductionAxes(
  gradShape: readonly Dim[],
  likeShape: readonly Dim[],
): number[] | undefined {
  const rg = gradShape.length;
  const rl = likeShape.length;
  if (rl > rg) return undefined;
  const axes: number[] = [];
  for (let i = 0; i < rg - rl; i++) axes.push(i);
  for (let j = 0; j < rl; j++) {
    const i = j + rg - rl;
    const dl = likeShape[j];
    const dg = gradShape[i];
    if (dl === 1) {
      if (dg !== 1) axes.push(i);
    } else if (typeof dl === 'number') {
      continue;
    } else if (dl === null || dl !== dg) {
      return undefined;
    }
  }
  return axes;
}

/** Sums `grad` over the broadcast axes and reshapes it to the shape of `like`. */
export function unbroadcast(
  t: UnbroadcastDeps,
  grad: string,
  gradShape: readonly Dim[] | undefined,
  label: string,
): string {
  const ls = t.likeShape;
  if (gradShape && ls) {
    if (ls.length > gradShape.length) {
      throw new GraphError(
        `${label}: gradient of rank ${gradShape.length} cannot be reduced to an input of rank ${ls.length}`,
        { hint: 'this is a bug in the gradient rule; please report it with the model' },
      );
    }
    const axes = broadcastReductionAxes(gradShape, ls);
    if (axes) {
      if (axes.length === 0) return grad;
      if (ls.length === 0) return emitReduce(t, 'ReduceSum', grad, [], false);
      const reduced = emitReduce(t, 'ReduceSum', grad, axes, true);
      return ls.length === gradShape.length ? reduced : t.b.op('Reshape', [reduced, t.shapeOfLike()]);
    }
  }
  return dynamicUnbroadcast(t, grad, gradShape?.length, label);
}

/**
 * Run-time axes: pad Shape(like) with leading 1s to the rank of grad, and sum every axis where the padded
 * shape is 1 (summing an axis that already has size 1 changes nothing).
 */
function dynamicUnbroadcast(
  t: UnbroadcastDeps,
  grad: string,
  gradRank: number | undefined,
  label: string,
): string {
  if (t.opset < 13) {
    throw new GraphError(
      `${label}: broadcasting over symbolic dims needs opset ≥ 13, the model has ${t.opset}`,
      {
        hint: 're-export the model with opset 13 or newer, or give static input shapes',
      },
    );
  }
  const b = t.b;
  const sl = t.shapeOfLike();
  const rl = t.likeShape?.length;
  let padded: string;
  let iota: string;
  if (gradRank !== undefined && rl !== undefined) {
    padded =
      gradRank > rl
        ? b.op('Concat', [t.ints(new Array<number>(gradRank - rl).fill(1)), sl], { axis: 0 })
        : sl;
    iota = t.ints(Array.from({ length: gradRank }, (_, i) => i));
  } else {
    const sg = b.op('Shape', [grad]);
    const rg = b.op('Size', [sg]);
    const missing = b.op('Reshape', [b.op('Sub', [rg, b.op('Size', [sl])]), t.ints([1])]);
    const ones = b.op('ConstantOfShape', [missing], { value: scalarTensorAttr(1, true) });
    padded = b.op('Concat', [ones, sl], { axis: 0 });
    iota = b.op('Range', [b.constInt64(0), rg, b.constInt64(1)]);
  }
  const axes = b.op('Compress', [iota, b.op('Equal', [padded, t.ints([1])])], { axis: 0 });
  const reduced = b.op('ReduceSum', [grad, axes], { keepdims: 1, noop_with_empty_axes: 1 });
  return b.op('Reshape', [reduced, sl]);
}
