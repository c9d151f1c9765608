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

/** Which role a split plays: it decides the COCO JSON key (data.annotations / data.val_annotations). */
export type SplitRole = 'train' | 'val';

/** Options of openDatasetSplits. */
export interface OpenSplitsOptions {
  /**
   * The held-out split was asked for explicitly (e.g. `--set data.val_split=...` on the command line): a
   * missing one is an error instead of a held-out carve of the training split.
   */
  requireValSplit?: boolean;
}

/** Opens one split by name (no carving); `role` defaults to 'train' for data.split's name, else 'val'. */
export async function openDataset(
  data: DataConfig,
  split: string,
  log?: LogSink,
  role: SplitRole = split === (data.split ?? DEFAULT_SPLITS[data.type][0]) ? 'train' : 'val',
): Promise<Dataset> {
  const root = requireRoot(data);
  let ds: Dataset;
  switch (data.type) {
    case 'imagefolder':
      // Class folders are optional here: distillation reads no labels.
      ds = readImageFolder(root, split, data.split !== undefined || split !== DEFAULT_SPLITS.imagefolder[0], {
        requireLabels: false,
      });
      break;
    case 'coco':
      ds =
        role === 'train'
          ? readCoco(root, split, data.annotations)
          : readCoco(root, split, data.val_annotations, {
              split: 'data.val_split',
              annotations: 'data.val_annotations',
            });
      break;
    case 'ade20k':
      // Distillation reads no labels, so a split without masks is not refused (the masks are left out).
      ds = readAde20k(root, split, { requireMasks: false });
      if (ds.maskConvention === undefined) {
        log?.info(
          `ade20k '${split}': not every image has a label mask under annotations/${split}/; masks are not ` +
            'loaded (distillation does not need them)',
        );
      }
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

/** What is missing of the held-out split (folder or annotations), or undefined when it is all there. */
function missingValSplit(data: DataConfig, val: string): string | undefined {
  const root = requireRoot(data);
  const folder = (dir: string) => (isDir(dir) ? undefined : `the folder '${dir}' does not exist`);
  switch (data.type) {
    case 'imagefolder':
      return folder(path.join(root, val));
    case 'coco': {
      const paths = cocoPaths(root, val, data.val_annotations);
      if (!fs.existsSync(paths.annotations)) return `its annotations '${paths.annotations}' do not exist`;
      return folder(paths.imageDir);
    }
    case 'ade20k':
      return folder(path.join(root, 'images', val));
    case 'synthetic':
      return undefined;
  }
}

/**
 * The training split and a held-out split: the val split when present, otherwise (unless
 * `requireValSplit`) the last `data.holdout` images of a fixed seeded permutation of the training split
 * (removed from training), announced in one line.
 */
export async function openDatasetSplits(
  data: DataConfig,
  log?: LogSink,
  options: OpenSplitsOptions = {},
): Promise<DatasetSplits> {
  const [defTrain, defVal] = DEFAULT_SPLITS[data.type];
  const trainName = data.split ?? defTrain;
  const valName = data.val_split ?? defVal;
  const train = await openDataset(data, trainName, log, 'train');
  const missing = missingValSplit(data, valName);
  if (!missing) return { train, val: await openDataset(data, valName, log, 'val') };
  if (options.requireValSplit) {
    throw new RlpkdError(`data.val_split '${valName}' cannot be used: ${missing}`, {
      hint:
        'fix data.root / data.val_split' +
        (data.type === 'coco' ? ' / data.val_annotations' : '') +
        `, or pass --set data.val_split=null to hold out data.holdout (${data.holdout}) training images instead`,
    });
  }
  const n = Math.min(data.holdout, Math.floor(train.records.length / 2));
  if (n === 0) {
    throw new RlpkdError(
      `'${data.root}' has no usable '${valName}' split (${missing}) and too few images to hold any out`,
      { hint: 'add a validation split or more images (data.holdout sets how many are held out)' },
    );
  }
  log?.info(
    `no '${valName}' split (${missing}): holding out ${n} of ${train.records.length} training images ` +
      'for evaluation instead (data.holdout)',
  );
  const order = new Rng('holdout').shuffle(train.records.map((_, i) => i));
  const held = new Set(order.slice(order.length - n));
  return {
    train: { ...train, records: train.records.filter((_, i) => !held.has(i)) },
    val: { ...train, split: `${train.split}-holdout`, records: train.records.filter((_, i) => held.has(i)) },
  };
}
