/**
 * The student as a gated bi-level problem: L_train(w, c) = Σ_l c_l·L_l(w)/L on a training batch, so a 0/1
 * gate vector trains exactly as a fixed selection with uniform weights 1/L does (phase 1), and
 * ∂L_train/∂c_l = L_l/L. Every image distils every level; the gates alone decide what counts. The
 * starting state (parameters, and a fresh optimizer or the run's moments) is kept so that every proxy
 * training starts from it. A trained student continues with its run's moments: a fresh AdamW's first steps
 * move every weight by about lr, which on a trained student makes every selection worse.
 */
import type { StudentDistiller, TaughtBatch } from '../distill/student-distiller';
import type { TrainingSnapshot } from '../training/training-session';
import type { GatedSearchProblem } from './differentiable-search';
import type { ValidationYardstick } from './yardstick';

/** A gated problem that can also go back to where it started (a proxy training's start). */
export interface ProxyTrainable extends GatedSearchProblem {
  /** Back to the starting parameters and optimizer state. */
  reset(): Promise<void>;
}

/** The student behind GatedSearchProblem (see module doc). */
export class StudentGatedProblem implements ProxyTrainable {
  private train: TaughtBatch;
  private valIndex = 0;

  private constructor(
    private readonly distiller: StudentDistiller,
    private readonly trainBatches: readonly TaughtBatch[],
    private readonly yardstick: ValidationYardstick,
    private readonly start: TrainingSnapshot,
  ) {
    this.train = trainBatches[0];
  }

  /** Keeps the distiller's current state as the start; `trainBatches` carry their teacher features. */
  static create(
    distiller: StudentDistiller,
    trainBatches: readonly TaughtBatch[],
    yardstick: ValidationYardstick,
    options: { freshOptimizer?: boolean } = {},
  ): StudentGatedProblem {
    if (options.freshOptimizer ?? true) distiller.session.resetOptimizerState();
    return new StudentGatedProblem(distiller, trainBatches, yardstick, distiller.session.snapshot());
  }

  get numLevels(): number {
    return this.distiller.numLevels;
  }

  async reset(): Promise<void> {
    await this.distiller.session.restore(this.start);
  }

  useBatches(step: number): void {
    this.train = this.trainBatches[step % this.trainBatches.length];
    this.valIndex = step % this.yardstick.batchCount;
  }

  getParameters(): Promise<Float32Array> {
    return this.distiller.session.getContiguousParameters();
  }

  setParameters(w: Float32Array): Promise<void> {
    return this.distiller.session.loadParametersBuffer(w);
  }

  private mask(): Float32Array {
    return new Float32Array(this.train.images.dims[0] * this.numLevels).fill(1);
  }

  private weights(gates: readonly number[]): Float32Array {
    return Float32Array.from(gates, (c) => c / this.numLevels);
  }

  async trainGradient(gates: readonly number[]): Promise<{ gradient: Float32Array; levelLosses: number[] }> {
    const r = await this.distiller.gradient(this.train, this.mask(), this.weights(gates));
    return { gradient: r.gradient, levelLosses: r.levelLosses.map((x) => x / this.numLevels) };
  }

  async trainLevelLosses(): Promise<number[]> {
    const gates = new Array<number>(this.numLevels).fill(1);
    const r = await this.distiller.losses(this.train, this.mask(), this.weights(gates));
    return r.levelLosses.map((x) => x / this.numLevels);
  }

  valGradient(): Promise<{ loss: number; gradient: Float32Array }> {
    return this.yardstick.gradient(this.valIndex);
  }

  async trainStep(gates: readonly number[]): Promise<void> {
    await this.distiller.step(this.train, this.mask(), this.weights(gates));
  }
}
