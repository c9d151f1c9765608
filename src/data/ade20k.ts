/**
 * ADE20K-format segmentation datasets (ADEChallengeData2016 layout): `<root>/images/<split>/*.jpg` with
 * `<root>/annotations/<split>/<same name>.png` label masks. Convention (mmsegmentation `reduce_zero_label`):
 * mask value 0 is "other" and is ignored (loaded as 255); value v >= 1 is class v - 1 of 150. Class names come
 * from `<root>/objectInfo150.csv` when present.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputFileError } from '../errors';
import { globImages, isDir, requireDir, under } from './dataset-files';
import type { Dataset } from './types';

/** Number of ADE20K scene-parsing classes (label 0 excluded). */
export const ADE20K_NUM_CLASSES = 150;

/** Options of readAde20k. */
export interface Ade20kOptions {
  /**
   * Every image needs its mask (default true). False (distillation, which reads no labels): a split whose
   * annotation folder is absent or misses a mask is read without masks instead of being refused.
   */
  requireMasks?: boolean;
}

/** Reads an ADE20K-format split; every image needs its mask unless `requireMasks` is false. */
export function readAde20k(root: string, split: string, options: Ade20kOptions = {}): Dataset {
  const requireMasks = options.requireMasks ?? true;
  const layout = `expected ${root}/images/${split}/*.jpg and ${root}/annotations/${split}/*.png`;
  requireDir(root, 'ade20k dataset root', `set data.root to the ADEChallengeData2016 folder; ${layout}`);
  const imageDir = path.join(root, 'images', split);
  const maskDir = path.join(root, 'annotations', split);
  for (const [dir, what] of [
    [imageDir, 'image'],
    [maskDir, 'annotation'],
  ] as const) {
    if (!isDir(dir) && (what === 'image' || requireMasks)) {
      throw new InputFileError(`ade20k ${what} folder '${dir}' does not exist`, {
        hint: `${layout}; set data.split to the split folder name (training, validation)`,
      });
    }
  }
  const images = globImages(imageDir, '**/*');
  if (images.length === 0)
    throw new InputFileError(`ade20k image folder '${imageDir}' has no images`, { hint: layout });
  const records = images.map((rel) => ({
    id: rel,
    file: under(imageDir, rel),
    mask: under(maskDir, rel.replace(/\.[^./]+$/, '.png')),
  }));
  const unmasked = records.find((r) => !fs.existsSync(r.mask));
  const base = { type: 'ade20k' as const, root, split, classes: ade20kClassNames(root) };
  if (!unmasked) return { ...base, records, maskConvention: 'reduce-zero-label' };
  if (requireMasks) {
    throw new InputFileError(`ade20k image '${unmasked.file}' has no label mask '${unmasked.mask}'`, {
      hint: 'every image needs a PNG mask with the same name under annotations/<split>/',
    });
  }
  // Labels all or nothing: a batch never mixes images with and without masks.
  return { ...base, records: records.map(({ id, file }) => ({ id, file })) };
}

/** Class names from objectInfo150.csv (Idx,Ratio,Train,Val,Name) or class_1..class_150. */
export function ade20kClassNames(root: string): string[] {
  const csv = path.join(root, 'objectInfo150.csv');
  const names = Array.from({ length: ADE20K_NUM_CLASSES }, (_, i) => `class_${i + 1}`);
  if (!fs.existsSync(csv)) return names;
  for (const line of fs.readFileSync(csv, 'utf8').split(/\r?\n/).slice(1)) {
    const cols = line.split(',');
    const idx = Number(cols[0]);
    if (Number.isInteger(idx) && idx >= 1 && idx <= ADE20K_NUM_CLASSES && cols.length >= 5) {
      names[idx - 1] = cols.slice(4).join(',').replace(/^"|"$/g, '').split(';')[0]!.trim();
    }
  }
  return names;
}
