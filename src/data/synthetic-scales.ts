/**
 * The `scales` synthetic scene family: scenes where the image decides which pyramid level matters. Each
 * scene is one of four kinds, drawn with equal probability:
 * - `small`: 3–8 tiny objects (a few pixels across: resolvable on P2/P3, below one cell of P4/P5);
 * - `medium`: 1–3 medium objects;
 * - `large`: 1–2 large objects (a quarter to two thirds of the image side);
 * - `mixed`: one large, 1–2 medium and 2–5 tiny objects over unlabelled clutter strokes.
 * Objects are the shapes family's circles, squares and triangles (same classes, same label-mask
 * convention); boxes and areas are measured on the visible pixels after occlusion.
 *
 * Size bins are fractions of the image area, not COCO's absolute pixel ranges (a 96² scene has no object
 * above COCO's 96² "large" threshold): with f = visible area / (width · height),
 *   small  f < 1/256   (side under 1/16 of the image side: at 96², under 36 px, about 6×6),
 *   medium 1/256 ≤ f < 1/16,
 *   large  f ≥ 1/16    (side at least a quarter of the image side: at 96², 576 px or more).
 * For comparison, COCO's 32² and 96² thresholds are 0.33% and 3% of a 640×480 image. An image's bin is
 * its objects' common bin, or `mixed` when they differ.
 */
import { Rng } from '../util/rng';
import {
  extentBox,
  paintBackground,
  rasterShape,
  shapeColor,
  SYNTHETIC_CLASSES,
  visibleExtents,
  type SceneBuffers,
  type ShapeSpec,
} from './shape-raster';
import type { SyntheticOptions, SyntheticScene } from './synthetic';
import type { BoxAnnotation } from './types';

/** Object size bins (see the module doc for the thresholds). */
export type ObjectSizeBin = 'small' | 'medium' | 'large';

/** An image's size bin: its objects' common bin, or `mixed`. */
export type ImageSizeBin = ObjectSizeBin | 'mixed';

/** Object-area fraction thresholds of the bins: small below the first, large at or above the second. */
export const SIZE_BIN_FRACTIONS = { smallBelow: 1 / 256, largeFrom: 1 / 16 } as const;

/** The scene kinds the generator draws; each aims at the image bin of the same name. */
const SCALES_SCENE_KINDS = ['small', 'medium', 'large', 'mixed'] as const;

/** A `scales` scene: a shapes scene plus its kind, per-object bins, the image bin and an instance map. */
export interface ScalesScene extends SyntheticScene {
  kind: (typeof SCALES_SCENE_KINDS)[number];
  /** Size bin of each box, in box order. */
  objectBins: ObjectSizeBin[];
  sizeBin: ImageSizeBin;
  /** Per pixel: index into `boxes` of the visible object, or -1 (background, clutter). */
  instances: Int16Array;
}

/** The size bin of an object of `area` pixels in an image of `imageArea` pixels. */
export function objectSizeBin(area: number, imageArea: number): ObjectSizeBin {
  const f = area / imageArea;
  return f < SIZE_BIN_FRACTIONS.smallBelow ? 'small' : f < SIZE_BIN_FRACTIONS.largeFrom ? 'medium' : 'large';
}

/** An image's bin from its objects' bins: the common one, or `mixed` (an image without objects: `mixed`). */
export function imageSizeBin(bins: readonly ObjectSizeBin[]): ImageSizeBin {
  const first = bins[0];
  return first !== undefined && bins.every((b) => b === first) ? first : 'mixed';
}

/** Radius ranges (fractions of the image side) per bin, inside the bin's area range with margin for every shape. */
const RADIUS: Record<ObjectSizeBin, [number, number]> = {
  small: [0.02, 0.03],
  medium: [0.06, 0.11],
  large: [0.2, 0.32],
};

/**
 * Places an object of `bin` inside the image, trying a few times to keep it apart from earlier objects of
 * the same bin (so objects of a kind are seldom hidden by each other); the last try is kept regardless.
 */
function place(rng: Rng, s: number, bin: ObjectSizeBin, placed: readonly ShapeSpec[]): ShapeSpec {
  const [lo, hi] = RADIUS[bin];
  const r = s * rng.uniform(lo, hi);
  const cls = rng.int(SYNTHETIC_CLASSES.length);
  let cx = 0;
  let cy = 0;
  for (let attempt = 0; attempt < 20; attempt++) {
    cx = rng.uniform(r, s - r);
    cy = rng.uniform(r, s - r);
    // Large objects cannot stay apart in a square image; they may overlap by a fifth of their radii.
    const spacing = bin === 'large' ? 0.8 : 1.2;
    const clear = placed.every((p) => Math.hypot(p.cx - cx, p.cy - cy) >= spacing * (p.r + r) || p.r > 2 * r);
    if (clear) break;
  }
  return { cls, cx, cy, r };
}

/** The bins of the objects of one scene kind, in drawing order (large first: small objects stay on top). */
function objectPlan(rng: Rng, kind: ScalesScene['kind']): ObjectSizeBin[] {
  const n = (lo: number, hi: number): number => lo + rng.int(hi - lo + 1);
  const repeat = (bin: ObjectSizeBin, count: number): ObjectSizeBin[] =>
    Array<ObjectSizeBin>(count).fill(bin);
  switch (kind) {
    case 'small':
      return repeat('small', n(3, 8));
    case 'medium':
      return repeat('medium', n(1, 3));
    case 'large':
      return repeat('large', n(1, 2));
    case 'mixed':
      return ['large', ...repeat('medium', n(1, 2)), ...repeat('small', n(2, 5))];
  }
}

/** Unlabelled grey strokes (1 px wide) over the background: clutter that no box or mask covers. */
function drawClutter(rng: Rng, buf: SceneBuffers): void {
  const s = buf.size;
  const strokes = 3 + rng.int(4);
  for (let k = 0; k < strokes; k++) {
    const grey = 60 + rng.int(140);
    const x0 = rng.uniform(0, s);
    const y0 = rng.uniform(0, s);
    const angle = rng.uniform(0, Math.PI);
    const length = s * rng.uniform(0.2, 0.6);
    for (let t = 0; t <= length; t += 0.5) {
      const x = Math.floor(x0 + Math.cos(angle) * t);
      const y = Math.floor(y0 + Math.sin(angle) * t);
      if (x < 0 || y < 0 || x >= s || y >= s) continue;
      for (let c = 0; c < 3; c++) buf.rgb[(y * s + x) * 3 + c] = grey;
    }
  }
}

/** Renders `scales` scene `index` of `split`; depends only on (seed, split, index). */
export function renderScalesScene(o: SyntheticOptions, split: string, index: number): ScalesScene {
  const rng = new Rng(o.seed).fork(`scales/${split}/${index}`);
  const s = o.imageSize;
  const kind = SCALES_SCENE_KINDS[rng.int(SCALES_SCENE_KINDS.length)]!;
  const buf = paintBackground(rng, s);
  if (kind === 'mixed') drawClutter(rng, buf);
  const placed: ShapeSpec[] = [];
  for (const bin of objectPlan(rng, kind)) {
    const shape = place(rng, s, bin, placed);
    placed.push(shape);
    rasterShape(rng, buf, shape, shapeColor(rng), placed.length - 1);
  }
  // Boxes and areas from the visible pixels; objects hidden entirely are dropped and the map renumbered.
  const boxes: BoxAnnotation[] = [];
  const renumber = new Int16Array(placed.length).fill(-1);
  visibleExtents(buf, placed.length).forEach((e, k) => {
    if (e.area === 0) return;
    renumber[k] = boxes.length;
    boxes.push(extentBox(e, placed[k]!.cls));
  });
  const instances = buf.owner.map((k) => (k < 0 ? -1 : renumber[k]!));
  const objectBins = boxes.map((b) => objectSizeBin(b.area, s * s));
  return {
    size: s,
    rgb: buf.rgb,
    mask: buf.mask,
    boxes,
    kind,
    objectBins,
    sizeBin: imageSizeBin(objectBins),
    instances,
  };
}
