/**
 * Scores predictions on labelled batches with the field's metric: COCO bbox AP (detections mapped back to
 * the original image's pixels, ground truth as annotated there), mIoU over the dataset's confusion matrix
 * (at the model's input size, where the loader's label masks are), top-1/top-5 accuracy.
 */
import type { Batch } from '../data/batch-loader';
import { RlpkdError } from '../errors';
import type { Detection } from '../heads/fcos-decode';
import type { HeadTask } from '../heads/types';
import { boxToOriginal } from '../metrics/box-rescale';
import { TopKAccuracy } from '../metrics/classification';
import {
  evaluateCoco,
  type CocoDetection,
  type CocoGtAnnotation,
  type CocoEvalResult,
} from '../metrics/coco-eval';
import { COCO_STAT_NAMES } from '../metrics/coco-params';
import { SegmentationConfusion } from '../metrics/segmentation';

/** Predictions for one batch, in the form each task's metric takes. */
export type TaskPrediction =
  | { task: 'classification'; logits: Float32Array }
  | { task: 'segmentation'; labelMaps: Int32Array[] }
  | { task: 'detection'; detections: Detection[][] };

/** A task's metrics: the primary one (`metric`, `value`) and the rest by name (null where undefined). */
export interface TaskScore {
  task: HeadTask;
  /** AP (detection), mIoU (segmentation) or top1 (classification). */
  metric: 'AP' | 'mIoU' | 'top1';
  value: number;
  values: Record<string, number | null>;
  images: number;
}

/** The primary metric's name per task. */
export const PRIMARY_METRIC: Record<HeadTask, TaskScore['metric']> = {
  classification: 'top1',
  segmentation: 'mIoU',
  detection: 'AP',
};

/** Accumulates one predictor's results over the batches of a split. */
export class TaskScorer {
  private readonly topk: TopKAccuracy | undefined;
  private readonly confusion: SegmentationConfusion | undefined;
  private readonly gt: CocoGtAnnotation[] = [];
  private readonly dets: CocoDetection[] = [];
  private images = 0;

  constructor(
    readonly task: HeadTask,
    readonly numClasses: number,
  ) {
    if (task === 'classification') {
      this.topk = new TopKAccuracy(numClasses, { ks: [1, Math.min(5, numClasses)] });
    }
    if (task === 'segmentation') this.confusion = new SegmentationConfusion(numClasses);
  }

  /** Adds a batch's predictions against its labels. */
  add(batch: Batch, prediction: TaskPrediction): void {
    if (prediction.task !== this.task) {
      throw new RlpkdError(`internal: ${prediction.task} predictions given to a ${this.task} scorer`);
    }
    const n = batch.records.length;
    if (prediction.task === 'classification') {
      if (!batch.labels) throw new RlpkdError('internal: classification scoring without labels');
      this.topk!.add(prediction.logits, batch.labels);
    } else if (prediction.task === 'segmentation') {
      if (!batch.masks) throw new RlpkdError('internal: segmentation scoring without masks');
      const plane = batch.masks.length / n;
      prediction.labelMaps.forEach((map, k) =>
        this.confusion!.add(map, batch.masks!.subarray(k * plane, (k + 1) * plane), batch.records[k]!.file),
      );
    } else {
      this.addDetections(batch, prediction.detections);
    }
    this.images += n;
  }

  private addDetections(batch: Batch, detections: Detection[][]): void {
    const [, , h, w] = batch.images.dims;
    batch.records.forEach((rec, k) => {
      const imageId = this.images + k + 1;
      // Ground truth as annotated, in the original image's pixels; category ids = class index + 1.
      for (const b of rec.boxes ?? []) {
        this.gt.push({
          id: this.gt.length + 1,
          image_id: imageId,
          category_id: b.label + 1,
          bbox: b.bbox,
          area: b.area,
          iscrowd: b.iscrowd ? 1 : 0,
        });
      }
      const original = batch.originalSizes?.[k] ?? { width: w, height: h };
      for (const d of detections[k] ?? []) {
        const [x1, y1, x2, y2] = d.box;
        this.dets.push({
          image_id: imageId,
          category_id: d.label + 1,
          bbox: boxToOriginal([x1, y1, x2 - x1, y2 - y1], { width: w, height: h }, original),
          score: d.score,
        });
      }
    });
  }

  /** The metrics over everything added. */
  result(): TaskScore {
    const metric = PRIMARY_METRIC[this.task];
    let values: Record<string, number | null>;
    if (this.task === 'classification') {
      const r = this.topk!.result();
      values = Object.fromEntries(Object.entries(r.accuracy).map(([k, v]) => [`top${k}`, v]));
    } else if (this.task === 'segmentation') {
      const r = this.confusion!.result();
      values = { mIoU: r.mIoU, mAcc: r.mAcc, aAcc: r.aAcc };
    } else {
      values = cocoValues(this.cocoResult());
    }
    return { task: this.task, metric, value: values[metric] ?? 0, values, images: this.images };
  }

  private cocoResult(): CocoEvalResult {
    return evaluateCoco(
      {
        images: Array.from({ length: this.images }, (_, i) => ({ id: i + 1 })),
        annotations: this.gt,
        categories: Array.from({ length: this.numClasses }, (_, i) => ({ id: i + 1 })),
      },
      this.dets,
    );
  }
}

/** The 12 COCO summary numbers by name, −1 (undefined) as null. */
function cocoValues(r: CocoEvalResult): Record<string, number | null> {
  return Object.fromEntries(COCO_STAT_NAMES.map((name, i) => [name, r.stats[i] === -1 ? null : r.stats[i]!]));
}
