/**
 * Gate parameterizations of the differentiable searches. DARTS-LS uses one independent sigmoid per level
 * (FairDARTS style: a level's gate does not compete with the others', unlike a softmax over levels, and
 * each level is a binary choice), GDAS-LS hard Gumbel samples of the same two-way choice.
 */
import type { Rng } from '../util/rng';

/** σ(x). */
export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** One hard Gumbel gate sample per level (see gumbelGates). */
export interface GumbelGates {
  /** 0/1 per level (at least one 1). */
  hard: number[];
  /** The relaxed sample σ((α + g₁ − g₀)/τ) per level. */
  soft: number[];
  /** ∂soft/∂α = soft·(1 − soft)/τ: the straight-through derivative of each hard gate. */
  derivative: number[];
}

/**
 * Hard Gumbel-max gates: level l is on when α_l + g₁ > 0 + g₀ for Gumbel noises g₀, g₁ (their difference
 * is logistic), the relaxed two-way softmax at temperature τ gives the straight-through derivative (GDAS:
 * hard forward, soft backward). A sample with every gate off turns on the level of largest relaxed value,
 * so every sample distils at least one level (like the policy's min_levels).
 */
export function gumbelGates(alpha: readonly number[], tau: number, rng: Rng): GumbelGates {
  const gumbel = () => -Math.log(-Math.log(Math.min(Math.max(rng.next(), 1e-12), 1 - 1e-12)));
  const soft = alpha.map((a) => sigmoid((a + gumbel() - gumbel()) / tau));
  const hard: number[] = soft.map((s) => (s > 0.5 ? 1 : 0));
  if (!hard.includes(1)) hard[soft.indexOf(Math.max(...soft))] = 1;
  return { hard, soft, derivative: soft.map((s) => (s * (1 - s)) / tau) };
}

/** GDAS's linear temperature schedule from `max` at step 0 to `min` at the last of `steps` steps. */
export function annealedTemperature(step: number, steps: number, max = 10, min = 0.1): number {
  if (steps <= 1) return min;
  return max - ((max - min) * step) / (steps - 1);
}

/** Adam on the architecture parameters (float64), as DARTS's α optimizer: decoupled from the student's. */
export class ArchitectureAdam {
  private readonly m: number[];
  private readonly v: number[];
  private t = 0;

  constructor(
    size: number,
    private readonly options: { lr: number; betas: [number, number]; weightDecay: number; eps?: number },
  ) {
    this.m = new Array<number>(size).fill(0);
    this.v = new Array<number>(size).fill(0);
  }

  /** x ← x − lr·m̂/(√v̂ + ε) with L2 weight decay folded into the gradient (torch.optim.Adam's). */
  step(x: number[], grad: readonly number[]): void {
    const { lr, betas, weightDecay } = this.options;
    const eps = this.options.eps ?? 1e-8;
    this.t++;
    for (let i = 0; i < x.length; i++) {
      const g = grad[i] + weightDecay * x[i];
      this.m[i] = betas[0] * this.m[i] + (1 - betas[0]) * g;
      this.v[i] = betas[1] * this.v[i] + (1 - betas[1]) * g * g;
      const mHat = this.m[i] / (1 - betas[0] ** this.t);
      const vHat = this.v[i] / (1 - betas[1] ** this.t);
      x[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  }
}
