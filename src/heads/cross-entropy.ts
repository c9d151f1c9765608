/**
 * Cross-entropy over class logits [N, K, d1, ...] against int64 labels [N, d1, ...] with an ignore index,
 * as PyTorch's `CrossEntropyLoss(ignore_index=…, reduction='mean')`: the mean of −log softmax at the label
 * over the positions whose label is not ignored (0 when every position is ignored). Classification is the
 * case without spatial axes. The one-hot mask is Equal(label, Range(K)), built from ops the float64
 * reference interpreter also runs; reductions take their axes as inputs, valid from opset 13 to 18+.
 */
import type { GraphBuilder } from '../onnx/graph-builder';

/** PyTorch's default ignore_index (no real label is negative). */
export const TORCH_IGNORE_INDEX = -100;

export interface CrossEntropyOptions {
  /** Rank of the logits (2 for [N, K], 4 for [N, K, H, W]). */
  rank: number;
  /** Label value to skip (default −100, PyTorch's). */
  ignoreIndex?: number;
  /** Also return each image's loss [N] (its own mean over its non-ignored positions). */
  perSample?: boolean;
}

export interface CrossEntropyTensors {
  /** The scalar loss. */
  loss: string;
  /** [N] per-image losses, when asked for. */
  perSample?: string;
}

/** Σ over the non-batch axes of a [N, ...] tensor of rank `rank` (the tensor itself at rank 1). */
export function sumPerImage(b: GraphBuilder, x: string, rank: number): string {
  if (rank <= 1) return x;
  const axes = Array.from({ length: rank - 1 }, (_, i) => i + 1);
  return b.op('ReduceSum', [x, b.constInt64(axes, [axes.length], 'loss/image_axes')], { keepdims: 0 });
}

/** Σ over every element. */
export function sumAll(b: GraphBuilder, x: string): string {
  return b.op('ReduceSum', [x], { keepdims: 0 });
}

/** Appends the loss. */
export function crossEntropyWithIgnore(
  b: GraphBuilder,
  logits: string,
  labels: string,
  options: CrossEntropyOptions,
): CrossEntropyTensors {
  const spatial = options.rank - 2;
  const depth = b.op('Gather', [b.op('Shape', [logits]), b.constInt64(1, [], 'ce/class_axis')], { axis: 0 });
  const classes = b.op('Range', [b.constInt64(0, [], 'ce/zero'), depth, b.constInt64(1, [], 'ce/one')]);
  // [K] → [K, 1, ..., 1] so it broadcasts against labels unsqueezed at the class axis.
  const classCol =
    spatial > 0
      ? b.op('Reshape', [
          classes,
          b.constInt64([-1, ...Array(spatial).fill(1)], [spatial + 1], 'ce/class_shape'),
        ])
      : classes;
  const ignoreIndex = options.ignoreIndex ?? TORCH_IGNORE_INDEX;
  const ignored = b.op('Equal', [labels, b.constInt64(ignoreIndex, [], 'ce/ignore_index')]);
  const target = b.op('Where', [ignored, b.constInt64(0, [], 'ce/zero_label'), labels]);
  const valid = b.op('Cast', [b.op('Not', [ignored])], { to: 1 });
  const label1 = b.op('Unsqueeze', [target, b.constInt64([1], [1], 'ce/class_axes')]);
  const oneHot = b.op('Cast', [b.op('Equal', [label1, classCol])], { to: 1 });
  const logProbs = b.op('LogSoftmax', [logits], { axis: 1 });
  const picked = b.op(
    'ReduceSum',
    [b.op('Mul', [logProbs, oneHot]), b.constInt64([1], [1], 'ce/class_axes')],
    {
      keepdims: 0,
    },
  );
  const nll = b.op('Mul', [b.op('Neg', [picked]), valid]);
  const minCount = b.constFloat(1, [], 'ce/min_count');
  const mean = (total: string, count: string, name?: string): string =>
    b.op('Div', [total, b.op('Max', [count, minCount])], {}, name ? { name } : {});
  const result: CrossEntropyTensors = { loss: mean(sumAll(b, nll), sumAll(b, valid), 'loss/ce') };
  if (options.perSample) {
    const rank = options.rank - 1;
    result.perSample = mean(sumPerImage(b, nll, rank), sumPerImage(b, valid, rank));
  }
  return result;
}
