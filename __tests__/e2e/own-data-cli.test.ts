/**
 * Bring-your-own-data acceptance through the built CLI (`npm run build` first), with the shipped configs and
 * the demo's 96×96 graphs, no YAML of the user's own: a COCO folder laid out as images/ +
 * annotations/instances_{train,val}.json, and an image folder without val/ (a held-out carve, announced).
 * A validation split named on the command line must exist; `rlpkd eval` names the checkpoint it read.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../distill/run-fixtures';

jest.setTimeout(300000);

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'bin', 'rlpkd.js');

/** Model and size overrides: the demo graphs, their 96×96 input, one epoch per phase, no phase 4. */
const SMALL = [
  `models.teacher=${path.join(ROOT, 'onnx-graphs', 'teacher.onnx')}`,
  `models.student=${path.join(ROOT, 'onnx-graphs', 'student.onnx')}`,
  'data.image_size=96',
  'phases.pretrain.epochs=1',
  'phases.policy.epochs=1',
  'phases.joint.epochs=1',
  'phases.meta.epochs=0',
].flatMap((s) => ['--set', s]);

/** A noise photo of odd size (JPEG or PNG by extension). */
async function photo(file: string, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const [w, h] = [64, 48];
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const img = sharp(Buffer.from(Uint8Array.from({ length: w * h * 3 }, () => rng.int(256))), {
    raw: { width: w, height: h, channels: 3 },
  });
  await (file.endsWith('.jpg') ? img.jpeg() : img.png()).toFile(file);
}

/** <root>/images/img<i>.jpg with 8 training and 4 validation images listed in two instances JSONs. */
async function cocoWithTwoJsons(root: string): Promise<void> {
  const splits: Record<string, string[]> = { train: [], val: [] };
  for (let i = 0; i < 12; i++) {
    await photo(path.join(root, 'images', `img${i}.jpg`), i);
    splits[i < 8 ? 'train' : 'val'].push(`img${i}.jpg`);
  }
  fs.mkdirSync(path.join(root, 'annotations'));
  for (const [split, files] of Object.entries(splits)) {
    const json = {
      images: files.map((file_name, i) => ({ id: i + 1, file_name, width: 64, height: 48 })),
      annotations: files.map((_, i) => ({
        id: i + 1,
        image_id: i + 1,
        category_id: 1,
        bbox: [4, 4, 20, 10],
      })),
      categories: [{ id: 1, name: 'thing' }],
    };
    fs.writeFileSync(path.join(root, 'annotations', `instances_${split}.json`), JSON.stringify(json));
  }
}

/** <root>/train/{cat,dog}/<i>.png, 8 each, and no val/ folder. */
async function folderWithoutVal(root: string): Promise<void> {
  for (const [c, cls] of ['cat', 'dog'].entries())
    for (let i = 0; i < 8; i++) await photo(path.join(root, 'train', cls, `${i}.png`), 100 + 10 * c + i);
}

/** Runs the CLI in `cwd` (runs/ and the feature cache land there). */
function cli(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, RLPKD_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runs(cwd: string): string[] {
  const dir = path.join(cwd, 'runs');
  return fs.existsSync(dir) ? fs.readdirSync(dir).map((d) => path.join(dir, d)) : [];
}

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')))
    throw new Error('run `npm run build` before the e2e tests');
});

describe('rlpkd train on a user dataset with the shipped configs', () => {
  it('COCO images/ + annotations/instances_{train,val}.json trains with data.val_annotations', async () => {
    const cwd = tempDir('e2e-coco2');
    const data = path.join(cwd, 'coco');
    await cocoWithTwoJsons(data);
    const r = cli(
      [
        'train',
        '-c',
        path.join(ROOT, 'configs', 'coco_detection.yaml'),
        ...['--set', `data.root=${data}`, '--set', 'data.split=images'],
        ...['--set', 'data.annotations=annotations/instances_train.json'],
        ...['--set', 'data.val_split=images'],
        ...['--set', 'data.val_annotations=annotations/instances_val.json'],
        ...SMALL,
      ],
      cwd,
    );
    expect(r.stderr).not.toMatch(/^(error|warn):/m);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('data coco: 8 training images, 4 held out');
    expect(r.stderr).not.toContain('holding out');
    expect(r.stdout).toMatch(/held-out all-level distillation loss \(pkd, 4 images\)/);
    expect(runs(cwd)).toHaveLength(1);
  });

  it('an image folder without val/ trains with imagenet_classification.yaml and data.root alone', async () => {
    const cwd = tempDir('e2e-noval');
    const data = path.join(cwd, 'photos');
    await folderWithoutVal(data);
    const config = path.join(ROOT, 'configs', 'imagenet_classification.yaml');
    // Named on the command line, a missing validation split is an error, before any run directory.
    const strict = cli(
      ['train', '-c', config, '--set', `data.root=${data}`, '--set', 'data.val_split=val', ...SMALL],
      cwd,
    );
    expect(strict.code).toBe(1);
    expect(strict.stderr).toBe(
      `error: data.val_split 'val' cannot be used: the folder '${path.join(data, 'val')}' does not exist\n` +
        '  hint: fix data.root / data.val_split, or pass --set data.val_split=null to hold out data.holdout (32) ' +
        'training images instead\n',
    );
    expect(runs(cwd)).toEqual([]);

    const r = cli(['train', '-c', config, '--set', `data.root=${data}`, ...SMALL], cwd);
    expect(r.stderr).not.toMatch(/^(error|warn):/m);
    expect(r.code).toBe(0);
    const notice =
      `no 'val' split (the folder '${path.join(data, 'val')}' does not exist): holding out 8 of 16 ` +
      'training images for evaluation instead (data.holdout)';
    expect(r.stderr.split('\n').filter((l) => l.includes('holding out'))).toEqual([notice]);
    expect(r.stdout).toMatch(/held-out all-level distillation loss \(mse, 8 images\)/);
    const [run] = runs(cwd);
    expect(fs.readFileSync(path.join(run!, 'train.log'), 'utf8')).toContain(notice);

    const table = cli(['eval', '--run', run!], cwd);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toBe('checkpoint final (final: the run finished)');
    const json = cli(['eval', '--run', run!, '--json'], cwd);
    expect(JSON.parse(json.stdout).checkpoint).toEqual({
      label: 'final',
      dir: path.join(run!, 'checkpoints', 'final'),
      final: true,
    });
  });
});
