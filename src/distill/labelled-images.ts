/**
 * A batch's labels (class indices, label masks, boxes, the records they came from) carried along when its
 * images are re-chunked for the level-selection environments, joined for phase 3's updates or held out:
 * the task loss and the task yardstick need them wherever the images go.
 */
import type { BoxAnnotation, ImageRecord } from '../data/types';

/** The labels of n images (any part may be absent: the dataset does not have it). */
export interface ImageLabels {
  records?: ImageRecord[];
  labels?: Int32Array;
  /** n·H·W label masks. */
  masks?: Uint8Array;
  boxes?: BoxAnnotation[][];
}

/** The label fields of a batch (nothing else). */
export function labelsOf(batch: ImageLabels): ImageLabels {
  return {
    ...(batch.records ? { records: batch.records } : {}),
    ...(batch.labels ? { labels: batch.labels } : {}),
    ...(batch.masks ? { masks: batch.masks } : {}),
    ...(batch.boxes ? { boxes: batch.boxes } : {}),
  };
}

/** Labels of images [start, end) of a batch of n images. */
export function sliceLabels(batch: ImageLabels, n: number, start: number, end: number): ImageLabels {
  const per = batch.masks ? batch.masks.length / n : 0;
  return {
    ...(batch.records ? { records: batch.records.slice(start, end) } : {}),
    ...(batch.labels ? { labels: batch.labels.slice(start, end) } : {}),
    ...(batch.masks ? { masks: batch.masks.slice(start * per, end * per) } : {}),
    ...(batch.boxes ? { boxes: batch.boxes.slice(start, end) } : {}),
  };
}

/** The labels of consecutive parts as one batch; a field is kept only when every part has it. */
export function joinLabels(parts: readonly ImageLabels[]): ImageLabels {
  const every = <K extends keyof ImageLabels>(k: K): NonNullable<ImageLabels[K]>[] | null =>
    parts.length > 0 && parts.every((p) => p[k] !== undefined)
      ? parts.map((p) => p[k] as NonNullable<ImageLabels[K]>)
      : null;
  const records = every('records');
  const labels = every('labels');
  const masks = every('masks');
  const boxes = every('boxes');
  const concat = <T extends Int32Array | Uint8Array>(xs: T[], make: (n: number) => T): T => {
    const out = make(xs.reduce((a, x) => a + x.length, 0));
    let o = 0;
    for (const x of xs) {
      out.set(x, o);
      o += x.length;
    }
    return out;
  };
  return {
    ...(records ? { records: records.flat() } : {}),
    ...(labels ? { labels: concat(labels, (n) => new Int32Array(n)) } : {}),
    ...(masks ? { masks: concat(masks, (n) => new Uint8Array(n)) } : {}),
    ...(boxes ? { boxes: boxes.flat() } : {}),
  };
}
