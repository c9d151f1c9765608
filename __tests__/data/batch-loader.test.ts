import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BatchLoader,
  loadImage,
  loadMaskInto,
  preprocessFromConfig,
  readCoco,
  readImageFolder,
  type Batch,
  type Dataset,
  type Preprocess,
} from '../../src/data';
import { InputFileError } from '../../src/errors';
import type { LogSink } from '../../src/logging';
import { Rng } from '../../src/util/rng';
import { makeImageFolder, writeMask, writePng } from './fixtures';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-loader-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const MEAN = [0.485, 0.456, 0.406] as const;
const STD = [0.229, 0.224, 0.225] as const;

/** float64 reference: HWC uint8 -> normalized CHW, optionally mirrored. */
function reference(pixels: Uint8Array, w: number, h: number, flip: boolean): number[] {
  const out: number[] = [];
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const sx = flip ? w - 1 - x : x;
        out.push((pixels[(y * w + sx) * 3 + c]! / 255 - MEAN[c]!) / STD[c]!);
      }
    }
  }
  return out;
}

function collect(log: string[]): LogSink {
  return { debug() {}, info() {}, warn: (m) => log.push(m), error: (m) => log.push(m) };
}

async function all(it: AsyncGenerator<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

describe('image loader', () => {
  it('normalizes to CHW float32 exactly as a float64 reference, with and without flip', async () => {
    const file = path.join(tmp, 'img.png');
    const pixels = await writePng(file, 5, 3, 11);
    const pre: Preprocess = { height: 3, width: 5, mean: MEAN, std: STD };
    for (const flip of [false, true]) {
      const { data, dims, info } = await loadImage(file, pre, flip);
      expect(dims).toEqual([1, 3, 3, 5]);
      expect([info.width, info.height]).toEqual([5, 3]);
      const ref = reference(pixels, 5, 3, flip);
      for (let i = 0; i < ref.length; i++) expect(Math.abs(data[i]! - ref[i]!)).toBeLessThan(1e-6);
    }
  });

  it('expands grayscale to three equal channels and resizes to the model size', async () => {
    const file = path.join(tmp, 'gray.png');
    await writePng(file, 8, 8, new Uint8Array(64).fill(128));
    const { data, dims } = await loadImage(file, { height: 4, width: 2, mean: [0, 0, 0], std: [1, 1, 1] });
    expect(dims).toEqual([1, 3, 4, 2]);
    for (const v of data) expect(v).toBeCloseTo(128 / 255, 6);
  });

  it('loads masks with nearest resizing, flips like the image, and applies reduce-zero-label', async () => {
    const file = path.join(tmp, 'mask.png');
    // 4x2 mask, columns 0..3 = labels 0, 1, 2, 3 (row-major)
    await writeMask(file, 4, 2, Uint8Array.from([0, 1, 2, 3, 0, 1, 2, 3]));
    const out = new Uint8Array(8);
    await loadMaskInto(file, 2, 4, false, true, out, 0);
    expect([...out]).toEqual([255, 0, 1, 2, 255, 0, 1, 2]);
    await loadMaskInto(file, 2, 4, true, false, out, 0);
    expect([...out]).toEqual([3, 2, 1, 0, 3, 2, 1, 0]);
    const half = new Uint8Array(2);
    await loadMaskInto(file, 1, 2, false, false, half, 0);
    expect([0, 1, 2, 3]).toEqual(expect.arrayContaining([...half])); // nearest never invents a label
  });
});

async function folderDataset(perClass = 5): Promise<Dataset> {
  await makeImageFolder(tmp, 'train', ['a', 'b', 'c'], perClass);
  return readImageFolder(tmp, 'train');
}

const PRE: Preprocess = { height: 5, width: 6, mean: MEAN, std: STD };

describe('BatchLoader', () => {
  it('is deterministic under a seed, independent of concurrency and prefetch depth', async () => {
    const ds = await folderDataset();
    const make = (seed: number, numWorkers: number, prefetch: number) =>
      new BatchLoader(ds, {
        batchSize: 4,
        preprocess: PRE,
        rng: new Rng(seed),
        hflip: 0.5,
        numWorkers,
        prefetch,
      });
    const a = await all(make(1, 4, 3).epoch(0));
    const b = await all(make(1, 1, 0).epoch(0));
    expect(a.map((x) => x.records.map((r) => r.id))).toEqual(b.map((x) => x.records.map((r) => r.id)));
    expect(a.map((x) => x.flipped)).toEqual(b.map((x) => x.flipped));
    a.forEach((x, i) =>
      expect(Buffer.from(x.images.data.buffer).equals(Buffer.from(b[i]!.images.data.buffer))).toBe(true),
    );
    expect(a.map((x) => x.images.dims[0])).toEqual([4, 4, 4, 3]);
    expect(a.flatMap((x) => x.records.map((r) => r.id)).sort()).toEqual(ds.records.map((r) => r.id));
    expect(a.some((x) => x.flipped.includes(true)) && a.some((x) => x.flipped.includes(false))).toBe(true);

    const other = await all(make(2, 4, 3).epoch(0));
    expect(other.map((x) => x.records.map((r) => r.id))).not.toEqual(
      a.map((x) => x.records.map((r) => r.id)),
    );
    const epoch1 = await all(make(1, 4, 3).epoch(1));
    expect(epoch1.map((x) => x.records.map((r) => r.id))).not.toEqual(
      a.map((x) => x.records.map((r) => r.id)),
    );
  });

  it('resumes an epoch at a batch index with the same batches', async () => {
    const ds = await folderDataset();
    const loader = new BatchLoader(ds, { batchSize: 4, preprocess: PRE, rng: new Rng(9), hflip: 0.5 });
    const full = await all(loader.epoch(3));
    const tail = await all(loader.epoch(3, 2));
    expect(tail.map((b) => b.index)).toEqual([2, 3]);
    expect(tail.map((b) => b.records.map((r) => r.id))).toEqual(
      full.slice(2).map((b) => b.records.map((r) => r.id)),
    );
    expect(tail.map((b) => b.flipped)).toEqual(full.slice(2).map((b) => b.flipped));
  });

  it('batch contents equal single-image loads; labels and hashes come along', async () => {
    const ds = await folderDataset(2);
    const loader = new BatchLoader(ds, { batchSize: 3, preprocess: PRE, rng: new Rng(0), hflip: 0.5 });
    for (const batch of await all(loader.epoch(0))) {
      expect(batch.labels).toEqual(Int32Array.from(batch.records, (r) => r.label!));
      for (let k = 0; k < batch.records.length; k++) {
        const single = await loadImage(batch.records[k]!.file, PRE, batch.flipped[k]);
        const plane = 3 * PRE.height * PRE.width;
        expect([...batch.images.data.subarray(k * plane, (k + 1) * plane)]).toEqual([...single.data]);
        expect(batch.hashes[k]).toBe(single.info.hash);
      }
    }
  });

  it('prefetches the next batches while the consumer holds the current one', async () => {
    const ds = await folderDataset();
    const loader = new BatchLoader(ds, { batchSize: 2, preprocess: PRE, rng: new Rng(0), prefetch: 3 });
    const it = loader.epoch(0);
    await it.next(); // batch 0 consumed; the generator is now suspended
    for (let spins = 0; spins < 100_000 && loader.loadedBatches < 4; spins++)
      await new Promise((r) => setImmediate(r));
    expect(loader.loadedBatches).toBeGreaterThanOrEqual(4); // batch 0 + 3 prefetched while the consumer holds batch 0
    await it.return(undefined);
  });

  it('skips a corrupt or missing image with a warning naming its path, once', async () => {
    const ds = await folderDataset(2);
    const corrupt = ds.records[1]!.file;
    fs.writeFileSync(corrupt, fs.readFileSync(corrupt).subarray(0, 40)); // cut-off PNG
    const missing = path.join(tmp, 'train', 'c', 'gone.png');
    const withMissing: Dataset = {
      ...ds,
      records: [...ds.records, { id: 'c/gone.png', file: missing, label: 2 }],
    };
    const log: string[] = [];
    const loader = new BatchLoader(withMissing, {
      batchSize: 3,
      preprocess: PRE,
      rng: new Rng(0),
      log: collect(log),
    });
    const batches = await all(loader.epoch(0));
    const seen = batches.flatMap((b) => b.records.map((r) => r.file));
    expect(seen).toHaveLength(withMissing.records.length - 2);
    expect(seen).not.toContain(corrupt);
    expect(seen).not.toContain(missing);
    for (const b of batches) expect(b.images.dims[0]).toBe(b.records.length);
    expect(log.sort()).toEqual(
      [
        expect.stringMatching(
          new RegExp(`^skipping corrupt or missing image '${corrupt}' in the split 'train': .+`),
        ),
        `skipping corrupt or missing image '${missing}' in the split 'train': file does not exist`,
      ].sort(),
    );
    expect(loader.skipped.map((s) => s.file).sort()).toEqual([corrupt, missing].sort());
    await all(loader.epoch(1));
    expect(log).toHaveLength(2); // known-bad files are not re-read or re-reported
  });

  it('stops with one clear error when on_corrupt is fatal', async () => {
    const ds = await folderDataset(2);
    const corrupt = ds.records[3]!.file;
    fs.writeFileSync(corrupt, 'this is not a png');
    const loader = new BatchLoader(ds, {
      batchSize: 2,
      preprocess: PRE,
      rng: new Rng(0),
      onCorrupt: 'fatal',
      prefetch: 4,
    });
    const err = await all(loader.epoch(0)).then(
      () => undefined,
      (e: unknown) => e as InputFileError,
    );
    expect(err).toBeInstanceOf(InputFileError);
    expect(err!.message).toMatch(new RegExp(`^corrupt or missing image '${corrupt}': `));
    expect(err!.hint).toMatch(/on_corrupt: skip/);
  });

  it('scales and mirrors COCO boxes into model-input pixels and loads masks', async () => {
    await writePng(path.join(tmp, 'train2017', 'a.png'), 8, 4, 3);
    fs.mkdirSync(path.join(tmp, 'annotations'));
    fs.writeFileSync(
      path.join(tmp, 'annotations', 'instances_train2017.json'),
      JSON.stringify({
        images: [{ id: 1, file_name: 'a.png' }],
        annotations: [{ image_id: 1, category_id: 1, bbox: [1, 1, 2, 2], area: 4 }],
        categories: [{ id: 1, name: 'thing' }],
      }),
    );
    const ds = readCoco(tmp, 'train2017');
    const pre: Preprocess = { height: 4, width: 4, mean: MEAN, std: STD };
    const plain = (
      await all(new BatchLoader(ds, { batchSize: 1, preprocess: pre, rng: new Rng(0) }).epoch(0))
    )[0]!;
    expect(plain.boxes![0]![0]!.bbox).toEqual([0.5, 1, 1, 2]); // x scaled by 4/8
    expect(plain.boxes![0]![0]!.area).toBe(2);
    const flipped = (
      await all(new BatchLoader(ds, { batchSize: 1, preprocess: pre, rng: new Rng(0), hflip: 1 }).epoch(0))
    )[0]!;
    expect(flipped.flipped).toEqual([true]);
    expect(flipped.boxes![0]![0]!.bbox).toEqual([2.5, 1, 1, 2]); // 4 - (1 + 2) * 0.5

    const maskFile = path.join(tmp, 'm.png');
    await writeMask(
      maskFile,
      8,
      4,
      Uint8Array.from({ length: 32 }, (_, i) => (i % 8 < 4 ? 0 : 2)),
    );
    const seg: Dataset = {
      ...ds,
      records: [{ ...ds.records[0]!, mask: maskFile }],
      maskConvention: 'reduce-zero-label',
    };
    const m = (
      await all(new BatchLoader(seg, { batchSize: 1, preprocess: pre, rng: new Rng(0) }).epoch(0))
    )[0]!;
    expect([...m.masks!]).toEqual([255, 255, 1, 1, 255, 255, 1, 1, 255, 255, 1, 1, 255, 255, 1, 1]);
  });

  it('derives the preprocessing from the data config', () => {
    expect(preprocessFromConfig({ image_size: 64, normalize: { mean: [0, 0, 0], std: [1, 1, 1] } })).toEqual({
      height: 64,
      width: 64,
      mean: [0, 0, 0],
      std: [1, 1, 1],
    });
    expect(
      preprocessFromConfig({ image_size: [32, 48], normalize: { mean: [0, 0, 0], std: [1, 1, 1] } }).width,
    ).toBe(48);
  });
});
