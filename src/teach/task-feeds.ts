/**
 * A batch's labels as the head loss's target inputs: class indices (classification), label masks
 * (segmentation, 255 ignored) or FCOS targets assigned from the boxes (detection; crowd boxes are left
 * out of training, as COCO-trained detectors do).
 */
import type { Batch } from '../data/batch-loader';
import type { Dataset, ImageRecord } from '../data/types';
import { RlpkdError } from '../errors';
import { assignFcosTargets, type FcosTargets, type LabelledBox } from '../heads/fcos-targets';
import { HEAD_LOSS_NAMES } from '../heads/head-loss';
import type { HeadModel, HeadTask } from '../heads/types';
import type { HostTensor } from '../runtime/tensors';

/** Which labels a task reads from dataset records, for error messages. */
export const TASK_LABELS: Record<HeadTask, string> = {
  classification: 'a class per image (imagefolder class folders, or synthetic scenes)',
  segmentation: 'label masks (ade20k annotations, or synthetic scenes)',
  detection: 'object boxes (coco instances JSON, or synthetic scenes)',
};

/** Whether a dataset has the labels a task trains on (TASK_LABELS says which). */
export function hasTaskLabels(task: HeadTask, ds: Dataset): boolean {
  const labelled =
    task === 'classification'
      ? ds.records.every((r) => r.label !== undefined)
      : task === 'segmentation'
        ? ds.maskConvention !== undefined
        : ds.records.some((r) => r.boxes !== undefined);
  return labelled && ds.records.length > 0;
}

/**
 * Images with the labels a loader gave them (a Batch, or a slice or join of batches): what the head loss's
 * targets are made from.
 */
export type LabelledImages = Pick<Batch, 'labels' | 'masks' | 'boxes'> & {
  images: { dims: readonly number[] };
  records?: readonly ImageRecord[];
};

/** A batch's boxes (model-input pixels, [x, y, w, h]) as corner boxes, crowd regions dropped. */
export function batchBoxes(batch: LabelledImages): LabelledBox[][] {
  const none = Array.from({ length: batch.images.dims[0] }, () => []);
  return (batch.boxes ?? none).map((boxes) =>
    boxes
      .filter((b) => !b.iscrowd)
      .map((b) => ({
        box: [b.bbox[0], b.bbox[1], b.bbox[0] + b.bbox[2], b.bbox[1] + b.bbox[3]] as const,
        label: b.label,
      })),
  );
}

function missing(task: HeadTask, batch: LabelledImages): RlpkdError {
  const example = batch.records?.[0]?.file;
  return new RlpkdError(
    `${task} needs ${TASK_LABELS[task]}, but the images of this batch${example ? ` (e.g. '${example}')` : ''} have none`,
    { hint: 'pick a dataset with those labels, or set teach.task to a task its labels support' },
  );
}

/** The head loss's target feeds for one batch. */
export function targetFeeds(head: HeadModel, batch: LabelledImages): Record<string, HostTensor> {
  const n = batch.images.dims[0];
  if (head.task === 'classification') {
    if (!batch.labels) throw missing('classification', batch);
    return {
      [HEAD_LOSS_NAMES.labels]: { data: BigInt64Array.from(batch.labels, (v) => BigInt(v)), dims: [n] },
    };
  }
  if (head.task === 'segmentation') {
    if (!batch.masks) throw missing('segmentation', batch);
    return {
      [HEAD_LOSS_NAMES.labels]: {
        data: BigInt64Array.from(batch.masks, (v) => BigInt(v)),
        dims: [n, head.imageHeight, head.imageWidth],
      },
    };
  }
  if (!batch.boxes) throw missing('detection', batch);
  const t = assignFcosTargets(batchBoxes(batch), {
    levels: head.levels,
    numClasses: head.numClasses,
    imageHeight: head.imageHeight,
    imageWidth: head.imageWidth,
  });
  return fcosTargetFeeds(t, n, head.numClasses);
}

/** The head loss's detection target inputs for FCOS targets of `n` images and `k` classes. */
export function fcosTargetFeeds(t: FcosTargets, n: number, k: number): Record<string, HostTensor> {
  const A = t.locations;
  return {
    [HEAD_LOSS_NAMES.clsTargets]: { data: t.cls, dims: [n, A, k] },
    [HEAD_LOSS_NAMES.boxTargets]: { data: t.box, dims: [n, A, 4] },
    [HEAD_LOSS_NAMES.centernessTargets]: { data: t.centerness, dims: [n, A] },
    [HEAD_LOSS_NAMES.positive]: { data: t.positive, dims: [n, A] },
  };
}
