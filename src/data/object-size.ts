/** Object size of an image record, for ordering images by how large their objects are. */
import type { ImageRecord } from './types';

/**
 * Mean side length √area (pixels of the original image) of the record's non-crowd boxes, or null when it
 * has none (no box annotations in the data, or only crowd regions).
 */
export function objectSize(record: ImageRecord): number | null {
  const boxes = (record.boxes ?? []).filter((b) => !b.iscrowd && b.area > 0);
  if (boxes.length === 0) return null;
  return boxes.reduce((s, b) => s + Math.sqrt(b.area), 0) / boxes.length;
}
