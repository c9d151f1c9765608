/**
 * ImageFolder datasets (torchvision convention): `<root>/<split>/<class>/**\/<image>`, class index = position
 * of the class folder name in sorted order. Without a `<split>` folder the root itself holds the classes. For
 * distillation alone, a split of loose images (no class folders) may be read unlabelled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputFileError } from '../errors';
import { globImages, isDir, requireDir, under } from './dataset-files';
import type { Dataset } from './types';

/** Options of readImageFolder. */
export interface ImageFolderOptions {
  /**
   * Images must sit in class sub-folders (default true). False (distillation, which reads no labels): a
   * split holding its images directly, without class folders, is read as unlabelled images.
   */
  requireLabels?: boolean;
}

/** Reads an image-folder split; `explicitSplit` false lets a root without split folders stand in. */
export function readImageFolder(
  root: string,
  split: string,
  explicitSplit = true,
  options: ImageFolderOptions = {},
): Dataset {
  requireDir(
    root,
    'imagefolder dataset root',
    'set data.root to a folder holding <split>/<class>/ image folders',
  );
  let dir = path.join(root, split);
  if (!isDir(dir)) {
    if (explicitSplit) {
      throw new InputFileError(`imagefolder split folder '${dir}' does not exist`, {
        hint: `expected ${root}/${split}/<class>/<images>; set data.split to the split folder name`,
      });
    }
    dir = root;
  }
  const splitName = path.relative(root, dir) || '.';
  const classes = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (classes.length === 0) {
    const loose = options.requireLabels === false ? globImages(dir, '*') : [];
    if (loose.length > 0) {
      const records = loose.map((rel) => ({ id: rel, file: under(dir, rel) }));
      return { type: 'imagefolder', root, split: splitName, classes: [], records };
    }
    throw new InputFileError(`imagefolder '${dir}' has no class sub-folders`, {
      hint: "expected one folder per class, each holding that class's images",
    });
  }
  const index = new Map(classes.map((c, i) => [c, i]));
  const records = globImages(dir, '*/**/*').map((rel) => ({
    id: rel,
    file: under(dir, rel),
    label: index.get(rel.split('/')[0]!)!,
  }));
  if (records.length === 0) {
    throw new InputFileError(`imagefolder '${dir}' has class folders but no images`, {
      hint: 'supported image types: jpg, jpeg, png, webp, tif, tiff, gif, avif',
    });
  }
  return { type: 'imagefolder', root, split: splitName, classes, records };
}
