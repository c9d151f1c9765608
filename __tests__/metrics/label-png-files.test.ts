/** Label PNG decoding (8-bit, 16-bit, grey RGB; palettes refused) and folder pairing for segmentation. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { evaluateSegmentationFolders, readLabelPng } from '../../src/metrics';

/** Writes a grayscale PNG of `values` (width × height). */
async function grey(file: string, width: number, values: number[]): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const sixteen = values.some((v) => v > 255);
  const raw = sixteen ? new Uint16Array(values) : new Uint8Array(values);
  await sharp(raw, { raw: { width, height: values.length / width, channels: 1 } })
    .toColourspace(sixteen ? 'grey16' : 'b-w')
    .png()
    .toFile(file);
}

describe('label PNG files', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-labels-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads 8-bit and 16-bit grayscale and grey RGB PNGs as class indices', async () => {
    await grey(path.join(dir, 'g8.png'), 3, [0, 1, 2, 255, 3, 149]);
    expect(await readLabelPng(path.join(dir, 'g8.png'))).toEqual({
      width: 3,
      height: 2,
      data: new Uint8Array([0, 1, 2, 255, 3, 149]),
    });
    await grey(path.join(dir, 'g16.png'), 2, [0, 300, 65535, 7]);
    expect([...(await readLabelPng(path.join(dir, 'g16.png'))).data]).toEqual([0, 300, 65535, 7]);
    const rgb = Buffer.from([4, 4, 4, 9, 9, 9]);
    await sharp(rgb, { raw: { width: 2, height: 1, channels: 3 } })
      .png()
      .toFile(path.join(dir, 'rgb.png'));
    expect([...(await readLabelPng(path.join(dir, 'rgb.png'))).data]).toEqual([4, 9]);
  });

  it('refuses palette PNGs, colour images and non-PNG files with a hint', async () => {
    const colours = Buffer.from([255, 0, 0, 0, 255, 0]);
    await sharp(colours, { raw: { width: 2, height: 1, channels: 3 } })
      .png({ palette: true })
      .toFile(path.join(dir, 'pal.png'));
    await expect(readLabelPng(path.join(dir, 'pal.png'))).rejects.toThrow(/palette PNG/);
    await sharp(colours, { raw: { width: 2, height: 1, channels: 3 } })
      .png()
      .toFile(path.join(dir, 'col.png'));
    await expect(readLabelPng(path.join(dir, 'col.png'))).rejects.toThrow(/colour image/);
    fs.writeFileSync(path.join(dir, 'x.png'), 'not a png');
    await expect(readLabelPng(path.join(dir, 'x.png'))).rejects.toThrow(/not an image/);
  });

  it('pairs masks by relative name and sums the confusion over the folder', async () => {
    const gt = path.join(dir, 'seg', 'gt');
    const pred = path.join(dir, 'seg', 'pred');
    // The hand-computed case of segmentation.test.ts, split over a nested file and a top-level one.
    await grey(path.join(gt, 'a', 'one.png'), 3, [0, 0, 1, 1, 255, 2]);
    await grey(path.join(pred, 'a', 'one.png'), 3, [0, 1, 1, 1, 0, 0]);
    await grey(path.join(gt, 'two.png'), 2, [2, 2]);
    await grey(path.join(pred, 'two.png'), 2, [2, 0]);
    await grey(path.join(pred, 'extra.png'), 1, [0]);
    const r = await evaluateSegmentationFolders({ gtDir: gt, predDir: pred, numClasses: 3 });
    expect(r.perClass.map((c) => c.iou)).toEqual([1 / 4, 2 / 3, 1 / 3]);
    expect([r.aAcc, r.images, r.unmatchedPredictions]).toEqual([4 / 7, 2, 1]);

    fs.rmSync(path.join(pred, 'two.png'));
    await expect(evaluateSegmentationFolders({ gtDir: gt, predDir: pred, numClasses: 3 })).rejects.toThrow(
      /1 of 2 ground-truth masks have no prediction .*first: 'two.png'/,
    );
    await grey(path.join(pred, 'two.png'), 1, [2, 0]);
    await expect(evaluateSegmentationFolders({ gtDir: gt, predDir: pred, numClasses: 3 })).rejects.toThrow(
      /is 1×2, its ground truth 2×1/,
    );
  });
});
