/**
 * One image from disk to model input: sharp decode (EXIF-oriented, alpha dropped, sRGB) -> resize to the model
 * size -> optional horizontal flip -> scale to [0, 1] -> normalize with mean/std -> planar CHW float32,
 * written straight into a batch buffer. Decoding runs on libuv's thread pool, off the JS thread.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import sharp from 'sharp';
import { IGNORE_LABEL } from './types';

/** Preprocessing shared by every image of a run (part of the teacher feature cache key). */
export interface Preprocess {
  height: number;
  width: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** What decoding one image yields besides the pixels. */
export interface DecodedImage {
  /** sha256 of the file bytes: the image's identity for the teacher feature cache. */
  hash: string;
  /** Size of the file's image before resizing (after EXIF orientation). */
  width: number;
  height: number;
}

/** ImageNet mean/std of [0, 1] RGB pixels, the torchvision default. */
export const IMAGENET_NORMALIZE = {
  mean: [0.485, 0.456, 0.406] as const,
  std: [0.229, 0.224, 0.225] as const,
};

/** Reads, decodes and preprocesses an image into `out` (3*H*W floats) at `offset`. Throws on a bad file. */
export async function loadImageInto(
  file: string,
  pre: Preprocess,
  flip: boolean,
  out: Float32Array,
  offset: number,
): Promise<DecodedImage> {
  const bytes = await fs.readFile(file);
  const hash = createHash('sha256').update(bytes).digest('hex');
  const image = sharp(bytes, { failOn: 'error' }).autoOrient();
  const meta = await image.metadata();
  if (!meta.width || !meta.height) throw new Error('the file has no image size (not an image?)');
  const swap = (meta.orientation ?? 1) >= 5; // EXIF orientations 5..8 transpose the image
  let pipeline = image.removeAlpha().toColourspace('srgb').resize(pre.width, pre.height, { fit: 'fill' });
  if (flip) pipeline = pipeline.flop();
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.width !== pre.width || info.height !== pre.height || info.channels !== 3) {
    throw new Error(
      `decoded to ${info.width}x${info.height}x${info.channels}, expected ${pre.width}x${pre.height}x3`,
    );
  }
  writeNormalizedChw(data, pre, out, offset);
  return { hash, width: swap ? meta.height : meta.width, height: swap ? meta.width : meta.height };
}

/** Convenience: one preprocessed image as its own [1, 3, H, W] tensor. */
export async function loadImage(
  file: string,
  pre: Preprocess,
  flip = false,
): Promise<{ data: Float32Array; dims: [number, number, number, number]; info: DecodedImage }> {
  const data = new Float32Array(3 * pre.height * pre.width);
  const info = await loadImageInto(file, pre, flip, data, 0);
  return { data, dims: [1, 3, pre.height, pre.width], info };
}

/** HWC uint8 RGB -> normalized CHW float32. */
export function writeNormalizedChw(
  hwc: Uint8Array,
  pre: Preprocess,
  out: Float32Array,
  offset: number,
): void {
  const plane = pre.height * pre.width;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * pre.std[c]!);
    const shift = pre.mean[c]! / pre.std[c]!;
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = hwc[i * 3 + c]! * scale - shift;
  }
}

/**
 * Loads a PNG label mask resized (nearest) to the model size and flipped like its image. With
 * `reduceZeroLabel` (ADE20K convention, as mmsegmentation applies it) value 0 ("other") becomes IGNORE_LABEL,
 * an ignore value (255) stays IGNORE_LABEL, and every other value v becomes v - 1.
 */
export async function loadMaskInto(
  file: string,
  height: number,
  width: number,
  flip: boolean,
  reduceZeroLabel: boolean,
  out: Uint8Array,
  offset: number,
): Promise<void> {
  let pipeline = sharp(await fs.readFile(file), { failOn: 'error' })
    .extractChannel(0)
    .resize(width, height, { fit: 'fill', kernel: 'nearest' });
  if (flip) pipeline = pipeline.flop();
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== 1) {
    throw new Error(
      `mask decoded to ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x1`,
    );
  }
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    out[offset + i] = reduceZeroLabel ? (v === 0 || v === IGNORE_LABEL ? IGNORE_LABEL : v - 1) : v;
  }
}
