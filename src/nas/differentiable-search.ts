/**
 * The loop DARTS-LS and GDAS-LS share: architecture parameters α (one per level), alternating an
 * architecture step on a validation batch (the unrolled gradient, unrolled-gradient.ts) with a student
 * step on a training batch under the gates, as DARTS's train_search.py alternates them. The searches
 * differ only in how α becomes gates (a GateScheme): DARTS's deterministic sigmoids, GDAS's hard Gumbel
 * samples. The architecture objective is the one every method is scored on (objective.ts):
 * L_val(w')/L_val(w₀) + λ·cost, with w' the unrolled student and the cost expected under the gates.
 */
import { RlpkdError } from '../errors';
import { Rng } from '../util/rng';
import { ArchitectureAdam } from './gates';
import { selectionLabel, type SearchSpace } from './search-space';
import { unrolledWeightGradient, type GatedBilevelProblem } from './unrolled-gradient';

/** A bi-level problem the search can also train and walk through batches. */
export interface GatedSearchProblem extends GatedBilevelProblem {
  /** Makes step `step`'s training and validation batches current (cycling through each set). */
  useBatches(step: number): void;
  /** One student optimizer step on L_train(w, c) on the current training batch. */
  trainStep(gates: readonly number[]): Promise<void>;
}

/** How α becomes the gates of one step. */
export interface GateScheme {
  readonly name: string;
  /**
   * The gates c (loss weights in [0, 1]) of step `step` of `steps`, ∂c_l/∂α_l, and the cost term's value
   * and gradient with respect to α.
   */
  gates(
    alpha: readonly number[],
    step: number,
    steps: number,
    rng: Rng,
  ): { gates: number[]; derivative: number[]; cost: number; costGrad: number[]; temperature?: number };
}

/** One architecture step, as the search curve records it. */
export interface GatedSearchPoint {
  step: number;
  /** L_val(w')/L_val(w₀) + λ·cost at this step's gates (L_val(w') on the step's validation batch). */
  objective: number;
  /** The gates the step used. */
  gates: number[];
  alpha: number[];
  /** The selection α gives now (levels with α > 0). */
  selection: string;
  temperature?: number;
}

/** Settings of a differentiable search. */
export interface GatedSearchOptions {
  /** Architecture steps (each followed by one student step). */
  steps: number;
  /** ξ of the virtual step. */
  xi: number;
  lambda: number;
  /** L_val of the starting student: the objective's scale. */
  baseLoss: number;
  /** α optimizer (DARTS: Adam, betas (0.5, 0.999), weight decay 1e-3). */
  archLr: number;
  archBetas?: [number, number];
  archWeightDecay?: number;
  seed: string;
  /** Called after every step (progress). */
  onStep?: (point: GatedSearchPoint) => void;
}

/** The selection α stands for: every level with α_l > 0, or the largest α alone when none is. */
export function deriveSelection(alpha: readonly number[]): number {
  let mask = 0;
  alpha.forEach((a, l) => {
    if (a > 0) mask |= 1 << l;
  });
  if (mask === 0) mask = 1 << alpha.indexOf(Math.max(...alpha));
  return mask;
}

/** Runs the search (see module doc); the problem's student ends where the last step left it. */
export async function runGatedSearch(
  problem: GatedSearchProblem,
  space: SearchSpace,
  scheme: GateScheme,
  options: GatedSearchOptions,
): Promise<{ selection: number; alpha: number[]; curve: GatedSearchPoint[] }> {
  const L = problem.numLevels;
  if (!(options.baseLoss > 0)) {
    throw new RlpkdError(`${scheme.name}: the starting validation loss is ${options.baseLoss}`, {
      hint: 'the objective is relative to it: the student must not already match the teacher exactly',
    });
  }
  const rng = new Rng(options.seed);
  // DARTS initializes α at 1e-3·N(0, 1): gates start unbiased (σ ≈ 0.5).
  const alpha = Array.from({ length: L }, () => 1e-3 * rng.normal());
  const adam = new ArchitectureAdam(L, {
    lr: options.archLr,
    betas: options.archBetas ?? [0.5, 0.999],
    weightDecay: options.archWeightDecay ?? 1e-3,
  });
  const curve: GatedSearchPoint[] = [];
  for (let step = 0; step < options.steps; step++) {
    problem.useBatches(step);
    const g = scheme.gates(alpha, step, options.steps, rng);
    const u = await unrolledWeightGradient(problem, g.gates, { xi: options.xi });
    const grad = u.gradient.map(
      (d, l) => (d / options.baseLoss) * g.derivative[l] + options.lambda * g.costGrad[l],
    );
    const point: GatedSearchPoint = {
      step,
      objective: u.valLossUnrolled / options.baseLoss + options.lambda * g.cost,
      gates: g.gates,
      alpha: [...alpha],
      selection: '',
      ...(g.temperature !== undefined ? { temperature: g.temperature } : {}),
    };
    adam.step(alpha, grad);
    point.selection = selectionLabel(space.levelNames, deriveSelection(alpha));
    curve.push(point);
    options.onStep?.(point);
    await problem.trainStep(g.gates);
  }
  return { selection: deriveSelection(alpha), alpha, curve };
}
