/** Per-pixel class predictions from the segmentation head's logits, in the form the metrics take. */
import { RlpkdError } from '../errors';

/**
 * Arg-max over the class axis of logits [N, K, H, W]: one Int32Array of H·W class indices per image
 * (row-major, ties to the lowest class as numpy's argmax), ready for SegmentationConfusion.add.
 */
export function segmentationLabelMaps(logits: ArrayLike<number>, dims: readonly number[]): Int32Array[] {
  if (dims.length !== 4 || logits.length !== dims.reduce((a, b) => a * b, 1)) {
    throw new RlpkdError(
      `segmentation logits: dims [${dims.join(', ')}] do not fit ${logits.length} values`,
      {
        hint: 'pass the head output as [N, K, H, W]',
      },
    );
  }
  const [N, K, H, W] = dims;
  const plane = H * W;
  return Array.from({ length: N }, (_, n) => {
    const out = new Int32Array(plane);
    const base = n * K * plane;
    for (let p = 0; p < plane; p++) {
      let best = logits[base + p];
      for (let k = 1; k < K; k++) {
        const v = logits[base + k * plane + p];
        if (v > best) {
          best = v;
          out[p] = k;
        }
      }
    }
    return out;
  });
}
