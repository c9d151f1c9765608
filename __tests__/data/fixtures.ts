/** Tiny image datasets written with sharp into a temp folder, for the reader and loader tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../src/util/rng';

/** Writes an RGB PNG with seeded pixels (or the given ones); returns the pixels. */
export async function writePng(
  file: string,
  width: number,
  height: number,
  seedOrPixels: number | Uint8Array,
): Promise<Uint8Array> {
  let pixels: Uint8Array;
  if (typeof seedOrPixels === 'number') {
    const rng = new Rng(seedOrPixels);
    pixels = Uint8Array.from({ length: width * height * 3 }, () => rng.int(256));
  } else {
    pixels = seedOrPixels;
  }
  const channels = pixels.length / (width * height);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(pixels), { raw: { width, height, channels: channels as 1 | 3 } })
    .png()
    .toFile(file);
  return pixels;
}

/** Writes a one-channel PNG label mask. */
export async function writeMask(
  file: string,
  width: number,
  height: number,
  values: Uint8Array,
): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(values), { raw: { width, height, channels: 1 } })
    .png()
    .toFile(file);
}

/** An image folder: <root>/<split>/<class>/<n>.png, `perClass` images each. */
export async function makeImageFolder(
  root: string,
  split: string,
  classes: string[],
  perClass: number,
): Promise<void> {
  let seed = 0;
  for (const c of classes) {
    for (let i = 0; i < perClass; i++) await writePng(path.join(root, split, c, `${i}.png`), 6, 5, seed++);
  }
}
