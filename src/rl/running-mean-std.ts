/**
 * Running mean and variance of observations (Chan et al.'s parallel update, as stable-baselines3's
 * RunningMeanStd), used to normalize the policy's state; saved with the policy and frozen during updates.
 */
import { RlpkdError } from '../errors';

/** JSON form of the statistics. */
export interface RunningMeanStdState {
  mean: number[];
  var: number[];
  count: number;
}

/** Per-dimension running statistics (see module doc). */
export class RunningMeanStd {
  readonly dim: number;
  mean: Float64Array;
  var: Float64Array;
  count: number;

  constructor(
    dim: number,
    /** Normalized values are clipped to ±clip (stable-baselines3's VecNormalize default 10). */
    readonly clip = 10,
    readonly epsilon = 1e-8,
  ) {
    this.dim = dim;
    this.mean = new Float64Array(dim);
    this.var = new Float64Array(dim).fill(1);
    this.count = 1e-4;
  }

  /** Merges a batch of rows [n × dim] into the statistics. */
  update(batch: ArrayLike<number>): void {
    const d = this.dim;
    if (batch.length % d !== 0)
      throw new RlpkdError(`RunningMeanStd.update: ${batch.length} values is not n×${d}`);
    const n = batch.length / d;
    if (n === 0) return;
    const tot = this.count + n;
    for (let j = 0; j < d; j++) {
      let m = 0;
      for (let i = 0; i < n; i++) m += batch[i * d + j];
      m /= n;
      let v = 0;
      for (let i = 0; i < n; i++) v += (batch[i * d + j] - m) ** 2;
      v /= n;
      const delta = m - this.mean[j];
      const m2 = this.var[j] * this.count + v * n + (delta * delta * this.count * n) / tot;
      this.mean[j] += (delta * n) / tot;
      this.var[j] = m2 / tot;
    }
    this.count = tot;
  }

  /** clip((x − mean)/sqrt(var + ε), ±clip), rows of `dim`, as float32 for the policy graph. */
  normalize(batch: ArrayLike<number>, out?: Float32Array): Float32Array {
    const d = this.dim;
    if (batch.length % d !== 0)
      throw new RlpkdError(`RunningMeanStd.normalize: ${batch.length} values is not n×${d}`);
    const res = out ?? new Float32Array(batch.length);
    const inv = new Float64Array(d);
    for (let j = 0; j < d; j++) inv[j] = 1 / Math.sqrt(this.var[j] + this.epsilon);
    for (let i = 0; i < batch.length; i++) {
      const j = i % d;
      const z = (batch[i] - this.mean[j]) * inv[j];
      res[i] = z > this.clip ? this.clip : z < -this.clip ? -this.clip : z;
    }
    return res;
  }

  toJSON(): RunningMeanStdState {
    return { mean: Array.from(this.mean), var: Array.from(this.var), count: this.count };
  }

  /** Restores statistics saved with `toJSON()`. */
  load(state: RunningMeanStdState): void {
    if (state.mean.length !== this.dim || state.var.length !== this.dim) {
      throw new RlpkdError(
        `RunningMeanStd: saved statistics have ${state.mean.length} dims, the policy's state has ${this.dim}`,
      );
    }
    this.mean = Float64Array.from(state.mean);
    this.var = Float64Array.from(state.var);
    this.count = state.count;
  }
}
