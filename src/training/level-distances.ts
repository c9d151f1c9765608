/**
 * Per-sample level distances for the distillation loss (graph pieces: student [N,C,H,W],
 * teacher [N,C,H,W] → float [N]), mean-reduced so a large level does not dominate by size. One module for
 * every user of the loss (the distillation trainer, the RL environment, the artifacts' 'distillation'
 * loss), so the reward measures what training minimizes:
 * - `mse`: mean over (c, h, w) of (S − T)².
 * - `pkd` (Cao et al. 2022, mmrazor PKDLoss): both maps normalized per channel to zero mean and unit
 *   (unbiased) std, (x − μ)/(σ + 1e-6) with σ = sqrt(var + 1e-10), then MSE / 2. mmrazor takes μ, σ over
 *   (N, H, W); here they are taken per image over (H, W), so an image's distance depends on that image
 *   only (the per-image level mask and the RL reward's per-image yardstick need that).
 * - `cwd` (Shu et al. 2021, mmrazor ChannelWiseDivergence): per channel a softmax over the H·W positions
 *   at temperature τ; τ²/C · Σ_c KL(p_T,c ‖ p_S,c) per image.
 */
import { RlpkdError } from '../errors';
import type { GraphBuilder } from '../onnx/graph-builder';
import { DataType } from '../onnx/types';

/** Distillation loss kinds (config `distill.loss`). */
export type DistillLossKind = 'mse' | 'pkd' | 'cwd';

/** Per-sample distance between a student and a teacher feature map: returns a float [N] tensor. */
export type LevelDistance = (b: GraphBuilder, student: string, teacher: string) => string;

function axesInput(b: GraphBuilder, axes: number[]): string {
  return b.constInt64(axes, [axes.length], 'distill/axes');
}

/** ReduceSum / ReduceMean in the form the opset wants (ReduceSum axes input from 13, ReduceMean from 18). */
function reduce(
  b: GraphBuilder,
  op: 'ReduceSum' | 'ReduceMean',
  x: string,
  axes: number[],
  keep: boolean,
): string {
  const inputAxes = op === 'ReduceSum' ? b.opset >= 13 : b.opset >= 18;
  return inputAxes
    ? b.op(op, [x, axesInput(b, axes)], { keepdims: keep ? 1 : 0 })
    : b.op(op, [x], { axes, keepdims: keep ? 1 : 0 });
}

/** The default level distance: mean over all non-batch axes (c, h, w) of (S − T)². */
export const perSampleMse: LevelDistance = (b, student, teacher) => {
  const d = b.op('Sub', [student, teacher]);
  const flat = b.op('Reshape', [b.op('Mul', [d, d]), b.constInt64([0, -1], [2], 'loss/flatten_per_sample')]);
  return reduce(b, 'ReduceMean', flat, [1], false);
};

/** (x − mean_hw)/(std_hw + 1e-6) per (n, c), std unbiased over the H·W positions. */
function channelNormalize(b: GraphBuilder, x: string): string {
  const mean = reduce(b, 'ReduceMean', x, [2, 3], true);
  const d = b.op('Sub', [x, mean]);
  const shape = b.op('Shape', [x]);
  const dim = (i: number) => b.op('Gather', [shape, b.constInt64(i, [], 'distill/dim')], { axis: 0 });
  const hw = b.op('Cast', [b.op('Mul', [dim(2), dim(3)])], { to: DataType.FLOAT });
  const denom = b.op('Max', [
    b.op('Sub', [hw, b.constFloat(1, [], 'distill/one')]),
    b.constFloat(1, [], 'distill/one'),
  ]);
  const variance = b.op('Div', [reduce(b, 'ReduceSum', b.op('Mul', [d, d]), [2, 3], true), denom]);
  // ε inside the root keeps the gradient finite for a constant channel (a dead ReLU, a 1×1 map).
  const std = b.op('Sqrt', [b.op('Add', [variance, b.constFloat(1e-10, [], 'distill/pkd_var_eps')])]);
  return b.op('Div', [d, b.op('Add', [std, b.constFloat(1e-6, [], 'distill/pkd_eps')])]);
}

/** PKD: per-channel normalized MSE / 2, per image. */
export const perSamplePkd: LevelDistance = (b, student, teacher) => {
  const mse = perSampleMse(b, channelNormalize(b, student), channelNormalize(b, teacher));
  return b.op('Mul', [mse, b.constFloat(0.5, [], 'distill/half')]);
};

/** CWD at temperature `tau`: τ²/C · Σ_c KL(softmax_hw(T/τ) ‖ softmax_hw(S/τ)), per image. */
export function perSampleCwd(tau: number): LevelDistance {
  if (!(tau > 0 && Number.isFinite(tau))) throw new RlpkdError(`distill.cwd_tau must be > 0, got ${tau}`);
  return (b, student, teacher) => {
    const flat = (x: string) =>
      b.op('Reshape', [
        b.op('Div', [x, b.constFloat(tau, [], 'distill/cwd_tau')]),
        b.constInt64([0, 0, -1], [3], 'distill/cwd_flat'),
      ]);
    const s = flat(student);
    const t = flat(teacher);
    const logPs = b.op('LogSoftmax', [s], { axis: 2 });
    const logPt = b.op('LogSoftmax', [t], { axis: 2 });
    const pt = b.op('Softmax', [t], { axis: 2 });
    const kl = reduce(b, 'ReduceSum', b.op('Mul', [pt, b.op('Sub', [logPt, logPs])]), [2], false); // [N, C]
    const perImage = reduce(b, 'ReduceMean', kl, [1], false); // (1/C)·Σ_c
    return b.op('Mul', [perImage, b.constFloat(tau * tau, [], 'distill/cwd_tau2')]);
  };
}

/** The LevelDistance for a configured loss kind. */
export function levelDistance(kind: DistillLossKind, tau = 1): LevelDistance {
  switch (kind) {
    case 'mse':
      return perSampleMse;
    case 'pkd':
      return perSamplePkd;
    case 'cwd':
      return perSampleCwd(tau);
    default:
      throw new RlpkdError(`unknown distillation loss '${String(kind)}' (mse | pkd | cwd)`);
  }
}
