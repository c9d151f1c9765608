/**
 * The NAS objective every method is scored on: J(S) = L_val(w_K(S)) / L_val(w₀) + λ·cost(S), where w_K(S)
 * is the student after a short proxy training (K steps from the same start, same batches, fresh
 * optimizer) on the levels of S, and cost(S) the selection's cost share. This is the RL reward turned into
 * a loss: reward = (L_before − L_after)/L_before + λ·(1 − used cost) = 1 + λ − J, so λ means the same
 * trade-off for the policy and for the fixed selections.
 */
import { maskGates, maskLevels, type SearchSpace } from './search-space';
import type { ProxyTrainable } from './student-problem';

/** One selection's score. */
export interface SelectionEvaluation {
  mask: number;
  levels: string[];
  objective: number;
  /** L_val after the proxy training. */
  valLoss: number;
  /** valLoss / L_val(w₀). */
  relativeLoss: number;
  cost: number;
  /** Wall seconds of this evaluation's engine work (proxy training + validation). */
  seconds: number;
}

/** What the objective needs. */
export interface ObjectiveSettings {
  /** K: proxy training steps per evaluation. */
  proxySteps: number;
  lambda: number;
}

/** Scores selections by proxy training (see module doc). */
export class SelectionObjective {
  private constructor(
    private readonly problem: ProxyTrainable,
    private readonly validationLoss: () => Promise<number>,
    readonly space: SearchSpace,
    readonly settings: ObjectiveSettings,
    /** L_val(w₀). */
    readonly baseLoss: number,
  ) {}

  /** Measures L_val at the start (the scale of every objective). */
  static async create(
    problem: ProxyTrainable,
    validationLoss: () => Promise<number>,
    space: SearchSpace,
    settings: ObjectiveSettings,
  ): Promise<SelectionObjective> {
    await problem.reset();
    return new SelectionObjective(problem, validationLoss, space, settings, await validationLoss());
  }

  /** J of one selection: reset, K proxy steps on its levels, validation. */
  async evaluate(mask: number): Promise<SelectionEvaluation> {
    const t0 = performance.now();
    const gates = maskGates(this.problem.numLevels, mask);
    await this.problem.reset();
    for (let k = 0; k < this.settings.proxySteps; k++) {
      this.problem.useBatches(k);
      await this.problem.trainStep(gates);
    }
    const valLoss = await this.validationLoss();
    const cost = this.space.cost(mask);
    return {
      mask,
      levels: maskLevels(this.space.levelNames, mask),
      objective: valLoss / this.baseLoss + this.settings.lambda * cost,
      valLoss,
      relativeLoss: valLoss / this.baseLoss,
      cost,
      seconds: (performance.now() - t0) / 1000,
    };
  }
}
