/**
 * The COCOeval port against golden numbers from upstream pycocotools cocoeval.py (provenance in
 * fixtures/coco/golden.json and README.md): every one of the 12 stats and every per-category AP within 1e-9.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  COCO_IOU_THRESHOLDS,
  COCO_RECALL_THRESHOLDS,
  evaluateCoco,
  type CocoDetection,
  type CocoGroundTruth,
} from '../../src/metrics';

const dir = path.join(__dirname, 'fixtures', 'coco');

interface Golden {
  provenance: { commit: string; fixtureSha256: Record<string, string> };
  iouThrs: number[];
  recThrs: number[];
  fixtures: Record<string, { stats: number[]; perCategory: { id: number; ap: number }[] }>;
}

const golden = JSON.parse(fs.readFileSync(path.join(dir, 'golden.json'), 'utf8')) as Golden;
const names = Object.keys(golden.fixtures);
const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as T;

describe('evaluateCoco against pycocotools COCOeval (golden numbers)', () => {
  let worst = 0;
  afterAll(() => {
    console.log(
      `COCOeval golden: ${names.length} fixtures, max |diff| over stats and per-category AP = ${worst}`,
    );
  });

  it('uses the thresholds numpy.linspace gives, bit for bit', () => {
    expect([...COCO_IOU_THRESHOLDS]).toEqual(golden.iouThrs);
    expect([...COCO_RECALL_THRESHOLDS]).toEqual(golden.recThrs);
  });

  it('has golden numbers for exactly the fixture files on disk, unchanged since they were computed', () => {
    const files = fs
      .readdirSync(dir)
      .filter((f) => /\.(gt|dt)\.json$/.test(f))
      .sort();
    expect(files).toEqual(Object.keys(golden.provenance.fixtureSha256).sort());
    for (const f of files) {
      const sha = createHash('sha256')
        .update(fs.readFileSync(path.join(dir, f)))
        .digest('hex');
      expect({ f, sha }).toEqual({ f, sha: golden.provenance.fixtureSha256[f] });
    }
    expect(names.length).toBeGreaterThanOrEqual(6);
  });

  it.each(names)('%s: 12 stats and per-category AP within 1e-9', (name) => {
    const gt = readJson<CocoGroundTruth>(`${name}.gt.json`);
    const dt = readJson<CocoDetection[]>(`${name}.dt.json`);
    const want = golden.fixtures[name]!;
    const got = evaluateCoco(gt, dt);
    expect(got.stats).toHaveLength(12);
    got.stats.forEach((s, i) => {
      worst = Math.max(worst, Math.abs(s - want.stats[i]!));
      expect({ stat: got.statNames[i], value: s }).toEqual({
        stat: got.statNames[i],
        value: expect.closeTo(want.stats[i]!, 9) as number,
      });
    });
    expect(got.perCategory.map((c) => c.id)).toEqual(want.perCategory.map((c) => c.id));
    got.perCategory.forEach((c, k) => {
      worst = Math.max(worst, Math.abs(c.ap - want.perCategory[k]!.ap));
      expect(Math.abs(c.ap - want.perCategory[k]!.ap)).toBeLessThanOrEqual(1e-9);
    });
  });
});
