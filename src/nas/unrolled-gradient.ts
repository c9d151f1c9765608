/**
 * The unrolled (second-order) architecture gradient of DARTS (Liu et al., ICLR 2019, eq. 7-8) for gates
 * that only weight the training loss. With L_train(w, c) = Σ_l c_l·L_l(w) and a validation loss that
 * does not read c, the first-order gradient ∂L_val(w)/∂c is zero (DARTS would collapse to its cost
 * term), while the unrolled one is not:
 *   w' = w − ξ·∇_w L_train(w, c)
 *   ∂L_val(w')/∂c_l = −ξ·∇²_{c_l,w} L_train(w, c)·∇_{w'} L_val(w')
 *                  ≈ −ξ·(∂L_train/∂c_l (w⁺) − ∂L_train/∂c_l (w⁻)) / (2ε),  w± = w ± ε·v, v = ∇_{w'} L_val(w')
 * and ∂L_train/∂c_l = L_l, so the Hessian-vector product needs only the level losses at w⁺ and w⁻;
 * ε = 0.01/‖v‖ as in DARTS's architect.py. The virtual step is a plain gradient step: DARTS's also adds
 * the optimizer's momentum buffer and weight decay, which move w' but do not depend on c, so the
 * Hessian-vector product keeps its form. This module works with the loss weights c directly; the
 * searches chain them to their gates.
 */

/** A bi-level problem with loss-weight gates: the student (or a toy) behind a few operations. */
export interface GatedBilevelProblem {
  readonly numLevels: number;
  /** A copy of the current parameters w. */
  getParameters(): Promise<Float32Array>;
  setParameters(w: Float32Array): Promise<void>;
  /** ∇_w L_train(w, c) on the current training batch, and each L_l(w) there (unweighted). */
  trainGradient(weights: readonly number[]): Promise<{ gradient: Float32Array; levelLosses: number[] }>;
  /** L_l(w) on the current training batch (unweighted). */
  trainLevelLosses(): Promise<number[]>;
  /** L_val(w) and ∇_w L_val(w) on the current validation batch (reads no gate). */
  valGradient(): Promise<{ loss: number; gradient: Float32Array }>;
}

/** What one unrolled gradient evaluation found. */
export interface UnrolledGradient {
  /** ∂L_val(w')/∂c_l per level. */
  gradient: number[];
  /** The finite-difference Hessian-vector product ∇²_{c_l,w} L_train·v per level. */
  hvp: number[];
  /** L_val(w') after the virtual step. */
  valLossUnrolled: number;
  /** L_l(w) on the training batch. */
  trainLevelLosses: number[];
  /** The finite-difference step ε. */
  epsilon: number;
}

/** Options of the unrolled gradient. */
export interface UnrolledOptions {
  /** ξ: the virtual step's learning rate. */
  xi: number;
  /** ε = epsilonScale / ‖v‖ (DARTS: 0.01). */
  epsilonScale?: number;
}

/** Euclidean norm in float64. */
function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** w + a·v as a new float32 vector (computed in float64 per element). */
function axpy(w: Float32Array, a: number, v: Float32Array): Float32Array {
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i] + a * v[i];
  return out;
}

/**
 * The unrolled architecture gradient with respect to the loss weights `weights` (see module doc). Leaves
 * the problem's parameters as it found them.
 */
export async function unrolledWeightGradient(
  problem: GatedBilevelProblem,
  weights: readonly number[],
  options: UnrolledOptions,
): Promise<UnrolledGradient> {
  const L = problem.numLevels;
  const w = await problem.getParameters();
  try {
    const train = await problem.trainGradient(weights);
    await problem.setParameters(axpy(w, -options.xi, train.gradient));
    const val = await problem.valGradient();
    const vNorm = norm(val.gradient);
    if (!(vNorm > 0)) {
      const zeros = new Array<number>(L).fill(0);
      return {
        gradient: zeros,
        hvp: [...zeros],
        valLossUnrolled: val.loss,
        trainLevelLosses: train.levelLosses,
        epsilon: 0,
      };
    }
    const epsilon = (options.epsilonScale ?? 0.01) / vNorm;
    await problem.setParameters(axpy(w, epsilon, val.gradient));
    const plus = await problem.trainLevelLosses();
    await problem.setParameters(axpy(w, -epsilon, val.gradient));
    const minus = await problem.trainLevelLosses();
    const hvp = plus.map((p, l) => (p - minus[l]) / (2 * epsilon));
    return {
      gradient: hvp.map((h) => -options.xi * h),
      hvp,
      valLossUnrolled: val.loss,
      trainLevelLosses: train.levelLosses,
      epsilon,
    };
  } finally {
    await problem.setParameters(w);
  }
}

/**
 * d/dc_l L_val(w − ξ·∇_w L_train(w, c)) by central differences in c (step δ), each side re-running the
 * virtual step: the architecture gradient without the Hessian-vector product, to check it. With ξ = 0 it
 * is DARTS's first-order gradient, exactly zero here since w' = w whatever c is.
 */
export async function architectureGradientByDifferences(
  problem: GatedBilevelProblem,
  weights: readonly number[],
  options: { xi: number; delta: number },
): Promise<number[]> {
  const w = await problem.getParameters();
  const valAt = async (c: readonly number[]): Promise<number> => {
    const g = await problem.trainGradient(c);
    await problem.setParameters(axpy(w, -options.xi, g.gradient));
    const loss = (await problem.valGradient()).loss;
    await problem.setParameters(w);
    return loss;
  };
  try {
    const out: number[] = [];
    for (let l = 0; l < problem.numLevels; l++) {
      const plus = weights.map((c, k) => (k === l ? c + options.delta : c));
      const minus = weights.map((c, k) => (k === l ? c - options.delta : c));
      out.push(((await valAt(plus)) - (await valAt(minus))) / (2 * options.delta));
    }
    return out;
  } finally {
    await problem.setParameters(w);
  }
}
