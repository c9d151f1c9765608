import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { loadMaskInto } from '../../src/data/image-loader';
import { IGNORE_LABEL } from '../../src/data/types';

describe('loadMaskInto', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-mask-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  // One row of labels 0, 1, 2, 150, 255 (a 5x1 grayscale PNG).
  const labels = [0, 1, 2, 150, 255];
  async function maskFile(): Promise<string> {
    const file = path.join(dir, 'mask.png');
    await sharp(Buffer.from(labels), { raw: { width: 5, height: 1, channels: 1 } })
      .png()
      .toFile(file);
    return file;
  }

  it('keeps labels as stored without reduce-zero-label', async () => {
    const out = new Uint8Array(5);
    await loadMaskInto(await maskFile(), 1, 5, false, false, out, 0);
    expect(Array.from(out)).toEqual(labels);
  });

  it('reduce-zero-label: 0 and 255 are ignored, others shift down by one (mmsegmentation)', async () => {
    const out = new Uint8Array(5);
    await loadMaskInto(await maskFile(), 1, 5, false, true, out, 0);
    expect(IGNORE_LABEL).toBe(255);
    expect(Array.from(out)).toEqual([255, 0, 1, 149, 255]);
  });

  it('flips like its image', async () => {
    const out = new Uint8Array(5);
    await loadMaskInto(await maskFile(), 1, 5, true, false, out, 0);
    expect(Array.from(out)).toEqual([...labels].reverse());
  });
});
