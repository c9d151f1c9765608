/**
 * The demo dataset: deterministic scenes of circles, squares and triangles on noisy backgrounds, with class
 * labels, COCO boxes and label masks. Generated once per parameter set under `<root>/<hash>/` (PNG images,
 * `annotations/instances_<split>.json`, `masks/<split>/*.png` in the ADE20K reduce-zero-label convention: 0 =
 * background, shape class c stored as c + 1) and reused afterwards. Generation is atomic: a temporary folder
 * renamed into place when complete.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { RlpkdError } from '../errors';
import type { LogSink } from '../logging/logger';
import { Rng } from '../util/rng';
import { readCoco } from './coco';
import type { BoxAnnotation, Dataset } from './types';

/** Shape classes, in label order. */
export const SYNTHETIC_CLASSES = ['circle', 'square', 'triangle'] as const;

/** Generator parameters (data.synthetic in the config). */
export interface SyntheticOptions {
  trainImages: number;
  valImages: number;
  imageSize: number;
  minShapes: number;
  maxShapes: number;
  seed: number;
}

const GENERATOR_VERSION = 'shapes-v1';
const MANIFEST = 'manifest.json';

/** One rendered scene: interleaved RGB, a label mask (0 background, c + 1 shape class), visible-pixel boxes. */
export interface SyntheticScene {
  size: number;
  rgb: Uint8Array;
  mask: Uint8Array;
  boxes: BoxAnnotation[];
}

/** The folder name of a parameter set: a hash of the generator version and every option. */
export function syntheticHash(o: SyntheticOptions): string {
  const key = JSON.stringify([
    GENERATOR_VERSION,
    o.trainImages,
    o.valImages,
    o.imageSize,
    o.minShapes,
    o.maxShapes,
    o.seed,
  ]);
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** Renders scene `index` of `split`; depends only on (seed, split, index), so order and concurrency do not matter. */
export function renderScene(o: SyntheticOptions, split: string, index: number): SyntheticScene {
  const rng = new Rng(o.seed).fork(`${split}/${index}`);
  const s = o.imageSize;
  const rgb = new Uint8Array(s * s * 3);
  const mask = new Uint8Array(s * s);
  const owner = new Int16Array(s * s).fill(-1);
  const base = [20 + rng.int(80), 20 + rng.int(80), 20 + rng.int(80)];
  const grad = [rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(-40, 40)];
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const t = (x + y) / (2 * s);
      for (let c = 0; c < 3; c++)
        rgb[(y * s + x) * 3 + c] = clamp(base[c]! + grad[c]! * t + rng.uniform(-10, 10));
    }
  }
  const count = o.minShapes + rng.int(o.maxShapes - o.minShapes + 1);
  const shapes: { cls: number; color: number[] }[] = [];
  for (let k = 0; k < count; k++) {
    const cls = rng.int(SYNTHETIC_CLASSES.length);
    const r = s * rng.uniform(0.08, 0.25);
    const cx = rng.uniform(r * 0.5, s - r * 0.5);
    const cy = rng.uniform(r * 0.5, s - r * 0.5);
    const color = [130 + rng.int(126), 130 + rng.int(126), 130 + rng.int(126)];
    color[rng.int(3)] = rng.int(90); // one dark channel keeps shapes colourful and distinct from the background
    shapes.push({ cls, color });
    const inside = insideTest(cls, cx, cy, r);
    const x0 = Math.max(0, Math.floor(cx - r - 1));
    const x1 = Math.min(s - 1, Math.ceil(cx + r + 1));
    const y0 = Math.max(0, Math.floor(cy - r - 1));
    const y1 = Math.min(s - 1, Math.ceil(cy + r + 1));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if (!inside(x + 0.5, y + 0.5)) continue;
        const p = y * s + x;
        owner[p] = k;
        mask[p] = cls + 1;
        for (let c = 0; c < 3; c++) rgb[p * 3 + c] = clamp(color[c]! + rng.uniform(-6, 6));
      }
    }
  }
  const boxes: BoxAnnotation[] = [];
  shapes.forEach((shape, k) => {
    let minX = s;
    let minY = s;
    let maxX = -1;
    let maxY = -1;
    let area = 0;
    for (let p = 0; p < owner.length; p++) {
      if (owner[p] !== k) continue;
      const x = p % s;
      const y = (p - x) / s;
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
      area++;
    }
    if (area === 0) return; // fully covered by later shapes
    boxes.push({
      bbox: [minX, minY, maxX - minX + 1, maxY - minY + 1],
      categoryId: shape.cls + 1,
      label: shape.cls,
      iscrowd: false,
      area,
    });
  });
  return { size: s, rgb, mask, boxes };
}

function insideTest(cls: number, cx: number, cy: number, r: number): (x: number, y: number) => boolean {
  if (cls === 0) return (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  if (cls === 1) return (x, y) => Math.abs(x - cx) <= r * 0.85 && Math.abs(y - cy) <= r * 0.85;
  // upward triangle: apex (cx, cy - r), base corners (cx -/+ r, cy + r)
  return (x, y) => y <= cy + r && Math.abs(x - cx) <= ((y - (cy - r)) / (2 * r)) * r;
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** Makes sure the scenes for `o` exist under `root`; returns their folder. Generates them on first use. */
export async function ensureSynthetic(root: string, o: SyntheticOptions, log?: LogSink): Promise<string> {
  if (o.minShapes > o.maxShapes) {
    throw new RlpkdError(`synthetic data: min_shapes ${o.minShapes} exceeds max_shapes ${o.maxShapes}`);
  }
  const dir = path.join(root, syntheticHash(o));
  if (fs.existsSync(path.join(dir, MANIFEST))) return dir;
  fs.mkdirSync(root, { recursive: true });
  const tmp = path.join(root, `.${path.basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  log?.info(`generating synthetic dataset (${o.trainImages} train + ${o.valImages} val scenes) in ${dir}`);
  try {
    for (const [split, n] of [
      ['train', o.trainImages],
      ['val', o.valImages],
    ] as const) {
      await writeSplit(tmp, o, split, n);
    }
    fs.writeFileSync(
      path.join(tmp, MANIFEST),
      `${JSON.stringify({ generator: GENERATOR_VERSION, ...o }, null, 2)}\n`,
    );
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      if (!fs.existsSync(path.join(dir, MANIFEST))) throw err; // else another process finished first
    }
  } catch (err) {
    throw new RlpkdError(`could not generate the synthetic dataset in '${root}': ${(err as Error).message}`, {
      hint: 'check that the folder (data.root) is writable',
      cause: err,
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

async function writeSplit(dir: string, o: SyntheticOptions, split: string, n: number): Promise<void> {
  fs.mkdirSync(path.join(dir, split), { recursive: true });
  fs.mkdirSync(path.join(dir, 'masks', split), { recursive: true });
  fs.mkdirSync(path.join(dir, 'annotations'), { recursive: true });
  const images: object[] = [];
  const annotations: object[] = [];
  const encode = async (i: number) => {
    const scene = renderScene(o, split, i);
    const name = `${String(i).padStart(6, '0')}.png`;
    const raw = (data: Uint8Array, channels: 1 | 3) =>
      sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), {
        raw: { width: scene.size, height: scene.size, channels },
      })
        .png()
        .toBuffer();
    const [img, mask] = await Promise.all([raw(scene.rgb, 3), raw(scene.mask, 1)]);
    fs.writeFileSync(path.join(dir, split, name), img);
    fs.writeFileSync(path.join(dir, 'masks', split, name), mask);
    return { name, scene };
  };
  const results = await mapLimit(n, 4, encode);
  results.forEach(({ name, scene }, i) => {
    images.push({ id: i + 1, file_name: name, width: scene.size, height: scene.size });
    for (const b of scene.boxes) {
      annotations.push({
        id: annotations.length + 1,
        image_id: i + 1,
        category_id: b.categoryId,
        bbox: b.bbox,
        area: b.area,
        iscrowd: 0,
      });
    }
  });
  const categories = SYNTHETIC_CLASSES.map((name, i) => ({ id: i + 1, name }));
  fs.writeFileSync(
    path.join(dir, 'annotations', `instances_${split}.json`),
    JSON.stringify({ images, annotations, categories }),
  );
}

async function mapLimit<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}

/** Reads a generated split: COCO boxes plus label masks and a class label (the largest visible shape). */
export function readSynthetic(dir: string, split: string): Dataset {
  const ds = readCoco(dir, split);
  for (const r of ds.records) {
    r.mask = path.join(dir, 'masks', split, ...r.id.split('/'));
    const largest = [...(r.boxes ?? [])].sort((a, b) => b.area - a.area)[0];
    if (largest) r.label = largest.label;
  }
  return { ...ds, type: 'synthetic', maskConvention: 'reduce-zero-label' };
}
