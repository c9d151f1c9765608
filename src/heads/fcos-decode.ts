/**
 * Turning the detection head's outputs into boxes, with FCOS's inference defaults (Tian et al. 2019 and
 * its reference configuration): locations whose class probability exceeds 0.05 are candidates, at most
 * 1000 of them by score per image; a candidate's score is √(σ(class logit)·σ(centerness logit)) (the
 * product ranks as FCOS's; the square root keeps scores on the probability scale, as its later
 * releases); boxes are the location minus/plus the predicted distances, clipped to the image;
 * non-maximum suppression per class at IoU 0.6; the best 100 per image are kept.
 */
import { fcosLocations } from './fcos-targets';
import type { HeadLevel } from './types';

/** A detection in image pixels, corners [x1, y1, x2, y2], with its 0-based class index. */
export interface Detection {
  box: [number, number, number, number];
  score: number;
  label: number;
}

export interface FcosDecodeOptions {
  levels: readonly HeadLevel[];
  numClasses: number;
  imageHeight: number;
  imageWidth: number;
  /** Minimum class probability of a candidate (default 0.05). */
  scoreThreshold?: number;
  /** Candidates kept before NMS, per image (default 1000). */
  preNmsTopK?: number;
  /** Suppression IoU (default 0.6). */
  nmsIou?: number;
  /** Detections kept per image (default 100). */
  maxDetections?: number;
}

/** IoU of two corner boxes in continuous coordinates (torchvision's box_iou: no +1). */
export function cornerBoxIou(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Greedy NMS per class: visits detections by descending score (ties in input order) and drops one whose
 * IoU with a kept detection of the same class exceeds `iou`. Returns the kept ones, best first.
 */
export function nmsPerClass(detections: readonly Detection[], iou: number): Detection[] {
  const order = detections
    .map((d, i) => i)
    .sort((i, j) => detections[j].score - detections[i].score || i - j);
  const kept: Detection[] = [];
  for (const i of order) {
    const d = detections[i];
    if (kept.every((k) => k.label !== d.label || cornerBoxIou(k.box, d.box) <= iou)) kept.push(d);
  }
  return kept;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * Decodes a batch of head outputs (cls [N, A, K], box [N, A, 4], centerness [N, A], as flat arrays) into
 * per-image detections, best first.
 */
export function decodeFcos(
  outputs: { cls: ArrayLike<number>; box: ArrayLike<number>; centerness: ArrayLike<number> },
  options: FcosDecodeOptions,
): Detection[][] {
  const K = options.numClasses;
  const points = fcosLocations(options.levels);
  const A = points.length / 2;
  const N = outputs.centerness.length / A;
  const threshold = options.scoreThreshold ?? 0.05;
  const results: Detection[][] = [];
  for (let n = 0; n < N; n++) {
    const candidates: Detection[] = [];
    for (let a = 0; a < A; a++) {
      const row = n * A + a;
      const ctr = sigmoid(outputs.centerness[row]);
      for (let k = 0; k < K; k++) {
        const p = sigmoid(outputs.cls[row * K + k]);
        if (!(p > threshold)) continue;
        const [x, y] = [points[2 * a], points[2 * a + 1]];
        const d = [0, 1, 2, 3].map((i) => outputs.box[row * 4 + i]);
        const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
        candidates.push({
          box: [
            clip(x - d[0], options.imageWidth),
            clip(y - d[1], options.imageHeight),
            clip(x + d[2], options.imageWidth),
            clip(y + d[3], options.imageHeight),
          ],
          score: Math.sqrt(p * ctr),
          label: k,
        });
      }
    }
    const top = candidates
      .map((d, i) => ({ d, i }))
      .sort((u, v) => v.d.score - u.d.score || u.i - v.i)
      .slice(0, options.preNmsTopK ?? 1000)
      .map((u) => u.d);
    results.push(nmsPerClass(top, options.nmsIou ?? 0.6).slice(0, options.maxDetections ?? 100));
  }
  return results;
}
