/**
 * The chance level a taught model is compared with: an image-blind predictor built from the training
 * labels seen. Classification: the classes ranked by frequency (top-1 = the majority class). Segmentation:
 * the most frequent pixel class everywhere. Detection: one box per class, the class's mean box (relative
 * to the image) scored by the class's share of the boxes — what a detector that never looks at the image
 * can do best on average.
 */
import type { Batch } from '../data/batch-loader';
import type { Detection } from '../heads/fcos-decode';
import type { HeadTask } from '../heads/types';
import { SEG_IGNORE_INDEX } from '../metrics/segmentation';
import type { TaskPrediction } from './task-scorer';

/** Label statistics gathered from training batches, and the chance predictor they define. */
export class LabelPrior {
  /** Images (classification), pixels (segmentation) or boxes (detection) per class. */
  private readonly counts: Float64Array;
  /** Detection: per class, the sum of x1, y1, x2, y2 relative to the image size. */
  private readonly boxSums: Float64Array;

  constructor(
    readonly task: HeadTask,
    readonly numClasses: number,
  ) {
    this.counts = new Float64Array(numClasses);
    this.boxSums = new Float64Array(numClasses * 4);
  }

  /** Counts a training batch's labels. */
  add(batch: Batch): void {
    const K = this.numClasses;
    if (this.task === 'classification') {
      for (const l of batch.labels ?? []) if (l >= 0 && l < K) this.counts[l]! += 1;
    } else if (this.task === 'segmentation') {
      for (const l of batch.masks ?? []) if (l !== SEG_IGNORE_INDEX && l < K) this.counts[l]! += 1;
    } else {
      const [, , h, w] = batch.images.dims;
      for (const boxes of batch.boxes ?? []) {
        for (const b of boxes) {
          if (b.iscrowd || b.label < 0 || b.label >= K) continue;
          const [x, y, bw, bh] = b.bbox;
          const rel = [x / w, y / h, (x + bw) / w, (y + bh) / h];
          this.counts[b.label]! += 1;
          rel.forEach((v, j) => (this.boxSums[b.label * 4 + j]! += v));
        }
      }
    }
  }

  /** The chance predictor's output for a batch (same for every image). */
  predict(batch: Batch): TaskPrediction {
    const n = batch.records.length;
    const K = this.numClasses;
    const [, , h, w] = batch.images.dims;
    if (this.task === 'classification') {
      // Frequencies as logits: ranks the classes by how often they were seen (ties to the lower index).
      const logits = new Float32Array(n * K);
      for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) logits[i * K + k] = this.counts[k]! - k * 1e-6;
      return { task: 'classification', logits };
    }
    if (this.task === 'segmentation') {
      let best = 0;
      for (let k = 1; k < K; k++) if (this.counts[k]! > this.counts[best]!) best = k;
      return {
        task: 'segmentation',
        labelMaps: Array.from({ length: n }, () => new Int32Array(h * w).fill(best)),
      };
    }
    const total = this.counts.reduce((a, b) => a + b, 0);
    const boxes: Detection[] = [];
    for (let k = 0; k < K; k++) {
      const c = this.counts[k]!;
      if (c === 0) continue;
      const m = [0, 1, 2, 3].map((j) => this.boxSums[k * 4 + j]! / c);
      boxes.push({ box: [m[0]! * w, m[1]! * h, m[2]! * w, m[3]! * h], score: c / total, label: k });
    }
    return { task: 'detection', detections: Array.from({ length: n }, () => boxes.map((d) => ({ ...d }))) };
  }
}
