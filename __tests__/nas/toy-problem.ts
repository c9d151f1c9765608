/**
 * A float64-exact toy of the gated bi-level problem for the NAS tests: parameters w ∈ R^n, level losses
 * L_l(w) = ½‖w − a_l‖², L_train(w, c) = Σ_l c_l·L_l(w), L_val(w) = ½‖w − t‖², with a plain gradient
 * step as the student's optimizer. Its unrolled gradient has a closed form:
 *   w' = w − ξ·Σ_l c_l (w − a_l),  ∂L_val(w')/∂c_l = −ξ·(w − a_l)·(w' − t).
 */
import type { GatedSearchProblem } from '../../src/nas/differentiable-search';
import type { ProxyTrainable } from '../../src/nas/student-problem';

/** The toy (see module doc); `lr` is the student step's learning rate. */
export class ToyProblem implements GatedSearchProblem, ProxyTrainable {
  w: Float64Array;
  calls = { trainGradient: 0, trainLevelLosses: 0, valGradient: 0, trainStep: 0 };

  constructor(
    readonly anchors: number[][],
    readonly target: number[],
    private readonly start: number[],
    private readonly lr = 0.1,
  ) {
    this.w = Float64Array.from(start);
  }

  get numLevels(): number {
    return this.anchors.length;
  }

  async reset(): Promise<void> {
    this.w = Float64Array.from(this.start);
  }

  useBatches(): void {}

  async getParameters(): Promise<Float32Array> {
    return Float32Array.from(this.w);
  }

  async setParameters(w: Float32Array): Promise<void> {
    this.w = Float64Array.from(w);
  }

  levelLoss(l: number, w: ArrayLike<number> = this.w): number {
    let s = 0;
    for (let i = 0; i < w.length; i++) s += 0.5 * (w[i] - this.anchors[l][i]) ** 2;
    return s;
  }

  valLoss(w: ArrayLike<number> = this.w): number {
    let s = 0;
    for (let i = 0; i < w.length; i++) s += 0.5 * (w[i] - this.target[i]) ** 2;
    return s;
  }

  trainGradient64(gates: readonly number[], w: ArrayLike<number> = this.w): Float64Array {
    const g = new Float64Array(w.length);
    gates.forEach((c, l) => {
      for (let i = 0; i < w.length; i++) g[i] += c * (w[i] - this.anchors[l][i]);
    });
    return g;
  }

  async trainGradient(gates: readonly number[]) {
    this.calls.trainGradient++;
    return {
      gradient: Float32Array.from(this.trainGradient64(gates)),
      levelLosses: this.anchors.map((_, l) => this.levelLoss(l)),
    };
  }

  async trainLevelLosses(): Promise<number[]> {
    this.calls.trainLevelLosses++;
    return this.anchors.map((_, l) => this.levelLoss(l));
  }

  async valGradient() {
    this.calls.valGradient++;
    return { loss: this.valLoss(), gradient: Float32Array.from(this.w, (x, i) => x - this.target[i]) };
  }

  async trainStep(gates: readonly number[]): Promise<void> {
    this.calls.trainStep++;
    const g = this.trainGradient64(gates);
    this.w = this.w.map((x, i) => x - this.lr * g[i]);
  }

  /** The closed-form unrolled gradient ∂L_val(w')/∂c_l at the current w. */
  exactUnrolled(gates: readonly number[], xi: number): number[] {
    const g = this.trainGradient64(gates);
    const wp = Array.from(this.w, (x, i) => x - xi * g[i]);
    return this.anchors.map((a) => {
      let s = 0;
      for (let i = 0; i < wp.length; i++) s += (this.w[i] - a[i]) * (wp[i] - this.target[i]);
      return -xi * s;
    });
  }
}

/** Three levels in R^4: level 0 pulls w toward (1, 1, 0, 0), level 1 away from it, level 2 sideways. */
export function threeLevelToy(target: number[], start: number[], lr?: number): ToyProblem {
  const anchors = [
    [1, 1, 0, 0],
    [-1, -1, 0, 0],
    [0, 0, 1, -1],
  ];
  return new ToyProblem(anchors, target, start, lr);
}
