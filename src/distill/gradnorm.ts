/**
 * GradNorm (Chen, Badrinarayanan, Lee, Rabinovich, ICML 2018) for per-level distillation losses, as the
 * paper states it. Level weights w_l start equal and always sum to 1; each step, given g_l = ‖∇_W L_l‖ (the
 * unweighted level loss's gradient norm at the shared parameter W) and the levels' losses:
 *
 *   G_l = w_l·g_l            L̃_l = L_l(t)/L_l(0)           r_l = L̃_l / mean_j L̃_j
 *   target_l = mean(G)·r_l^α (held constant)               L_grad = Σ_l |G_l − target_l|
 *   ∂L_grad/∂w_l = sign(G_l − target_l)·g_l                (G_l is linear in w_l; no double backward)
 *
 * then one optimizer step on w (Adam by default, lr 1e-2: the seed's setting; plain gradient descent on
 * request), a floor at `minWeight` (renormalization alone does not keep weights positive, hosseinshn/GradNorm
 * #7) and renormalization to Σw = 1. Only w moves: the network is trained on Σ w_l·L_l with w fed as data.
 *
 * Levels not selected by any sample of a step are inactive: they add nothing to mean(G) or mean(L̃), their
 * weight gets no gradient (it changes only through the renormalization), and L_l(0) is the level's loss the
 * first time it is active. The training-rate loss L_l is the caller's choice; the distillation trainer
 * passes the level's mean loss over the samples that selected it, so a level picked for few images does
 * not look like it trained fast.
 */
import { RlpkdError } from '../errors';

/** Settings of a GradNorm instance. */
export interface GradNormOptions {
  /** Level names; the weight vector follows their order. */
  levels: readonly string[];
  /** Asymmetry α (default 1.5). */
  alpha?: number;
  /** Learning rate of the weights (default 1e-2). */
  lr?: number;
  /** 'adam' (default; β 0.9/0.999, ε 1e-8) or 'sgd' (w −= lr·∂L_grad/∂w). */
  optimizer?: 'adam' | 'sgd';
  betas?: [number, number];
  eps?: number;
  /** Weights are floored here before renormalizing (default 1e-4). */
  minWeight?: number;
  /** Starting weights (normalized to sum 1); default 1/L each (0.25 for four levels). */
  initialWeights?: readonly number[];
}

/** What one training step measured, per level. */
export interface GradNormObservation {
  /** g_l = ‖∇_W L_l‖ of the unweighted level loss that was trained. */
  gradNorms: ArrayLike<number>;
  /** L_l(t) for the training rate. */
  losses: ArrayLike<number>;
  /** Levels that took part in the step (default: all). */
  active?: ArrayLike<boolean | number>;
}

/** What one GradNorm update computed (NaN marks inactive levels). */
export interface GradNormStepResult {
  /** 1-based index of the update. */
  step: number;
  /** Weights the step's loss used (before the update). */
  weights: number[];
  /** G_l = w_l·g_l. */
  gradNorms: number[];
  /** mean(G)·r_l^α. */
  targets: number[];
  /** r_l, the relative inverse training rate. */
  ratios: number[];
  /** L_grad = Σ_l |G_l − target_l|. */
  lossGrad: number;
  /** ∂L_grad/∂w_l. */
  gradients: number[];
  /** Weights after the update and the renormalization. */
  updated: number[];
}

/** One entry of the weight history. */
export interface GradNormHistoryEntry {
  step: number;
  weights: number[];
  /** L_grad of the update (absent for the starting weights). */
  lossGrad?: number;
}

/** JSON form of a GradNorm's state (saved in checkpoints; numbers survive JSON exactly). */
export interface GradNormState {
  version: 1;
  levels: string[];
  weights: number[];
  initialLosses: (number | null)[];
  adam: { m: number[]; v: number[]; t: number[] };
  step: number;
  history: GradNormHistoryEntry[];
}

interface Resolved {
  alpha: number;
  lr: number;
  optimizer: 'adam' | 'sgd';
  betas: [number, number];
  eps: number;
  minWeight: number;
}

/** GradNorm level weights (see module doc). */
export class GradNorm {
  readonly levels: readonly string[];
  readonly config: Resolved;
  private w: Float64Array;
  private readonly initial: (number | undefined)[];
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private readonly t: Float64Array;
  private steps = 0;
  private readonly entries: GradNormHistoryEntry[] = [];

  constructor(options: GradNormOptions) {
    const L = options.levels.length;
    if (L === 0) throw new RlpkdError('GradNorm: no levels given');
    this.levels = [...options.levels];
    this.config = {
      alpha: options.alpha ?? 1.5,
      lr: options.lr ?? 1e-2,
      optimizer: options.optimizer ?? 'adam',
      betas: options.betas ?? [0.9, 0.999],
      eps: options.eps ?? 1e-8,
      minWeight: options.minWeight ?? 1e-4,
    };
    const c = this.config;
    if (!(c.alpha >= 0 && Number.isFinite(c.alpha)))
      throw new RlpkdError(`GradNorm: alpha must be ≥ 0, got ${c.alpha}`);
    if (!(c.lr > 0 && Number.isFinite(c.lr))) throw new RlpkdError(`GradNorm: lr must be > 0, got ${c.lr}`);
    if (!(c.minWeight > 0 && c.minWeight * L < 1)) {
      throw new RlpkdError(`GradNorm: minWeight must be in (0, 1/${L}), got ${c.minWeight}`);
    }
    const init = options.initialWeights ?? new Array<number>(L).fill(1);
    if (init.length !== L || init.some((x) => !(x > 0 && Number.isFinite(x)))) {
      throw new RlpkdError(
        `GradNorm: initialWeights must be ${L} positive numbers, got [${init.join(', ')}]`,
      );
    }
    const sum = init.reduce((a, b) => a + b, 0);
    this.w = Float64Array.from(init, (x) => x / sum);
    this.initial = new Array<number | undefined>(L).fill(undefined);
    this.m = new Float64Array(L);
    this.v = new Float64Array(L);
    this.t = new Float64Array(L);
    this.entries.push({ step: 0, weights: Array.from(this.w) });
  }

  /** Current weights (sum 1), in level order. */
  get weights(): number[] {
    return Array.from(this.w);
  }

  /** Current weights as the float32 [L] tensor data the loss graph's weights input takes. */
  weightsFloat32(): Float32Array {
    return Float32Array.from(this.w);
  }

  /** Updates taken so far. */
  get step(): number {
    return this.steps;
  }

  /** L_l(0) per level (undefined until the level was first active). */
  get initialLosses(): (number | undefined)[] {
    return [...this.initial];
  }

  /** The weights after every update (entry 0: the starting weights). */
  get history(): readonly GradNormHistoryEntry[] {
    return this.entries;
  }

  /** One GradNorm update from a step's measurements; returns what it computed. */
  update(obs: GradNormObservation): GradNormStepResult {
    const L = this.levels.length;
    const c = this.config;
    if (obs.gradNorms.length !== L || obs.losses.length !== L) {
      throw new RlpkdError(
        `GradNorm.update: expected ${L} gradient norms and losses, got ${obs.gradNorms.length} and ${obs.losses.length}`,
      );
    }
    const active = Array.from({ length: L }, (_, l) => (obs.active ? Boolean(obs.active[l]) : true));
    for (let l = 0; l < L; l++) {
      if (!active[l]) continue;
      const g = obs.gradNorms[l];
      const loss = obs.losses[l];
      if (!(g >= 0 && Number.isFinite(g)) || !(loss >= 0 && Number.isFinite(loss))) {
        throw new RlpkdError(
          `GradNorm.update: level ${this.levels[l]} has gradient norm ${g} and loss ${loss}; both must be finite and ≥ 0`,
          { hint: 'the distillation loss diverged; lower distill.optimizer.lr or set distill.grad_clip' },
        );
      }
      if (this.initial[l] === undefined && loss > 0) this.initial[l] = loss;
    }
    // A level counts once it has a positive starting loss (a zero loss has no training rate).
    const used = active.map((a, l) => a && this.initial[l] !== undefined);
    const idx = used.flatMap((u, l) => (u ? [l] : []));
    const weights = Array.from(this.w);
    const nan = () => new Array<number>(L).fill(Number.NaN);
    const G = nan();
    const targets = nan();
    const ratios = nan();
    const gradients = new Array<number>(L).fill(0);
    let lossGrad = 0;
    if (idx.length > 0) {
      const tilde = nan();
      for (const l of idx) {
        G[l] = this.w[l] * obs.gradNorms[l];
        tilde[l] = obs.losses[l] / this.initial[l]!;
      }
      const meanG = idx.reduce((s, l) => s + G[l], 0) / idx.length;
      const meanTilde = idx.reduce((s, l) => s + tilde[l], 0) / idx.length;
      for (const l of idx) {
        ratios[l] = meanTilde > 0 ? tilde[l] / meanTilde : 1;
        targets[l] = meanG * ratios[l] ** c.alpha;
        const diff = G[l] - targets[l];
        lossGrad += Math.abs(diff);
        gradients[l] = Math.sign(diff) * obs.gradNorms[l];
      }
      this.applyGradients(idx, gradients);
    }
    this.steps++;
    const updated = Array.from(this.w);
    this.entries.push({ step: this.steps, weights: updated, lossGrad });
    return { step: this.steps, weights, gradNorms: G, targets, ratios, lossGrad, gradients, updated };
  }

  private applyGradients(idx: readonly number[], gradients: readonly number[]): void {
    const c = this.config;
    for (const l of idx) {
      const g = gradients[l];
      if (c.optimizer === 'sgd') {
        this.w[l] -= c.lr * g;
        continue;
      }
      const [b1, b2] = c.betas;
      this.t[l] += 1;
      this.m[l] = b1 * this.m[l] + (1 - b1) * g;
      this.v[l] = b2 * this.v[l] + (1 - b2) * g * g;
      const mHat = this.m[l] / (1 - b1 ** this.t[l]);
      const vHat = this.v[l] / (1 - b2 ** this.t[l]);
      this.w[l] -= (c.lr * mHat) / (Math.sqrt(vHat) + c.eps);
    }
    let sum = 0;
    for (let l = 0; l < this.w.length; l++) {
      this.w[l] = Math.max(this.w[l], c.minWeight);
      sum += this.w[l];
    }
    for (let l = 0; l < this.w.length; l++) this.w[l] /= sum;
  }

  /** The state as JSON-serializable data. */
  toJSON(): GradNormState {
    return {
      version: 1,
      levels: [...this.levels],
      weights: Array.from(this.w),
      initialLosses: this.initial.map((x) => (x === undefined ? null : x)),
      adam: { m: Array.from(this.m), v: Array.from(this.v), t: Array.from(this.t) },
      step: this.steps,
      history: this.entries.map((e) => ({ ...e, weights: [...e.weights] })),
    };
  }

  /** Restores a state saved by `toJSON` (the levels must be the same). */
  load(state: GradNormState): void {
    const L = this.levels.length;
    if (state?.version !== 1) throw new RlpkdError('GradNorm state: unknown format (expected version 1)');
    if (state.levels.length !== L || state.levels.some((n, i) => n !== this.levels[i])) {
      throw new RlpkdError(
        `GradNorm state is for levels [${state.levels.join(', ')}], this run distils [${this.levels.join(', ')}]`,
      );
    }
    this.w = Float64Array.from(state.weights);
    state.initialLosses.forEach((x, l) => (this.initial[l] = x === null ? undefined : x));
    this.m.set(state.adam.m);
    this.v.set(state.adam.v);
    this.t.set(state.adam.t);
    this.steps = state.step;
    this.entries.length = 0;
    this.entries.push(...state.history.map((e) => ({ ...e, weights: [...e.weights] })));
  }
}
