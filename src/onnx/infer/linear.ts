/** Shape rules for MatMul (numpy semantics) and Gemm. */
import { getInt } from '../attributes';
import type { Dim } from '../types';
import { broadcastShapes, tensor } from './fold';
import type { ShapeRule } from './types';

function checkInner(fail: (m: string) => never, k1: Dim, k2: Dim): void {
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
    fail(`inner dimensions differ: ${k1} vs ${k2}`);
  }
}

const matMul: ShapeRule = (ctx) => {
  const a = ctx.shape(0);
  const b = ctx.shape(1);
  const dt = ctx.dataType(0);
  if (!a || !b) return [tensor(dt, undefined)];
  if (a.length === 0 || b.length === 0) return ctx.fail('inputs must have rank >= 1');
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  checkInner(ctx.fail, a2[a2.length - 1], b2[b2.length - 2]);
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)], ctx.fail) ?? [];
  const out: Dim[] = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]);
  if (b.length > 1) out.push(b2[b2.length - 1]);
  return [tensor(dt, out)];
};

const gemm: ShapeRule = (ctx) => {
  const a = ctx.shape(0);
  const b = ctx.shape(1);
  const dt = ctx.dataType(0);
  const transA = getInt(ctx.node, 'transA', 0) === 1;
  const transB = getInt(ctx.node, 'transB', 0) === 1;
  if (a && a.length !== 2) return ctx.fail(`input A must have rank 2, got ${a.length}`);
  if (b && b.length !== 2) return ctx.fail(`input B must have rank 2, got ${b.length}`);
  const m: Dim = a ? a[transA ? 1 : 0] : null;
  const n: Dim = b ? b[transB ? 0 : 1] : null;
  if (a && b) checkInner(ctx.fail, a[transA ? 0 : 1], b[transB ? 1 : 0]);
  return [tensor(dt, [m, n])];
};

/** Shape rules of this family, by op type. */
export const rules: Record<string, ShapeRule> = { MatMul: matMul, Gemm: gemm };
