/** Small utilities the gradient rules share: reading static shapes and constant inputs, error helpers. */
import { GraphError } from '../errors';
import type { Dim } from '../onnx/types';
import type { GradContext } from './types';

/** The output gradient of a single-output node (the driver only calls a rule when one exists). */
export function dy0(ctx: GradContext): string {
  const d = ctx.dY[0];
  if (!d) throw new GraphError(`${ctx.label}: no gradient reaches output 0`);
  return d;
}

/** Static shape of a forward tensor, or undefined when unknown. */
export function staticShapeOf(ctx: GradContext, name: string): Dim[] | undefined {
  try {
    return ctx.info(name).shape;
  } catch {
    return undefined;
  }
}

/** Rank of a forward tensor; throws a GraphError naming the node when unknown. */
export function rankOf(ctx: GradContext, name: string): number {
  const s = staticShapeOf(ctx, name);
  if (!s) {
    throw new GraphError(`${ctx.label}: the rank of '${name}' is unknown, the gradient needs it`, {
      hint: 'give the graph inputs static ranks (inputShapes) or add value_info for this tensor',
    });
  }
  return s.length;
}

/** The values of a compile-time constant input as numbers, or undefined when not constant. */
export function constInts(ctx: GradContext, name: string): number[] | undefined {
  if (!name) return undefined;
  let v;
  try {
    v = ctx.info(name).value;
  } catch {
    return undefined;
  }
  if (!v) return undefined;
  return Array.from(v as ArrayLike<number | bigint>, (x) => Number(x));
}

/** True when every dim is a number. */
export function isStaticShape(s: readonly Dim[] | undefined): s is number[] {
  return s !== undefined && s.every((d) => typeof d === 'number');
}

/** Normalizes a possibly negative axis against a rank, with an error naming the node. */
export function normalizeAxis(ctx: GradContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new GraphError(`${ctx.label}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Result array with the gradient for input `i` set where needed. */
export function only(ctx: GradContext, grads: Record<number, () => string>): (string | undefined)[] {
  return ctx.node.inputs.map((_, i) => (ctx.needs[i] && grads[i] ? grads[i]() : undefined));
}
