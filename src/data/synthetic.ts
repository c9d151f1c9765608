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
import {
  paintBackground,
  rasterShape,
  shapeColor,
  SYNTHETIC_CLASSES,
  visibleExtents,
  extentBox,
} from './shape-raster';
import { renderScalesScene, type ImageSizeBin, type ObjectSizeBin } from './synthetic-scales';
import type { BoxAnnotation, Dataset } from './types';

export { SYNTHETIC_CLASSES } from './shape-raster';

/** Scene families: `shapes` (the demo's scenes), `scales` (object sizes per image; see synthetic-scales.ts). */
export type SyntheticFamily = 'shapes' | 'scales';

/** Generator parameters (data.synthetic in the config). */
export interface SyntheticOptions {
  /** Scene family (default `shapes`); `scales` ignores minShapes/maxShapes. */
  family?: SyntheticFamily;
  trainImages: number;
  valImages: number;
  imageSize: number;
  minShapes: number;
  maxShapes: number;
  seed: number;
}

const GENERATOR_VERSION = 'shapes-v1';
const SCALES_GENERATOR_VERSION = 'scales-v1';
const MANIFEST = 'manifest.json';

/** One rendered scene: interleaved RGB, a label mask (0 background, c + 1 shape class), visible-pixel boxes. */
export interface SyntheticScene {
  size: number;
  rgb: Uint8Array;
  mask: Uint8Array;
  boxes: BoxAnnotation[];
  /** `scales` scenes: each box's size bin and the image's (see synthetic-scales.ts). */
  objectBins?: ObjectSizeBin[];
  sizeBin?: ImageSizeBin;
}

/** The folder name of a parameter set: a hash of the generator version and every option. */
export function syntheticHash(o: SyntheticOptions): string {
  const key = JSON.stringify([
    // The shapes family keeps the key it had before families existed (existing folders stay valid).
    o.family === 'scales' ? SCALES_GENERATOR_VERSION : GENERATOR_VERSION,
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
  const buf = paintBackground(rng, s);
  const count = o.minShapes + rng.int(o.maxShapes - o.minShapes + 1);
  const classes: number[] = [];
  for (let k = 0; k < count; k++) {
    const cls = rng.int(SYNTHETIC_CLASSES.length);
    const r = s * rng.uniform(0.08, 0.25);
    const cx = rng.uniform(r * 0.5, s - r * 0.5);
    const cy = rng.uniform(r * 0.5, s - r * 0.5);
    classes.push(cls);
    rasterShape(rng, buf, { cls, cx, cy, r }, shapeColor(rng), k);
  }
  const boxes: BoxAnnotation[] = [];
  visibleExtents(buf, count).forEach((e, k) => {
    if (e.area === 0) return; // fully covered by later shapes
    boxes.push(extentBox(e, classes[k]!));
  });
  return { size: s, rgb: buf.rgb, mask: buf.mask, boxes };
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
    const generator = o.family === 'scales' ? SCALES_GENERATOR_VERSION : GENERATOR_VERSION;
    fs.writeFileSync(path.join(tmp, MANIFEST), `${JSON.stringify({ generator, ...o }, null, 2)}\n`);
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
    const scene = o.family === 'scales' ? renderScalesScene(o, split, i) : renderScene(o, split, i);
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
    images.push({
      id: i + 1,
      file_name: name,
      width: scene.size,
      height: scene.size,
      ...(scene.sizeBin ? { size_bin: scene.sizeBin } : {}),
    });
    scene.boxes.forEach((b, k) => {
      annotations.push({
        id: annotations.length + 1,
        image_id: i + 1,
        category_id: b.categoryId,
        bbox: b.bbox,
        area: b.area,
        iscrowd: 0,
        ...(scene.objectBins ? { size_bin: scene.objectBins[k] } : {}),
      });
    });
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

/**
 * Reads a generated split: COCO boxes plus label masks and a class label (the largest visible shape), and
 * for `scales` scenes each image's size bin.
 */
export function readSynthetic(dir: string, split: string): Dataset {
  const ds = readCoco(dir, split);
  const bins = imageSizeBins(dir, split);
  for (const r of ds.records) {
    r.mask = path.join(dir, 'masks', split, ...r.id.split('/'));
    const largest = [...(r.boxes ?? [])].sort((a, b) => b.area - a.area)[0];
    if (largest) r.label = largest.label;
    const bin = bins.get(r.id);
    if (bin) r.sizeBin = bin;
  }
  return { ...ds, type: 'synthetic', maskConvention: 'reduce-zero-label' };
}

/** `size_bin` of each image of a generated split's annotations, by file name (empty for the shapes family). */
function imageSizeBins(dir: string, split: string): Map<string, ImageSizeBin> {
  const file = path.join(dir, 'annotations', `instances_${split}.json`);
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    images: { file_name: string; size_bin?: ImageSizeBin }[];
  };
  const out = new Map<string, ImageSizeBin>();
  for (const im of json.images) if (im.size_bin) out.set(im.file_name, im.size_bin);
  return out;
}
