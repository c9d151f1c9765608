/**
 * FCOS target assignment on the host (Tian et al. 2019, §3.1–3.2). Every location of every level is the
 * point (⌊s/2⌋ + x·s, ⌊s/2⌋ + y·s) in image pixels (s the level's stride, as FCOS's reference code). A
 * location is positive for a box when it lies strictly inside the box and the largest of its four
 * distances to the box's sides falls in the level's scale range [lo, hi); among several such boxes the
 * one with the smallest area wins. FCOS's ranges for an 800-pixel input are 0/64/128/256/512/∞ on
 * P3..P7 — boundaries at 8·stride there. Our images are far smaller (96 px in the demo), so the
 * boundaries are FCOS's taken as fractions of the image's longer side (64/800 = 0.08, 0.16, 0.32, 0.64):
 * with L levels the first L − 1 fractions separate them, the first level starting at 0 and the last
 * ending at ∞. On a 96-pixel image P2..P5 get [0, 7.7), [7.7, 15.4), [15.4, 30.7), [30.7, ∞).
 */
import { RlpkdError } from '../errors';
import type { HeadLevel } from './types';

/** A ground-truth box in image pixels, corners [x1, y1, x2, y2], and its class index (0-based). */
export interface LabelledBox {
  box: readonly [number, number, number, number];
  label: number;
}

/** FCOS's range boundaries (64, 128, 256, 512 at an 800-pixel input) as fractions of the image side. */
export const FCOS_RANGE_FRACTIONS = [64 / 800, 128 / 800, 256 / 800, 512 / 800] as const;

/** Per-level [lo, hi) ranges of the largest side distance, scaled to the image (see the file comment). */
export function fcosScaleRanges(
  numLevels: number,
  imageHeight: number,
  imageWidth: number,
): [number, number][] {
  if (numLevels > FCOS_RANGE_FRACTIONS.length + 1) {
    throw new RlpkdError(
      `FCOS scale ranges: ${numLevels} levels, at most ${FCOS_RANGE_FRACTIONS.length + 1}`,
      {
        hint: 'pass explicit scaleRanges for more levels',
      },
    );
  }
  const side = Math.max(imageHeight, imageWidth);
  const bounds = [0, ...FCOS_RANGE_FRACTIONS.slice(0, numLevels - 1).map((f) => f * side), Infinity];
  return Array.from({ length: numLevels }, (_, i) => [bounds[i], bounds[i + 1]]);
}

/** Locations A over the levels (one per cell): the head's, the loss targets' and the decoder's row count. */
export function fcosLocationCount(levels: readonly HeadLevel[]): number {
  return levels.reduce((s, l) => s + l.height * l.width, 0);
}

/** The image-pixel point of every location, levels finest first, rows row-major: [x0, y0, x1, y1, ...]. */
export function fcosLocations(levels: readonly HeadLevel[]): Float32Array {
  const out = new Float32Array(fcosLocationCount(levels) * 2);
  let a = 0;
  for (const l of levels) {
    const half = Math.floor(l.stride / 2);
    for (let y = 0; y < l.height; y++) {
      for (let x = 0; x < l.width; x++, a++) {
        out[2 * a] = half + x * l.stride;
        out[2 * a + 1] = half + y * l.stride;
      }
    }
  }
  return out;
}

/** Target tensors for a batch, laid out as the head's outputs. */
export interface FcosTargets {
  /** [N, A, K] one-hot class targets (all 0 at background locations). */
  cls: Float32Array;
  /** [N, A, 4] l, t, r, b distances in pixels (0 at background locations). */
  box: Float32Array;
  /** [N, A] centerness √(min(l,r)/max(l,r) · min(t,b)/max(t,b)) (0 at background locations). */
  centerness: Float32Array;
  /** [N, A] 1 at positive locations. */
  positive: Float32Array;
  /** Locations A. */
  locations: number;
  /** Which box each location was assigned, per image (−1 for background): [N, A]. */
  assigned: Int32Array;
}

export interface FcosTargetOptions {
  levels: readonly HeadLevel[];
  numClasses: number;
  imageHeight: number;
  imageWidth: number;
  /** Per-level ranges (default fcosScaleRanges). */
  scaleRanges?: readonly (readonly [number, number])[];
}

/** Assigns FCOS targets for each image's boxes. */
export function assignFcosTargets(
  images: readonly (readonly LabelledBox[])[],
  options: FcosTargetOptions,
): FcosTargets {
  const { levels, numClasses: K } = options;
  const ranges =
    options.scaleRanges ?? fcosScaleRanges(levels.length, options.imageHeight, options.imageWidth);
  if (ranges.length !== levels.length) {
    throw new RlpkdError(`FCOS targets: ${ranges.length} scale ranges for ${levels.length} levels`, {
      hint: 'give one [lo, hi) range per level',
    });
  }
  const points = fcosLocations(levels);
  const A = points.length / 2;
  const N = images.length;
  const t: FcosTargets = {
    cls: new Float32Array(N * A * K),
    box: new Float32Array(N * A * 4),
    centerness: new Float32Array(N * A),
    positive: new Float32Array(N * A),
    locations: A,
    assigned: new Int32Array(N * A).fill(-1),
  };
  const levelOf = new Int32Array(A);
  let a0 = 0;
  levels.forEach((l, i) => {
    levelOf.fill(i, a0, a0 + l.height * l.width);
    a0 += l.height * l.width;
  });
  images.forEach((boxes, n) => {
    boxes.forEach((g, j) => {
      if (!(Number.isInteger(g.label) && g.label >= 0 && g.label < K)) {
        throw new RlpkdError(
          `FCOS targets: image ${n} box ${j} has label ${g.label}, classes are 0..${K - 1}`,
          {
            hint: 'map dataset category ids to contiguous 0-based class indices first',
          },
        );
      }
    });
    for (let a = 0; a < A; a++) {
      const px = points[2 * a];
      const py = points[2 * a + 1];
      const [lo, hi] = ranges[levelOf[a]];
      let best = -1;
      let bestArea = Infinity;
      // Scalar loop: COCO-sized inputs have ~20k locations × dozens of boxes per image.
      for (let j = 0; j < boxes.length; j++) {
        const [x1, y1, x2, y2] = boxes[j].box;
        const [l, tp, r, bt] = [px - x1, py - y1, x2 - px, y2 - py];
        if (l <= 0 || tp <= 0 || r <= 0 || bt <= 0) continue;
        const m = Math.max(l, tp, r, bt);
        if (m < lo || m >= hi) continue;
        const area = (x2 - x1) * (y2 - y1);
        if (area < bestArea) {
          best = j;
          bestArea = area;
        }
      }
      if (best < 0) continue;
      const [x1, y1, x2, y2] = boxes[best].box;
      const [l, tp, r, bt] = [px - x1, py - y1, x2 - px, y2 - py];
      const row = n * A + a;
      t.assigned[row] = best;
      t.positive[row] = 1;
      t.cls[row * K + boxes[best].label] = 1;
      t.box.set([l, tp, r, bt], row * 4);
      t.centerness[row] = Math.sqrt(
        (Math.min(l, r) / Math.max(l, r)) * (Math.min(tp, bt) / Math.max(tp, bt)),
      );
    }
  });
  return t;
}
