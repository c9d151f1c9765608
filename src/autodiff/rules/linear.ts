/**
 * Gradients of MatMul and Gemm in standard ONNX ops.
 *
 * MatMul follows numpy semantics: a 1-D operand is promoted (A → [1, K], B → [K, 1]) and its axis dropped
 * from the result, batch dims broadcast. dA = dY·Bᵀ and dB = Aᵀ·dY, summed over the batch dims each operand
 * was broadcast along. When B is a plain matrix (a linear layer), dB is one Gemm over the flattened batch
 * (no per-batch products to sum) and dA one MatMul. Gemm maps every transA/transB combination to a single
 * Gemm per input with alpha folded in; dC = beta · dY summed to C's broadcast shape.
 */
import { GraphError } from '../../errors';
import { attr, getFloat, getInt, type AttributeInput } from '../../onnx/attributes';
import type { Dim } from '../../onnx/types';
import type { GradContext, GradientRuleEntry } from '../types';

function shapeOf(ctx: GradContext, name: string): Dim[] {
  const s = ctx.info(name).shape;
  if (!s) throw new GraphError(`${ctx.label}: the rank of '${name}' is unknown`);
  return s;
}

/** Numpy broadcast of two static-or-symbolic batch shapes (null where it cannot be told). */
function broadcastDims(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const da = i - (r - a.length) >= 0 ? a[i - (r - a.length)] : 1;
    const db = i - (r - b.length) >= 0 ? b[i - (r - b.length)] : 1;
    if (da === 1) out.push(db);
    else if (db === 1 || da === db) out.push(da);
    else if (typeof da === 'number' && typeof db !== 'number') out.push(da);
    else if (typeof db === 'number' && typeof da !== 'number') out.push(db);
    else out.push(null);
  }
  return out;
}

/** Transpose swapping the last two axes of a rank-r tensor. */
function swapLast(ctx: GradContext, t: string, r: number): string {
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return ctx.b.op('Transpose', [t], { perm });
}

const matMul: GradientRuleEntry = {
  opType: 'MatMul',
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY) return [];
    const { b, needs } = ctx;
    const [A, B] = ctx.node.inputs;
    const aShape = shapeOf(ctx, A);
    const bShape = shapeOf(ctx, B);
    const ra = aShape.length;
    const rb = bShape.length;
    if (ra === 0 || rb === 0) throw new GraphError(`${ctx.label}: MatMul operands must have rank >= 1`);
    if (ra === 1 && rb === 1) {
      return [needs[0] ? b.op('Mul', [dY, B]) : undefined, needs[1] ? b.op('Mul', [dY, A]) : undefined];
    }
    // Promote 1-D operands and give dY the matching unit axes.
    const a2 = ra === 1 ? ctx.unsqueeze(A, [0]) : A;
    const b2 = rb === 1 ? ctx.unsqueeze(B, [1]) : B;
    const a2Shape: Dim[] = ra === 1 ? [1, aShape[0]] : aShape;
    const b2Shape: Dim[] = rb === 1 ? [bShape[0], 1] : bShape;
    let dY2 = dY;
    if (rb === 1) dY2 = ctx.unsqueeze(dY2, [-1]);
    if (ra === 1) dY2 = ctx.unsqueeze(dY2, [-2]);
    const batch = broadcastDims(a2Shape.slice(0, -2), b2Shape.slice(0, -2));
    const r2 = batch.length + 2;
    const [m, k] = a2Shape.slice(-2);
    const n = b2Shape[b2Shape.length - 1];

    let dA: string | undefined;
    if (needs[0]) {
      // [batch…, M, K]; a matrix B broadcasts with no batch to sum.
      const g = b.op(
        'MatMul',
        [dY2, swapLast(ctx, b2, b2Shape.length)],
        {},
        { name: `${ctx.node.name}_grad_da` },
      );
      if (ra === 1)
        dA = ctx.reduceSum(
          g,
          Array.from({ length: r2 - 1 }, (_, i) => i),
          false,
        );
      else if (b2Shape.length === 2) dA = g;
      else dA = ctx.unbroadcast(g, A, [...batch, m, k]);
    }

    let dB: string | undefined;
    if (needs[1]) {
      if (b2Shape.length === 2) {
        // One Gemm over the flattened batch: dB = A_flatᵀ · dY_flat.
        if (typeof k !== 'number' || typeof n !== 'number') {
          throw new GraphError(`${ctx.label}: the inner dims of a matrix operand must be static`);
        }
        const aFlat = a2Shape.length === 2 ? a2 : b.op('Reshape', [a2, ctx.ints([-1, k])]);
        const dyFlat = a2Shape.length === 2 ? dY2 : b.op('Reshape', [dY2, ctx.ints([-1, n])]);
        const g = b.op('Gemm', [aFlat, dyFlat], { transA: 1 }, { name: `${ctx.node.name}_grad_db` });
        dB = rb === 1 ? b.op('Reshape', [g, ctx.ints([k])]) : g;
      } else {
        const g = b.op(
          'MatMul',
          [swapLast(ctx, a2, a2Shape.length), dY2],
          {},
          { name: `${ctx.node.name}_grad_db` },
        );
        dB = ctx.unbroadcast(g, B, [...batch, k, n]);
      }
    }
    return [dA, dB];
  },
};

const gemm: GradientRuleEntry = {
  opType: 'Gemm',
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY) return [];
    const { b, needs } = ctx;
    const [A, B, C] = ctx.node.inputs;
    const transA = getInt(ctx.node, 'transA', 0) === 1;
    const transB = getInt(ctx.node, 'transB', 0) === 1;
    const alpha = getFloat(ctx.node, 'alpha', 1);
    const beta = getFloat(ctx.node, 'beta', 1);
    const scaled: Record<string, AttributeInput> = alpha === 1 ? {} : { alpha: attr.float(alpha) };
    const name = ctx.node.name;
    let dA: string | undefined;
    if (needs[0]) {
      dA = transA
        ? b.op('Gemm', [B, dY], { ...scaled, transA: transB ? 1 : 0, transB: 1 }, { name: `${name}_grad_da` })
        : b.op('Gemm', [dY, B], { ...scaled, transB: transB ? 0 : 1 }, { name: `${name}_grad_da` });
    }
    let dB: string | undefined;
    if (needs[1]) {
      dB = transB
        ? b.op('Gemm', [dY, A], { ...scaled, transA: 1, transB: transA ? 1 : 0 }, { name: `${name}_grad_db` })
        : b.op('Gemm', [A, dY], { ...scaled, transA: transA ? 0 : 1 }, { name: `${name}_grad_db` });
    }
    let dC: string | undefined;
    if (C && needs[2]) {
      if (beta === 0) {
        dC = ctx.zerosLike(C);
      } else {
        const y = ctx.node.outputs[0];
        const yShape = ctx.info(y).shape;
        const summed = ctx.unbroadcast(dY, C, yShape);
        dC = beta === 1 ? summed : b.op('Mul', [summed, ctx.scalar(beta)]);
      }
    }
    return [dA, dB, dC];
  },
};

export const rules: GradientRuleEntry[] = [matMul, gemm];
