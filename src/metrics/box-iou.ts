/**
 * Box IoU exactly as pycocotools' C `bbIou` computes it: boxes are [x, y, w, h] in continuous coordinates
 * (no +1), and against a crowd ground truth the union is the detection's own area, so a detection inside a
 * crowd region scores 1 however small it is.
 */

/** A box `[x, y, width, height]`. */
export type XywhBox = readonly [number, number, number, number];

/** IoU of a detection with a ground-truth box (`crowd`: the gt is a crowd region). */
export function cocoBoxIou(dt: XywhBox, gt: XywhBox, crowd: boolean): number {
  // Same operations in the same order as bbIou, so the result is bit-identical to the reference.
  const w = Math.min(dt[2] + dt[0], gt[2] + gt[0]) - Math.max(dt[0], gt[0]);
  if (w <= 0) return 0;
  const h = Math.min(dt[3] + dt[1], gt[3] + gt[1]) - Math.max(dt[1], gt[1]);
  if (h <= 0) return 0;
  const inter = w * h;
  const dtArea = dt[2] * dt[3];
  const union = crowd ? dtArea : dtArea + gt[2] * gt[3] - inter;
  return inter / union;
}
