/**
 * Semantic-segmentation metrics in mmsegmentation's convention (IoUMetric): pixels whose label is the ignore
 * index (255) are dropped from prediction and label alike; a confusion matrix is summed over the whole
 * dataset first and only then turned into per-class IoU = I / (P + L − I) and accuracy = I / L; mIoU and
 * mAcc are the means over the classes where they are defined (non-zero union, non-zero label area), and
 * aAcc = ΣI / ΣL is the pixel accuracy. Per-image mIoUs are never averaged (they give other numbers).
 * reduce-zero-label (ADE20K) rewrites the ground truth only: 0 → 255 (ignored), v → v − 1, 255 stays 255.
 */
import { RlpkdError } from '../errors';

/** mmsegmentation's default ignore index. */
export const SEG_IGNORE_INDEX = 255;

/** Options of {@link SegmentationConfusion}. */
export interface SegmentationOptions {
  /** Label value that marks pixels to skip (default 255). */
  readonly ignoreIndex?: number;
  /** ADE20K convention applied to the ground truth: label 0 is "other" and ignored, the rest shift down by 1. */
  readonly reduceZeroLabel?: boolean;
}

/** Per-class and dataset-level results. `null` where a ratio is 0 / 0 (left out of the means). */
export interface SegmentationResult {
  readonly numClasses: number;
  readonly mIoU: number | null;
  readonly mAcc: number | null;
  /** Pixel accuracy over the non-ignored pixels. */
  readonly aAcc: number | null;
  readonly perClass: {
    readonly iou: number | null;
    readonly acc: number | null;
    readonly intersection: number;
    readonly union: number;
    readonly labelPixels: number;
    readonly predictedPixels: number;
  }[];
  /** Pixels counted (labels not ignored) and images added. */
  readonly pixels: number;
  readonly images: number;
}

/** A dataset-level confusion matrix (rows: ground truth, columns: prediction) fed one image at a time. */
export class SegmentationConfusion {
  readonly numClasses: number;
  private readonly ignoreIndex: number;
  private readonly reduceZeroLabel: boolean;
  private readonly counts: Float64Array;
  private images = 0;

  constructor(numClasses: number, options: SegmentationOptions = {}) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new RlpkdError(`segmentation needs a positive whole number of classes, got ${numClasses}`, {
        hint: 'pass the number of classes the model predicts (150 for ADE20K)',
      });
    }
    this.numClasses = numClasses;
    this.ignoreIndex = options.ignoreIndex ?? SEG_IGNORE_INDEX;
    this.reduceZeroLabel = options.reduceZeroLabel ?? false;
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /**
   * Adds one image: `prediction` and `label` hold class indices per pixel (same length, same order).
   * `what` names the image in errors.
   */
  add(prediction: ArrayLike<number>, label: ArrayLike<number>, what = 'image'): void {
    if (prediction.length !== label.length) {
      throw new RlpkdError(
        `${what}: the prediction has ${prediction.length} pixels, the ground truth ${label.length}`,
        { hint: 'predictions must have the size of their ground-truth mask' },
      );
    }
    const n = this.numClasses;
    for (let i = 0; i < label.length; i++) {
      const l = this.mapLabel(label[i]!);
      if (l === this.ignoreIndex) continue;
      const p = prediction[i]!;
      if (!(Number.isInteger(l) && l >= 0 && l < n)) throw this.outOfRange(what, 'ground-truth label', l);
      if (!(Number.isInteger(p) && p >= 0 && p < n)) throw this.outOfRange(what, 'predicted class', p);
      this.counts[l * n + p]! += 1;
    }
    this.images++;
  }

  /** The metrics over everything added so far. */
  result(): SegmentationResult {
    const n = this.numClasses;
    const perClass: SegmentationResult['perClass'] = [];
    let correct = 0;
    let pixels = 0;
    for (let c = 0; c < n; c++) {
      let labelPixels = 0;
      let predictedPixels = 0;
      for (let j = 0; j < n; j++) {
        labelPixels += this.counts[c * n + j]!;
        predictedPixels += this.counts[j * n + c]!;
      }
      const intersection = this.counts[c * n + c]!;
      const union = labelPixels + predictedPixels - intersection;
      correct += intersection;
      pixels += labelPixels;
      perClass.push({
        iou: union > 0 ? intersection / union : null,
        acc: labelPixels > 0 ? intersection / labelPixels : null,
        intersection,
        union,
        labelPixels,
        predictedPixels,
      });
    }
    return {
      numClasses: n,
      mIoU: meanOfDefined(perClass.map((c) => c.iou)),
      mAcc: meanOfDefined(perClass.map((c) => c.acc)),
      aAcc: pixels > 0 ? correct / pixels : null,
      perClass,
      pixels,
      images: this.images,
    };
  }

  /** The (ground truth, prediction) pixel count; rows are ground truth. */
  count(label: number, prediction: number): number {
    return this.counts[label * this.numClasses + prediction] ?? 0;
  }

  private mapLabel(v: number): number {
    if (!this.reduceZeroLabel) return v;
    if (v === 0 || v === this.ignoreIndex) return this.ignoreIndex;
    return v - 1;
  }

  private outOfRange(what: string, kind: string, v: number): RlpkdError {
    return new RlpkdError(`${what}: ${kind} ${v} is outside 0..${this.numClasses - 1}`, {
      hint:
        `check --num-classes (${this.numClasses}); labels to skip must equal the ignore index ${this.ignoreIndex}` +
        (this.reduceZeroLabel ? '' : '; ADE20K-style masks (0 = other) need --reduce-zero-label'),
    });
  }
}

function meanOfDefined(values: readonly (number | null)[]): number | null {
  const defined = values.filter((v): v is number => v !== null);
  return defined.length === 0 ? null : defined.reduce((s, v) => s + v, 0) / defined.length;
}
