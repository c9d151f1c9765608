/**
 * Cross-entropy over class logits [N, K, d1, ...] against int64 labels [N, d1, ...] with an ignore
 * index, as PyTorch's `CrossEntropyLoss(ignore_index=…, reduction='mean')`: the mean of −log softmax at
 * the label over the positions whose label is not ignored (0 when every position is ignored).
 * Classification is the case without spatial axes. The one-hot mask is Equal(label, Range(K)), built
 * from ops the float64 reference interpreter also runs.
 */
import type { GraphBuilder } from '../onnx/graph-builder';

/** Appends the loss and returns the name of the float scalar. */
export function crossEntropyWithIgnore(
  b: GraphBuilder,
  logits: string,
  labels: string,
  options: { rank: number; ignoreIndex?: number },
): string {
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
  let target = labels;
  let valid: string | undefined;
  if (options.ignoreIndex !== undefined) {
    const ignored = b.op('Equal', [labels, b.constInt64(options.ignoreIndex, [], 'ce/ignore_index')]);
    target = b.op('Where', [ignored, b.constInt64(0, [], 'ce/zero_label'), labels]);
    valid = b.op('Cast', [b.op('Not', [ignored])], { to: 1 });
  }
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
  if (!valid) return b.op('Neg', [b.op('ReduceMean', [picked], { keepdims: 0 })], {}, { name: 'loss/ce' });
  const total = b.op('ReduceSum', [b.op('Mul', [picked, valid])], { keepdims: 0 });
  const count = b.op('Max', [
    b.op('ReduceSum', [valid], { keepdims: 0 }),
    b.constFloat(1, [], 'ce/min_count'),
  ]);
  return b.op('Neg', [b.op('Div', [total, count])], {}, { name: 'loss/ce' });
}
