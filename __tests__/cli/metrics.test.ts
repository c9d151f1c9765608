/** `rlpkd metrics coco|seg`: output shape, exit codes and hints. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { runCli } from '../helpers/run-cli';

const fixtures = path.join(__dirname, '..', 'metrics', 'fixtures', 'coco');
const golden = JSON.parse(fs.readFileSync(path.join(fixtures, 'golden.json'), 'utf8')) as {
  fixtures: Record<string, { stats: number[] }>;
};

/** `rlpkd metrics coco` on one golden fixture. */
const coco = (name: string, ...extra: string[]): ReturnType<typeof runCli> =>
  runCli(
    ...['metrics', 'coco', '--gt', path.join(fixtures, `${name}.gt.json`)],
    ...['--dt', path.join(fixtures, `${name}.dt.json`), ...extra],
  );

describe('rlpkd metrics', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-metrics-cli-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('coco --json prints one object whose stats are the 12 COCOeval numbers in order', async () => {
    const r = await coco('thresholds', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      stats: number[];
      summary: Record<string, number>;
      perCategory: unknown[];
    };
    out.stats.forEach((s, i) => expect(s).toBeCloseTo(golden.fixtures.thresholds!.stats[i]!, 9));
    expect(Object.keys(out.summary).join(' ')).toBe('AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs ARm ARl');
    expect(out.perCategory).toHaveLength(4);
  });

  it('coco prints a table, and refuses a results file that is not a list', async () => {
    const table = await coco('random-a');
    expect(table.stdout).toMatch(/AP50\s+0\.44\d/);
    const gt = path.join(fixtures, 'random-a.gt.json');
    const bad = await runCli('metrics', 'coco', '--gt', gt, '--dt', gt);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error: COCO results .*top level/);
    expect(bad.stderr).toMatch(/hint: pass COCO results: a JSON list/);
  });

  it('seg --json reports mIoU over the folder; a missing --num-classes is a usage error', async () => {
    const write = (file: string, values: number[]): Promise<unknown> => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      return sharp(new Uint8Array(values), { raw: { width: values.length, height: 1, channels: 1 } })
        .toColourspace('b-w')
        .png()
        .toFile(file);
    };
    // ADE20K-style gt: 0 is ignored, 1 -> class 0, 2 -> class 1; predictions are already class indices.
    await write(path.join(dir, 'gt', 'x.png'), [0, 1, 1, 2]);
    await write(path.join(dir, 'pred', 'x.png'), [1, 0, 1, 1]);
    const args = ['metrics', 'seg', '--gt', path.join(dir, 'gt'), '--pred', path.join(dir, 'pred')];
    const r = await runCli(...args, '--num-classes', '2', '--reduce-zero-label', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { mIoU: number; aAcc: number; perClass: { iou: number }[] };
    // class 0: I 1, gt 2, pred 1 -> 1/2; class 1: I 1, gt 1, pred 2 -> 1/2.
    expect(out.perClass.map((c) => c.iou)).toEqual([1 / 2, 1 / 2]);
    expect([out.mIoU, out.aAcc]).toEqual([1 / 2, 2 / 3]);
    const table = await runCli(...args, '--num-classes', '2', '--reduce-zero-label');
    expect(table.stdout).toMatch(/mIoU 50\.00 {2}mAcc 75\.00 {2}aAcc 66\.67/);
    const noReduce = await runCli(...args, '--num-classes', '2');
    expect(noReduce.code).toBe(1);
    expect(noReduce.stderr).toMatch(/ground-truth label 2 is outside 0..1[\s\S]*hint: .*--reduce-zero-label/);
    expect((await runCli(...args)).code).toBe(2);
  });
});
