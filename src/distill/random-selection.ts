/**
 * `distill.selection: random` — the ablation's "random policy at the RL policy's cost". Each image gets a
 * random non-empty subset of levels. Among all distributions over the 2^L − 1 non-empty subsets whose
 * expected cost is the target, it uses the one of maximum entropy: P(S) ∝ exp(−β·cost(S)), with β found by
 * bisection (the mean cost falls monotonically as β grows). So it is as random as the cost allows: β = 0
 * (uniform over subsets) when the target is that mean, and it concentrates on the cheapest (dearest)
 * subsets only as the target nears the cheapest single level (every level). Draws are seeded.
 */
import { RlpkdError } from '../errors';
import { Rng, type Seed } from '../util/rng';

/** The distribution subsets are drawn from. */
export interface RandomSubsetDistribution {
  /** Every non-empty subset as level indices (ascending), in bit-mask order. */
  subsets: number[][];
  /** Probability of each subset (sums to 1). */
  probs: number[];
  /** Cost of each subset (Σ of its levels' costs). */
  costs: number[];
  /** The exponent solved for (±Infinity at the ends of the cost range). */
  beta: number;
  /** Expected cost under `probs` (equals the target within 1e-9 inside the reachable range). */
  meanCost: number;
}

function weighted(costs: readonly number[], beta: number): { probs: number[]; mean: number } {
  // Shifted by the minimum exponent so exp() never overflows.
  const e = costs.map((c) => -beta * c);
  const top = Math.max(...e);
  const w = e.map((x) => Math.exp(x - top));
  const z = w.reduce((a, b) => a + b, 0);
  const probs = w.map((x) => x / z);
  return { probs, mean: probs.reduce((a, p, i) => a + p * costs[i], 0) };
}

/**
 * The maximum-entropy distribution over non-empty subsets of levels with expected cost `target` (see
 * module doc). A target below the cheapest level or above the sum of all costs is clamped to that end.
 */
export function randomSubsetDistribution(
  levelCosts: readonly number[],
  target: number,
): RandomSubsetDistribution {
  const L = levelCosts.length;
  if (L === 0) throw new RlpkdError('random selection: no levels to draw from');
  if (!(target > 0))
    throw new RlpkdError(`random selection: the target cost must be positive, got ${target}`);
  const subsets: number[][] = [];
  for (let m = 1; m < 1 << L; m++) subsets.push([...Array(L).keys()].filter((l) => m & (1 << l)));
  const costs = subsets.map((s) => s.reduce((a, l) => a + levelCosts[l], 0));
  const lo = Math.min(...costs);
  const hi = Math.max(...costs);
  const point = (c: number, beta: number): RandomSubsetDistribution => {
    const probs = costs.map((x): number => (x === c ? 1 : 0));
    const z = probs.reduce((a, b) => a + b, 0);
    return { subsets, costs, beta, probs: probs.map((p) => p / z), meanCost: c };
  };
  if (target <= lo + 1e-12) return point(lo, Number.POSITIVE_INFINITY);
  if (target >= hi - 1e-12) return point(hi, Number.NEGATIVE_INFINITY);
  // Bracket β: mean(β) decreases from hi (β → −∞) to lo (β → +∞).
  let a = -1;
  let b = 1;
  while (weighted(costs, a).mean < target) a *= 2;
  while (weighted(costs, b).mean > target) b *= 2;
  for (let i = 0; i < 200 && b - a > 1e-13 * Math.max(1, Math.abs(a), Math.abs(b)); i++) {
    const m = (a + b) / 2;
    if (weighted(costs, m).mean > target) a = m;
    else b = m;
  }
  const beta = (a + b) / 2;
  const { probs, mean } = weighted(costs, beta);
  return { subsets, costs, beta, probs, meanCost: mean };
}

/** Draws `n` subsets (level indices) from the distribution with a generator seeded by `seed`. */
export function drawRandomSubsets(dist: RandomSubsetDistribution, n: number, seed: Seed): number[][] {
  const rng = new Rng(seed);
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const u = rng.next();
    let k = 0;
    let acc = dist.probs[0];
    while (u >= acc && k < dist.probs.length - 1) acc += dist.probs[++k];
    out.push(dist.subsets[k]);
  }
  return out;
}
