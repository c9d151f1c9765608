import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BatchLoader, probeSplit, readImageFolder, type Dataset, type Preprocess } from '../../src/data';
import { InputFileError } from '../../src/errors';
import { Rng } from '../../src/util/rng';
import { makeImageFolder } from './fixtures';

const PRE: Preprocess = { height: 4, width: 4, mean: [0, 0, 0], std: [1, 1, 1] };

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-probe-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** An image folder whose first `broken` images (in sorted order) are not images. */
async function folder(images: number, broken: number): Promise<Dataset> {
  await makeImageFolder(tmp, 'train', ['a'], images);
  const ds = readImageFolder(tmp, 'train');
  for (const r of ds.records.slice(0, broken)) fs.writeFileSync(r.file, 'not an image');
  return ds;
}

describe('probeSplit', () => {
  it('decodes images in order until one succeeds and counts the failures before it', async () => {
    expect(await probeSplit(await folder(3, 0), PRE, "training split 'train'", 'skip')).toEqual({
      failedBeforeFirst: 0,
    });
    fs.rmSync(tmp, { recursive: true, force: true });
    expect(await probeSplit(await folder(3, 2), PRE, "training split 'train'", 'skip')).toEqual({
      failedBeforeFirst: 2,
    });
  });

  it('a split where no image decodes is one error naming the split, its root and the first failure', async () => {
    const ds = await folder(2, 2);
    const err = (await probeSplit(ds, PRE, "training split 'train'", 'skip').catch((e: unknown) => e)) as
      InputFileError | undefined;
    expect(err).toBeInstanceOf(InputFileError);
    expect(err!.message).toMatch(
      new RegExp(
        `^none of the 2 images of the training split 'train' under '${tmp}' can be decoded ` +
          `\\(first: '${ds.records[0]!.file}': .+\\)$`,
      ),
    );
    expect(err!.hint).toMatch(/data\.root/);
  });

  it('with on_corrupt fatal the first bad image is the error, as in training', async () => {
    const ds = await folder(3, 1);
    await expect(probeSplit(ds, PRE, "training split 'train'", 'fatal')).rejects.toThrow(
      new RegExp(`^corrupt or missing image '${ds.records[0]!.file}': `),
    );
  });
});

describe('BatchLoader warnings name the images they come from', () => {
  it('a held-out loader says so, and an all-skipped batch is counted within its epoch', async () => {
    const ds = await folder(3, 2);
    const log: string[] = [];
    const loader = new BatchLoader(ds, {
      batchSize: 2,
      preprocess: PRE,
      rng: new Rng(0),
      shuffle: false,
      name: "held-out evaluation split 'val'",
      log: { debug() {}, info() {}, error() {}, warn: (m) => log.push(m) },
    });
    const batches = [];
    for await (const b of loader.epoch(20000)) batches.push(b);
    expect(batches.map((b) => b.records.length)).toEqual([1]);
    // The two failures of batch 1 are decoded concurrently: their order may vary.
    expect(log).toHaveLength(3);
    expect(log.slice(0, 2).sort()).toEqual(
      ds.records
        .slice(0, 2)
        .map((r) =>
          expect.stringMatching(
            new RegExp(
              `^skipping corrupt or missing image '${r.file}' in the held-out evaluation split 'val': `,
            ),
          ),
        ),
    );
    expect(log[2]).toBe("held-out evaluation split 'val': every image of batch 1/2 was skipped");
  });
});
