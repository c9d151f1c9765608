/**
 * DARTS-LS: one sigmoid gate per level, σ(α_l), weighting that level's distillation loss (sigmoids, not a
 * softmax over levels: levels are independent binary choices, and a softmax would make them compete for
 * one unit of weight), trained by the unrolled gradient with the finite-difference Hessian-vector product
 * (differentiable-search.ts). The cost term is the expected cost of a selection drawn from the gates.
 */
import { sigmoid } from './gates';
import { expectedCost, type SearchSpace } from './search-space';
import type { GateScheme } from './differentiable-search';

/** DARTS-LS's gate scheme over `space`. */
export function dartsGates(space: SearchSpace): GateScheme {
  return {
    name: 'DARTS-LS',
    gates(alpha) {
      const p = alpha.map(sigmoid);
      const derivative = p.map((x) => x * (1 - x));
      const c = expectedCost(space, p);
      return { gates: p, derivative, cost: c.value, costGrad: c.grad.map((g, l) => g * derivative[l]) };
    },
  };
}
