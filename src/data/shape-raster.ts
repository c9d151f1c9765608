/**
 * Drawing the synthetic scenes' pieces into raw buffers: the noisy gradient background, filled shapes
 * (circle, square, triangle) that record their owner per pixel, and the visible extent of each shape
 * after occlusion. Shared by the scene families (synthetic.ts, synthetic-scales.ts); every random draw
 * comes from the caller's Rng, in a fixed order, so scenes are reproducible.
 */
import type { Rng } from '../util/rng';
import type { BoxAnnotation } from './types';

/** Shape classes, in label order. */
export const SYNTHETIC_CLASSES = ['circle', 'square', 'triangle'] as const;

/** Scene buffers of a square image of side `size`: RGB (interleaved), label mask (class + 1), owner index (-1 none). */
export interface SceneBuffers {
  size: number;
  rgb: Uint8Array;
  mask: Uint8Array;
  owner: Int16Array;
}

/** A shape to draw: class index, centre and radius in pixels. */
export interface ShapeSpec {
  cls: number;
  cx: number;
  cy: number;
  r: number;
}

/** Visible pixel extent of one shape: inclusive bounds and pixel count (0 when fully hidden). */
export interface VisibleExtent {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  area: number;
}

/** Rounds to a byte, clamping to [0, 255]. */
export function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** Whether pixel centre (x, y) lies in a shape of class `cls` centred at (cx, cy) with radius r. */
function insideTest(cls: number, cx: number, cy: number, r: number): (x: number, y: number) => boolean {
  if (cls === 0) return (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  if (cls === 1) return (x, y) => Math.abs(x - cx) <= r * 0.85 && Math.abs(y - cy) <= r * 0.85;
  // upward triangle: apex (cx, cy - r), base corners (cx -/+ r, cy + r)
  return (x, y) => y <= cy + r && Math.abs(x - cx) <= ((y - (cy - r)) / (2 * r)) * r;
}

/** Fresh buffers of a `size`² scene with a noisy colour gradient painted as background. */
export function paintBackground(rng: Rng, size: number): SceneBuffers {
  const s = size;
  const rgb = new Uint8Array(s * s * 3);
  const base = [20 + rng.int(80), 20 + rng.int(80), 20 + rng.int(80)];
  const grad = [rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(-40, 40)];
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const t = (x + y) / (2 * s);
      for (let c = 0; c < 3; c++)
        rgb[(y * s + x) * 3 + c] = clamp(base[c]! + grad[c]! * t + rng.uniform(-10, 10));
    }
  }
  return { size: s, rgb, mask: new Uint8Array(s * s), owner: new Int16Array(s * s).fill(-1) };
}

/** A random shape colour: bright channels with one dark one (colourful, distinct from the background). */
export function shapeColor(rng: Rng): number[] {
  const color = [130 + rng.int(126), 130 + rng.int(126), 130 + rng.int(126)];
  color[rng.int(3)] = rng.int(90);
  return color;
}

/** Fills shape number `k` over whatever is drawn, with per-pixel colour noise; records class and owner. */
export function rasterShape(
  rng: Rng,
  buf: SceneBuffers,
  shape: ShapeSpec,
  color: readonly number[],
  k: number,
): void {
  const s = buf.size;
  const { cls, cx, cy, r } = shape;
  const inside = insideTest(cls, cx, cy, r);
  const x0 = Math.max(0, Math.floor(cx - r - 1));
  const x1 = Math.min(s - 1, Math.ceil(cx + r + 1));
  const y0 = Math.max(0, Math.floor(cy - r - 1));
  const y1 = Math.min(s - 1, Math.ceil(cy + r + 1));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (!inside(x + 0.5, y + 0.5)) continue;
      const p = y * s + x;
      buf.owner[p] = k;
      buf.mask[p] = cls + 1;
      for (let c = 0; c < 3; c++) buf.rgb[p * 3 + c] = clamp(color[c]! + rng.uniform(-6, 6));
    }
  }
}

/** The visible extent of shapes 0..count-1 from the owner map. */
export function visibleExtents(buf: SceneBuffers, count: number): VisibleExtent[] {
  const s = buf.size;
  const out = Array.from({ length: count }, () => ({ minX: s, minY: s, maxX: -1, maxY: -1, area: 0 }));
  for (let p = 0; p < buf.owner.length; p++) {
    const k = buf.owner[p]!;
    if (k < 0) continue;
    const e = out[k]!;
    const x = p % s;
    const y = (p - x) / s;
    e.minX = Math.min(e.minX, x);
    e.maxX = Math.max(e.maxX, x);
    e.minY = Math.min(e.minY, y);
    e.maxY = Math.max(e.maxY, y);
    e.area++;
  }
  return out;
}

/** The COCO box of a visible extent of a shape of class `cls`. */
export function extentBox(e: VisibleExtent, cls: number): BoxAnnotation {
  return {
    bbox: [e.minX, e.minY, e.maxX - e.minX + 1, e.maxY - e.minY + 1],
    categoryId: cls + 1,
    label: cls,
    iscrowd: false,
    area: e.area,
  };
}
