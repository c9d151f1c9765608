import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { configFromObject } from '../../src/config';
import {
  SYNTHETIC_CLASSES,
  ensureSynthetic,
  openDatasetSplits,
  readAde20k,
  readCoco,
  readImageFolder,
  readSynthetic,
  renderScene,
  syntheticHash,
  type SyntheticOptions,
} from '../../src/data';
import { InputFileError, RlpkdError } from '../../src/errors';
import { silentLog } from '../../src/logging/logger';
import { makeImageFolder, writeMask, writePng } from './fixtures';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-data-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('imagefolder', () => {
  it('labels images by sorted class folder, recursing into sub-folders and ignoring non-images', async () => {
    await makeImageFolder(tmp, 'train', ['dog', 'cat'], 2);
    await writePng(path.join(tmp, 'train', 'cat', 'more', 'deep.png'), 4, 4, 99);
    fs.writeFileSync(path.join(tmp, 'train', 'cat', 'notes.txt'), 'x');
    const ds = readImageFolder(tmp, 'train');
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(ds.records.map((r) => [r.id, r.label])).toEqual([
      ['cat/0.png', 0],
      ['cat/1.png', 0],
      ['cat/more/deep.png', 0],
      ['dog/0.png', 1],
      ['dog/1.png', 1],
    ]);
    expect(ds.records[0]!.file).toBe(path.join(tmp, 'train', 'cat', '0.png'));
  });

  it('uses the root when there is no split folder and the split was not asked for', async () => {
    await makeImageFolder(tmp, '.', ['a', 'b'], 1);
    expect(readImageFolder(tmp, 'train', false).records).toHaveLength(2);
    expect(errorOf(() => readImageFolder(tmp, 'train', true)).message).toBe(
      `imagefolder split folder '${path.join(tmp, 'train')}' does not exist`,
    );
  });

  it('a missing root is one clear error with a hint', () => {
    const err = errorOf(() => readImageFolder(path.join(tmp, 'nope'), 'train')) as RlpkdError;
    expect(err).toBeInstanceOf(InputFileError);
    expect(err.message).toBe(`imagefolder dataset root '${path.join(tmp, 'nope')}' does not exist`);
    expect(err.hint).toMatch(/data\.root/);
  });
});

async function makeCoco(root: string, instances: object, images: string[]): Promise<void> {
  for (const [i, name] of images.entries()) await writePng(path.join(root, 'train2017', name), 8, 4, i);
  fs.mkdirSync(path.join(root, 'annotations'), { recursive: true });
  fs.writeFileSync(path.join(root, 'annotations', 'instances_train2017.json'), JSON.stringify(instances));
}

const INSTANCES = {
  images: [
    { id: 10, file_name: 'b.png', width: 8, height: 4 },
    { id: 11, file_name: 'a.png', width: 8, height: 4 },
  ],
  annotations: [
    { id: 1, image_id: 10, category_id: 5, bbox: [1, 1, 2, 2], area: 3.5, iscrowd: 0, segmentation: [] },
    { id: 2, image_id: 10, category_id: 1, bbox: [0, 0, 4, 2], iscrowd: 1 },
    { id: 3, image_id: 11, category_id: 5, bbox: [2, 0, 1, 1] },
  ],
  categories: [
    { id: 5, name: 'truck' },
    { id: 1, name: 'person' },
  ],
};

describe('coco', () => {
  it('reads boxes, crowd flags and areas, mapping category ids to contiguous labels', async () => {
    await makeCoco(tmp, INSTANCES, ['a.png', 'b.png']);
    const ds = readCoco(tmp, 'train2017');
    expect(ds.classes).toEqual(['person', 'truck']);
    expect(ds.records.map((r) => r.id)).toEqual(['a.png', 'b.png']);
    expect(ds.records[1]!.boxes).toEqual([
      { bbox: [1, 1, 2, 2], categoryId: 5, label: 1, iscrowd: false, area: 3.5 },
      { bbox: [0, 0, 4, 2], categoryId: 1, label: 0, iscrowd: true, area: 8 },
    ]);
    expect(ds.records[0]).toMatchObject({ width: 8, height: 4, file: path.join(tmp, 'train2017', 'a.png') });
  });

  it('names the missing or malformed file and the bad entry', async () => {
    fs.mkdirSync(path.join(tmp, 'train2017'));
    const ann = path.join(tmp, 'annotations', 'instances_train2017.json');
    expect(errorOf(() => readCoco(tmp, 'train2017')).message).toBe(`coco annotations '${ann}' do not exist`);
    await makeCoco(tmp, { ...INSTANCES, annotations: [{ image_id: 10, category_id: 5, bbox: [1, 2] }] }, [
      'a.png',
    ]);
    expect(errorOf(() => readCoco(tmp, 'train2017')).message).toMatch(
      new RegExp(`^coco annotations '${ann.replace(/[.\\/]/g, '\\$&')}': annotations\\[0\\]\\.bbox: `),
    );
    await makeCoco(
      tmp,
      { ...INSTANCES, annotations: [{ image_id: 10, category_id: 7, bbox: [1, 2, 3, 4] }] },
      [],
    );
    expect(errorOf(() => readCoco(tmp, 'train2017')).message).toBe(
      `coco annotations '${ann}': annotations[0] has unknown category_id 7`,
    );
    fs.writeFileSync(ann, '{"images": [');
    expect(errorOf(() => readCoco(tmp, 'train2017')).message).toMatch(/are not valid JSON/);
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-coco-'));
    try {
      await makeCoco(other, INSTANCES, []);
      fs.mkdirSync(path.join(other, 'train2017'), { recursive: true });
      expect(errorOf(() => readCoco(other, 'train2017')).message).toMatch(
        /^none of the 2 images listed in .* exist under/,
      );
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('ade20k', () => {
  it('pairs images with label masks and reads class names', async () => {
    for (const n of ['x', 'y']) {
      await writePng(path.join(tmp, 'images', 'training', `${n}.png`), 4, 4, 1);
      await writeMask(
        path.join(tmp, 'annotations', 'training', `${n}.png`),
        4,
        4,
        new Uint8Array(16).fill(3),
      );
    }
    fs.writeFileSync(
      path.join(tmp, 'objectInfo150.csv'),
      'Idx,Ratio,Train,Val,Name\n1,0.1,1,1,wall\n2,0.1,1,1,building;edifice\n',
    );
    const ds = readAde20k(tmp, 'training');
    expect(ds.records.map((r) => [r.id, path.relative(tmp, r.mask!)])).toEqual([
      ['x.png', path.join('annotations', 'training', 'x.png')],
      ['y.png', path.join('annotations', 'training', 'y.png')],
    ]);
    expect(ds.classes).toHaveLength(150);
    expect(ds.classes.slice(0, 3)).toEqual(['wall', 'building', 'class_3']);
    expect(ds.maskConvention).toBe('reduce-zero-label');
    fs.rmSync(path.join(tmp, 'annotations', 'training', 'y.png'));
    expect(errorOf(() => readAde20k(tmp, 'training')).message).toMatch(
      /ade20k image '.*y\.png' has no label mask/,
    );
    expect(errorOf(() => readAde20k(tmp, 'validation')).message).toBe(
      `ade20k image folder '${path.join(tmp, 'images', 'validation')}' does not exist`,
    );
  });
});

describe('datasets without labels (distillation reads none)', () => {
  it('an image folder of loose images is read unlabelled when labels are not required', async () => {
    for (const n of ['b', 'a']) await writePng(path.join(tmp, 'train', `${n}.jpg`), 4, 4, 1);
    expect(errorOf(() => readImageFolder(tmp, 'train')).message).toBe(
      `imagefolder '${path.join(tmp, 'train')}' has no class sub-folders`,
    );
    const ds = readImageFolder(tmp, 'train', true, { requireLabels: false });
    expect(ds.classes).toEqual([]);
    expect(ds.records).toEqual([
      { id: 'a.jpg', file: path.join(tmp, 'train', 'a.jpg') },
      { id: 'b.jpg', file: path.join(tmp, 'train', 'b.jpg') },
    ]);
    const cfg = configFromObject({
      models: { teacher: 't', student: 's' },
      data: { type: 'imagefolder', root: tmp, holdout: 1 },
    });
    const { train, val } = await openDatasetSplits(cfg.data);
    expect([train.records.length, val.records.length]).toEqual([1, 1]);
  });

  it('a COCO JSON listing only images (no annotations, no categories) is read', async () => {
    await makeCoco(tmp, { images: INSTANCES.images }, ['a.png', 'b.png']);
    const ds = readCoco(tmp, 'train2017');
    expect(ds.classes).toEqual([]);
    expect(ds.records.map((r) => [r.id, r.boxes])).toEqual([
      ['a.png', []],
      ['b.png', []],
    ]);
  });
});

describe('ade20k without label masks', () => {
  it('is read without masks when masks are not required, refused when they are', async () => {
    for (const n of ['x', 'y']) await writePng(path.join(tmp, 'images', 'training', `${n}.png`), 4, 4, 1);
    expect(errorOf(() => readAde20k(tmp, 'training')).message).toBe(
      `ade20k annotation folder '${path.join(tmp, 'annotations', 'training')}' does not exist`,
    );
    const noFolder = readAde20k(tmp, 'training', { requireMasks: false });
    expect(noFolder.records).toEqual([
      { id: 'x.png', file: path.join(tmp, 'images', 'training', 'x.png') },
      { id: 'y.png', file: path.join(tmp, 'images', 'training', 'y.png') },
    ]);
    expect(noFolder.maskConvention).toBeUndefined();
    // One mask of two: all or nothing, so a batch never mixes images with and without labels.
    await writeMask(path.join(tmp, 'annotations', 'training', 'x.png'), 4, 4, new Uint8Array(16));
    const partial = readAde20k(tmp, 'training', { requireMasks: false });
    expect(partial.records.every((r) => r.mask === undefined)).toBe(true);
    expect(partial.maskConvention).toBeUndefined();
    // Distillation opens it (with a notice) and holds out images of it without a validation split.
    const cfg = configFromObject({
      models: { teacher: 't', student: 's' },
      data: { type: 'ade20k', root: tmp, holdout: 1 },
    });
    const notes: string[] = [];
    const splits = await openDatasetSplits(cfg.data, { ...silentLog, info: (m) => notes.push(m) });
    expect([splits.train.records.length, splits.val.records.length]).toEqual([1, 1]);
    expect(notes[0]).toMatch(/^ade20k 'training': not every image has a label mask .* not loaded/);
  });
});

describe('synthetic', () => {
  const opts: SyntheticOptions = {
    trainImages: 6,
    valImages: 3,
    imageSize: 32,
    minShapes: 1,
    maxShapes: 3,
    seed: 4,
  };

  it('renders deterministic scenes whose boxes and areas agree with the mask', () => {
    const a = renderScene(opts, 'train', 2);
    expect(Buffer.from(renderScene(opts, 'train', 2).rgb).equals(Buffer.from(a.rgb))).toBe(true);
    expect(Buffer.from(renderScene(opts, 'train', 3).rgb).equals(Buffer.from(a.rgb))).toBe(false);
    for (let i = 0; i < 20; i++) {
      const s = renderScene(opts, 'train', i);
      expect(s.boxes.length).toBeGreaterThanOrEqual(1);
      const perClass = [0, 0, 0];
      s.mask.forEach((v, p) => {
        if (v === 0) return;
        perClass[v - 1]!++;
        const x = p % s.size;
        const y = Math.floor(p / s.size);
        const inBox = s.boxes.some(
          (b) =>
            b.label === v - 1 &&
            x >= b.bbox[0] &&
            x < b.bbox[0] + b.bbox[2] &&
            y >= b.bbox[1] &&
            y < b.bbox[1] + b.bbox[3],
        );
        expect(inBox).toBe(true);
      });
      for (let c = 0; c < 3; c++) {
        expect(s.boxes.filter((b) => b.label === c).reduce((t, b) => t + b.area, 0)).toBe(perClass[c]);
      }
    }
  });

  it('writes PNGs, COCO JSON and masks once under a parameter hash, then reuses them', async () => {
    const dir = await ensureSynthetic(tmp, opts);
    expect(dir).toBe(path.join(tmp, syntheticHash(opts)));
    const stamp = fs.statSync(path.join(dir, 'manifest.json')).mtimeMs;
    expect(await ensureSynthetic(tmp, opts)).toBe(dir);
    expect(fs.statSync(path.join(dir, 'manifest.json')).mtimeMs).toBe(stamp);
    expect(fs.readdirSync(tmp)).toEqual([path.basename(dir)]); // no temporary folder left
    expect(syntheticHash({ ...opts, seed: 5 })).not.toBe(syntheticHash(opts));

    const ds = readSynthetic(dir, 'train');
    expect(ds.classes).toEqual([...SYNTHETIC_CLASSES]);
    expect(ds.records).toHaveLength(6);
    const rec = ds.records[1]!;
    const scene = renderScene(opts, 'train', 1);
    const pixels = await sharp(rec.file).raw().toBuffer();
    expect(Buffer.compare(pixels, Buffer.from(scene.rgb))).toBe(0);
    const mask = await sharp(rec.mask!).extractChannel(0).raw().toBuffer();
    expect(Buffer.compare(mask, Buffer.from(scene.mask))).toBe(0);
    expect(rec.boxes).toEqual(scene.boxes);
    const largest = [...scene.boxes].sort((a, b) => b.area - a.area)[0]!;
    expect(rec.label).toBe(largest.label);
    expect(readSynthetic(dir, 'val').records).toHaveLength(3);
  });
});

describe('openDatasetSplits', () => {
  it('holds out a fixed, disjoint subset when there is no val split; max_images trims', async () => {
    await makeImageFolder(tmp, 'train', ['a', 'b'], 5);
    const cfg = configFromObject({
      models: { teacher: 't', student: 's' },
      data: { type: 'imagefolder', root: tmp, holdout: 3 },
    });
    const first = await openDatasetSplits(cfg.data);
    const again = await openDatasetSplits(cfg.data);
    expect(first.val.records.map((r) => r.id)).toEqual(again.val.records.map((r) => r.id));
    expect(first.val.records).toHaveLength(3);
    expect(first.train.records).toHaveLength(7);
    const trainIds = new Set(first.train.records.map((r) => r.id));
    expect(first.val.records.every((r) => !trainIds.has(r.id))).toBe(true);
    expect(first.val.split).toBe('train-holdout');
    await makeImageFolder(tmp, 'val', ['a', 'b'], 1);
    const withVal = await openDatasetSplits({ ...cfg.data, max_images: 4 });
    expect(withVal.train.records).toHaveLength(4);
    expect(withVal.val.split).toBe('val');
    expect(withVal.val.records).toHaveLength(2);
  });

  it('a missing val folder falls back to a held-out carve with one notice, unless the split is required', async () => {
    await makeImageFolder(tmp, 'train', ['a', 'b'], 3);
    const cfg = configFromObject({
      models: { teacher: 't', student: 's' },
      data: { type: 'imagefolder', root: tmp, val_split: 'val', holdout: 2 },
    });
    const notes: string[] = [];
    const log = { ...silentLog, info: (m: string) => notes.push(m) };
    const carved = await openDatasetSplits(cfg.data, log);
    expect([carved.train.records.length, carved.val.records.length]).toEqual([4, 2]);
    expect(notes).toEqual([
      `no 'val' split (the folder '${path.join(tmp, 'val')}' does not exist): holding out 2 of 6 ` +
        'training images for evaluation instead (data.holdout)',
    ]);
    const err = (await openDatasetSplits(cfg.data, log, { requireValSplit: true }).catch(
      (e: unknown) => e,
    )) as RlpkdError;
    expect(err.message).toBe(
      `data.val_split 'val' cannot be used: the folder '${path.join(tmp, 'val')}' does not exist`,
    );
    expect(err.hint).toMatch(/--set data\.val_split=null/);
  });

  it('coco: data.val_annotations (relative to the root) names the held-out JSON; what is missing is said', async () => {
    // images/ + annotations/instances_{train,val}.json: both splits read the same image folder.
    for (const [i, name] of ['a.png', 'b.png', 'c.png'].entries())
      await writePng(path.join(tmp, 'images', name), 8, 4, i);
    const json = (names: string[]) =>
      JSON.stringify({
        images: names.map((file_name, id) => ({ id, file_name })),
        categories: [{ id: 1, name: 'thing' }],
      });
    const data = {
      type: 'coco',
      root: tmp,
      split: 'images',
      annotations: 'annotations/instances_train.json',
      val_split: 'images',
      val_annotations: 'annotations/instances_val.json',
    };
    const cfg = configFromObject({ models: { teacher: 't', student: 's' }, data });
    fs.mkdirSync(path.join(tmp, 'annotations'));
    fs.writeFileSync(path.join(tmp, 'annotations', 'instances_train.json'), json(['a.png', 'b.png']));
    const valJson = path.join(tmp, 'annotations', 'instances_val.json');
    const err = (await openDatasetSplits(cfg.data, silentLog, { requireValSplit: true }).catch(
      (e: unknown) => e,
    )) as RlpkdError;
    expect(err.message).toBe(
      `data.val_split 'images' cannot be used: its annotations '${valJson}' do not exist`,
    );
    expect(err.hint).toMatch(/data\.val_annotations/);
    fs.writeFileSync(valJson, json(['c.png']));
    const { train, val } = await openDatasetSplits(cfg.data, silentLog, { requireValSplit: true });
    expect(train.records.map((r) => r.id)).toEqual(['a.png', 'b.png']);
    expect(val.records.map((r) => r.id)).toEqual(['c.png']);
    // The JSON is there but the image folder is not: the message says so (not "the split does not exist").
    const moved = configFromObject({
      models: { teacher: 't', student: 's' },
      data: { ...data, val_split: 'val-images' },
    });
    await expect(openDatasetSplits(moved.data, silentLog, { requireValSplit: true })).rejects.toThrow(
      `data.val_split 'val-images' cannot be used: the folder '${path.join(tmp, 'val-images')}' does not exist`,
    );
    const e2 = errorOf(() =>
      readCoco(tmp, 'val-images', 'annotations/instances_val.json', {
        split: 'data.val_split',
        annotations: 'data.val_annotations',
      }),
    ) as RlpkdError;
    expect(e2.message).toBe(`coco image folder '${path.join(tmp, 'val-images')}' does not exist`);
    expect(e2.hint).toMatch(/set data\.val_split to the image folder name$/);
  });

  it('a missing dataset root gives one RlpkdError with a hint', async () => {
    const cfg = configFromObject({
      models: { teacher: 't', student: 's' },
      data: { type: 'coco', root: path.join(tmp, 'coco') },
    });
    await expect(openDatasetSplits(cfg.data)).rejects.toThrow(
      `coco dataset root '${path.join(tmp, 'coco')}' does not exist`,
    );
    await expect(openDatasetSplits(cfg.data)).rejects.toMatchObject({
      hint: expect.stringMatching(/set data\.root/),
    });
  });

  it('synthetic data is generated on first use under data.root', async () => {
    const cfg = configFromObject(
      {
        models: { teacher: 't', student: 's' },
        data: { synthetic: { train_images: 4, val_images: 2, image_size: 16 } },
      },
      { cwd: tmp },
    );
    const { train, val } = await openDatasetSplits(cfg.data);
    expect(train.records).toHaveLength(4);
    expect(val.records).toHaveLength(2);
    expect(train.records[0]!.file.startsWith(path.join(tmp, 'datasets', 'synthetic'))).toBe(true);
  });
});
