/**
 * One entry point from the `data` config section to train / held-out Datasets, whatever the format. A missing
 * val split is replaced by `data.holdout` images carved (seeded, disjoint) out of the training split.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DataConfig } from '../config/schema';
import { RlpkdError } from '../errors';
import type { LogSink } from '../logging/logger';
import { Rng } from '../util/rng';
import { readAde20k } from './ade20k';
import { cocoPaths, readCoco } from './coco';
import { isDir } from './dataset-files';
import { readImageFolder } from './imagefolder';
import { ensureSynthetic, readSynthetic } from './synthetic';
import type { Dataset, DatasetType } from './types';

/** Default split folder names per format: [train, val]. */
export const DEFAULT_SPLITS: Record<DatasetType, [string, string]> = {
  imagefolder: ['train', 'val'],
  coco: ['train2017', 'val2017'],
  ade20k: ['training', 'validation'],
  synthetic: ['train', 'val'],
};

/** Train and held-out splits of a dataset. */
export interface DatasetSplits {
  train: Dataset;
  val: Dataset;
}

function requireRoot(data: DataConfig): string {
  if (data.root === undefined) {
    throw new RlpkdError(`data.root is not set (data.type ${data.type})`, {
      hint: `pass the dataset folder, e.g. --set data.root=/path/to/${data.type}`,
    });
  }
  return data.root;
}

/** Opens one split by name (no carving). */
export async function openDataset(data: DataConfig, split: string, log?: LogSink): Promise<Dataset> {
  const root = requireRoot(data);
  let ds: Dataset;
  switch (data.type) {
    case 'imagefolder':
      ds = readImageFolder(root, split, data.split !== undefined || split !== DEFAULT_SPLITS.imagefolder[0]);
      break;
    case 'coco':
      ds = readCoco(
        root,
        split,
        split === (data.split ?? DEFAULT_SPLITS.coco[0]) ? data.annotations : undefined,
      );
      break;
    case 'ade20k':
      ds = readAde20k(root, split);
      break;
    case 'synthetic': {
      const s = data.synthetic;
      const dir = await ensureSynthetic(
        root,
        {
          family: s.family,
          trainImages: s.train_images,
          valImages: s.val_images,
          imageSize: s.image_size,
          minShapes: s.min_shapes,
          maxShapes: s.max_shapes,
          seed: s.seed,
        },
        log,
      );
      ds = readSynthetic(dir, split);
      break;
    }
  }
  if (data.max_images !== undefined && ds.records.length > data.max_images) {
    ds = { ...ds, records: ds.records.slice(0, data.max_images) };
  }
  return ds;
}

/** Whether a held-out split folder exists for this config. */
function hasValSplit(data: DataConfig, val: string): boolean {
  const root = requireRoot(data);
  switch (data.type) {
    case 'imagefolder':
      return isDir(path.join(root, val));
    case 'coco':
      return isDir(path.join(root, val)) && fs.existsSync(cocoPaths(root, val).annotations);
    case 'ade20k':
      return isDir(path.join(root, 'images', val)) && isDir(path.join(root, 'annotations', val));
    case 'synthetic':
      return true;
  }
}

/**
 * The training split and a held-out split: the val split folder when present, otherwise the last
 * `data.holdout` images of a fixed seeded permutation of the training split (removed from training).
 */
export async function openDatasetSplits(data: DataConfig, log?: LogSink): Promise<DatasetSplits> {
  const [defTrain, defVal] = DEFAULT_SPLITS[data.type];
  const trainName = data.split ?? defTrain;
  const valName = data.val_split ?? defVal;
  const train = await openDataset(data, trainName, log);
  if (hasValSplit(data, valName)) return { train, val: await openDataset(data, valName, log) };
  if (data.val_split !== undefined) {
    throw new RlpkdError(`data.val_split '${data.val_split}' does not exist under '${data.root}'`, {
      hint: 'remove data.val_split to hold out data.holdout training images instead',
    });
  }
  const n = Math.min(data.holdout, Math.floor(train.records.length / 2));
  if (n === 0) {
    throw new RlpkdError(`'${data.root}' has no ${valName} split and too few images to hold any out`, {
      hint: 'add a validation split folder or more images (data.holdout sets how many are held out)',
    });
  }
  log?.info(
    `no '${valName}' split under ${data.root}: holding out ${n} of ${train.records.length} training images`,
  );
  const order = new Rng('holdout').shuffle(train.records.map((_, i) => i));
  const held = new Set(order.slice(order.length - n));
  return {
    train: { ...train, records: train.records.filter((_, i) => !held.has(i)) },
    val: { ...train, split: `${train.split}-holdout`, records: train.records.filter((_, i) => held.has(i)) },
  };
}
