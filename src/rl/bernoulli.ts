/**
 * Bernoulli-on-logits distributions and the decision constraints (budget masking, `minLevels` forcing)
 * in plain float64 TypeScript. Sampling, evaluation and the PPO loss all classify decisions with the same
 * `DecisionTracker`, so a stored action always carries the log-prob of the distribution that produced it.
 */
import { RlpkdError } from '../errors';

/** How a decision is made: sampled from its logit, or fixed by the constraints (probability 1). */
export enum DecisionKind {
  /** a ~ Bernoulli(sigmoid(z)). */
  Free = 0,
  /** a = 1 with probability 1 (needed to reach `minLevels`); log-prob 0, entropy 0. */
  ForcedOn = 1,
  /** a = 0 with probability 1 (the level costs more than the remaining budget); log-prob 0, entropy 0. */
  ForcedOff = 2,
}

/** The constraints an episode's decisions obey. */
export interface DecisionConstraints {
  /** Cost of each decision's level, in decision order (shares of the full pyramid; Σ = 1 usually). */
  costs: readonly number[];
  /** At least this many levels are selected per episode (default 1). */
  minLevels: number;
}

/** Slack for comparing a cost with the remaining budget (costs are sums of float shares). */
export const BUDGET_TOLERANCE = 1e-9;

/** log(1 + e^x) without overflow or cancellation. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** 1 / (1 + e^−z), stable for large |z|. */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** log P(a | z) for a free Bernoulli decision on logit z: −softplus((1 − 2a)·z). */
export function bernoulliLogProb(z: number, a: number): number {
  return -softplus(a ? -z : z);
}

/** Entropy of Bernoulli(sigmoid(z)) in nats: softplus(z) − z·sigmoid(z). */
export function bernoulliEntropy(z: number): number {
  return softplus(z) - z * sigmoid(z);
}

/**
 * Walks an episode's decisions in order, tracking the budget spent and the levels selected, and says what
 * kind each next decision is. Rules, with `need = minLevels − selected`:
 * - a level costing more than the remaining budget is ForcedOff, unless fewer than `need` decisions
 *   would be left after it, in which case `minLevels` wins and it is ForcedOn (the budget is overrun);
 * - an affordable level is ForcedOn when fewer than `need` later levels are affordable now;
 * - otherwise it is Free.
 */
export class DecisionTracker {
  private k = 0;
  private used = 0;
  private selected = 0;

  constructor(
    private readonly constraints: DecisionConstraints,
    /** The episode's budget as a share of the full pyramid (≥ 1, or Infinity, means unconstrained). */
    private readonly budget: number,
  ) {
    if (!(budget > 0)) throw new RlpkdError(`DecisionTracker: budget must be > 0, got ${budget}`);
  }

  /** Index of the next decision. */
  get index(): number {
    return this.k;
  }

  /** Cost spent so far. */
  get usedCost(): number {
    return this.used;
  }

  /** The kind of the next decision. */
  nextKind(): DecisionKind {
    const { costs, minLevels } = this.constraints;
    const L = costs.length;
    if (this.k >= L) throw new RlpkdError(`DecisionTracker: all ${L} decisions were already made`);
    const remaining = this.budget - this.used;
    const affordable = (j: number): boolean => costs[j] <= remaining + BUDGET_TOLERANCE;
    const need = minLevels - this.selected;
    if (!affordable(this.k))
      return need > 0 && L - 1 - this.k < need ? DecisionKind.ForcedOn : DecisionKind.ForcedOff;
    if (need <= 0) return DecisionKind.Free;
    let laterAffordable = 0;
    for (let j = this.k + 1; j < L; j++) if (affordable(j)) laterAffordable++;
    return laterAffordable < need ? DecisionKind.ForcedOn : DecisionKind.Free;
  }

  /** Records the decision taken at the current index and moves on. */
  push(action: number): void {
    if (action) {
      this.used += this.constraints.costs[this.k];
      this.selected++;
    }
    this.k++;
  }
}

/** Kind of every decision of an episode whose actions are known (teacher forcing). */
export function decisionKinds(
  actions: ArrayLike<number>,
  budget: number,
  constraints: DecisionConstraints,
): Uint8Array {
  const L = constraints.costs.length;
  if (actions.length !== L)
    throw new RlpkdError(`decisionKinds: expected ${L} actions, got ${actions.length}`);
  const t = new DecisionTracker(constraints, budget);
  const kinds = new Uint8Array(L);
  for (let k = 0; k < L; k++) {
    kinds[k] = t.nextKind();
    t.push(actions[k]);
  }
  return kinds;
}

/** Log-prob, entropy and P(a=1) of one decision given its logit and kind; throws for an impossible action. */
export function constrainedDecision(
  z: number,
  action: number,
  kind: DecisionKind,
): { logProb: number; entropy: number; probOne: number } {
  if (kind === DecisionKind.Free) {
    return { logProb: bernoulliLogProb(z, action), entropy: bernoulliEntropy(z), probOne: sigmoid(z) };
  }
  const forced = kind === DecisionKind.ForcedOn ? 1 : 0;
  if ((action ? 1 : 0) !== forced) {
    throw new RlpkdError(
      `action ${action} is impossible: the decision is forced to ${forced} by ${
        forced ? 'minLevels' : 'the budget'
      }`,
      { hint: 'evaluate actions with the same budgets, costs and minLevels they were sampled under' },
    );
  }
  return { logProb: 0, entropy: 0, probOne: forced };
}
