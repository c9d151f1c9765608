/**
 * Which tensors and nodes lie on a differentiable path from the parameters to a loss. Only those nodes are
 * differentiated; integer/shape paths (Shape, Cast to int, Range, Equal, indices inputs, ...) carry no
 * gradient and pass through.
 */
import type { OnnxNode } from '../onnx/types';
import { GRADIENT_RULES } from './rules';

/**
 * Ops whose float outputs carry no gradient to their inputs (random, shape-derived or index-producing),
 * so a parameter reaching the loss only through them is not an error.
 */
const NON_DIFFERENTIABLE_OPS = new Set([
  'Shape',
  'Size',
  'ConstantOfShape',
  'Constant',
  'Range',
  'RandomNormalLike',
  'RandomUniformLike',
  'RandomNormal',
  'RandomUniform',
  'Bernoulli',
  'Multinomial',
  'EyeLike',
  'OneHot',
  'NonZero',
  'ArgMax',
  'ArgMin',
  'Equal',
  'Greater',
  'Less',
  'GreaterOrEqual',
  'LessOrEqual',
  'IsNaN',
  'IsInf',
  'Not',
  'And',
  'Or',
  'Xor',
  'NonMaxSuppression',
]);

/** For each input slot of `node`: can a gradient flow through it (float tensor, op and slot differentiable)? */
export function differentiableSlots(node: OnnxNode, isFloat: (name: string) => boolean): boolean[] {
  const isDefault = node.domain === '' || node.domain === 'ai.onnx';
  if (isDefault && NON_DIFFERENTIABLE_OPS.has(node.opType)) return node.inputs.map(() => false);
  const entry = isDefault ? GRADIENT_RULES.get(node.opType) : undefined;
  const skip = new Set(entry?.nonDifferentiableInputs ?? []);
  return node.inputs.map((name, i) => name !== '' && !skip.has(i) && isFloat(name));
}

/** True when a gradient rule exists for the node's op (default domain only). */
export function hasRule(node: OnnxNode): boolean {
  return (node.domain === '' || node.domain === 'ai.onnx') && GRADIENT_RULES.has(node.opType);
}

/**
 * Tensors on a differentiable path from any of `wrt` to `loss` (both ends included). `nodes` must be in
 * topological order.
 */
export function pathTensors(
  nodes: readonly OnnxNode[],
  wrt: readonly string[],
  loss: string,
  isFloat: (name: string) => boolean,
): Set<string> {
  const slots = new Map<OnnxNode, boolean[]>();
  for (const n of nodes) slots.set(n, differentiableSlots(n, isFloat));
  const forward = new Set(wrt);
  for (const n of nodes) {
    const s = slots.get(n)!;
    if (n.inputs.some((name, i) => s[i] && forward.has(name))) {
      for (const o of n.outputs) if (o && isFloat(o)) forward.add(o);
    }
  }
  const backward = new Set([loss]);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if (!n.outputs.some((o) => o && backward.has(o))) continue;
    const s = slots.get(n)!;
    n.inputs.forEach((name, i) => {
      if (s[i]) backward.add(name);
    });
  }
  const path = new Set<string>();
  for (const t of forward) if (backward.has(t)) path.add(t);
  return path;
}

/** Nodes (in the given order) that have an output and a differentiable input on `path`. */
export function pathNodes(
  nodes: readonly OnnxNode[],
  path: ReadonlySet<string>,
  isFloat: (name: string) => boolean,
): OnnxNode[] {
  return nodes.filter((n) => {
    if (!n.outputs.some((o) => o && path.has(o))) return false;
    const s = differentiableSlots(n, isFloat);
    return n.inputs.some((name, i) => s[i] && path.has(name));
  });
}
