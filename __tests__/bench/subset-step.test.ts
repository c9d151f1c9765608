import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { computeCostModel } from '../../src/analysis/cost-model';
import {
  benchSubsetSteps,
  fitSubsetTimes,
  parseSubsets,
  predictSubsetShares,
} from '../../src/bench/subset-step';
import { buildResnetFpn, countResnetFpnParameters } from '../../src/models/resnet-fpn';
import { tinyFpn } from '../analysis/tiny-fpn';

describe('predictSubsetShares', () => {
  it("gives the hand-computed shares of the tiny FPN's subsets", () => {
    // MACs by hand (tiny-fpn.ts): shared 133,120, P2's own 26,624, P3's own 9,216; loss elements
    // P2 4·16·16 = 1,024, P3 4·8·8 = 256. Work = 3·MACs + 3·loss elements.
    const all = 3 * 168_960 + 3 * 1_280;
    const p2 = 3 * (133_120 + 26_624) + 3 * 1_024;
    const p3 = 3 * (133_120 + 9_216) + 3 * 256;
    const rows = predictSubsetShares(tinyFpn(), 64);
    expect(rows.map((r) => [r.name, r.work])).toEqual([
      ['P2+P3', all],
      ['P2', p2],
      ['P3', p3],
    ]);
    expect(rows[1].predictedShare).toBeCloseTo(p2 / all, 12);
    expect(rows[2].predictedShare).toBeCloseTo(p3 / all, 12);
    // The all-levels work is the cost model's: its per-level weights plus 3× the shared trunk.
    const cm = computeCostModel(tinyFpn(), { height: 64, width: 64 });
    const weights = cm.levels.reduce((a, l) => a + 3 * l.macs + 3 * l.lossElements, 0);
    expect(rows[0].work).toBe(weights + 3 * cm.sharedMacs);
  });

  it('takes asked subsets by level or output name, deduplicated, all levels first', () => {
    const rows = predictSubsetShares(tinyFpn(), 64, [['p3'], ['P3'], ['P3', 'P2']]);
    expect(rows.map((r) => r.name)).toEqual(['P2+P3', 'P3']);
    expect(() => predictSubsetShares(tinyFpn(), 64, [['P7']])).toThrow(/'P7' is not a pyramid level/);
  });
});

describe('parseSubsets and fitSubsetTimes', () => {
  it('parses the --subsets list', () => {
    expect(parseSubsets('all')).toBeUndefined();
    expect(parseSubsets(undefined)).toBeUndefined();
    expect(parseSubsets('P2+P3, P4')).toEqual([['P2', 'P3'], ['P4']]);
    expect(() => parseSubsets('P2,,P3')).toThrow(/empty subset/);
  });

  it('recovers the fixed and proportional parts of exact line data', () => {
    // ms = 12 + 80·share at three shares.
    const fit = fitSubsetTimes([
      { predictedShare: 1, medianMs: 92 },
      { predictedShare: 0.5, medianMs: 52 },
      { predictedShare: 0.25, medianMs: 32 },
    ]);
    expect(fit!.fixedMs).toBeCloseTo(12, 9);
    expect(fit!.proportionalMs).toBeCloseTo(80, 9);
    expect(fitSubsetTimes([{ predictedShare: 1, medianMs: 5 }])).toBeUndefined();
  });
});

describe('benchSubsetSteps on tiny ResNet-FPN graphs', () => {
  const SIZE = 64;
  const STUDENT = { arch: 'resnet18-fpn', widthMult: 0.125, fpnChannels: 16 } as const;
  const TEACHER = { arch: 'resnet34-fpn', widthMult: 0.125, fpnChannels: 16 } as const;

  it('times a pruned step per subset with the cost model beside it (plumbing, not timing)', async () => {
    const student = buildResnetFpn({ ...STUDENT, seed: 2, height: SIZE, width: SIZE, batchNorm: 'identity' });
    const teacher = buildResnetFpn({ ...TEACHER, seed: 1, height: SIZE, width: SIZE, batchNorm: 'identity' });
    const seen: string[] = [];
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-subsets-test-'));
    const r = await benchSubsetSteps({
      teacher,
      student,
      batch: 2,
      size: SIZE,
      steps: 1,
      warmup: 0,
      subsets: [['P3'], ['P4', 'P5']],
      cacheDir,
      onSubset: (p) => seen.push(p.name),
    });
    const predicted = predictSubsetShares(student, SIZE, [['P3'], ['P4', 'P5']]);
    expect(seen).toEqual(['P2+P3+P4+P5', 'P3', 'P4+P5']);
    expect(r.rows.map((x) => [x.name, x.predictedShare])).toEqual(
      predicted.map((p) => [p.name, p.predictedShare]),
    );
    expect(r.rows[0].predictedShare).toBe(1);
    expect(r.rows[0].measuredShare).toBe(1);
    for (const row of r.rows) {
      expect(row.stepsMs).toHaveLength(1);
      expect(row.measuredShare).toBeCloseTo(row.medianMs / r.rows[0].medianMs, 12);
      expect(row.ratio).toBeCloseTo(row.measuredShare / row.predictedShare, 12);
      expect(row.minRatio).toBeCloseTo(row.minMs / r.rows[0].minMs / row.predictedShare, 12);
      expect(row.withinTolerance).toBe(Math.abs(row.ratio - 1) <= 0.2);
      expect(Number.isFinite(row.firstLoss) && row.firstLoss > 0).toBe(true);
    }
    // The pruned steps train fewer parameters: P3 drops the other levels' output convs and P2's lateral.
    expect(r.rows[0].trainableParameters).toBe(countResnetFpnParameters(STUDENT));
    expect(r.rows[1].trainableParameters).toBeLessThan(r.rows[0].trainableParameters);
    expect(r.rows[2].trainableParameters).toBeLessThan(r.rows[0].trainableParameters);
    expect(r.rows.every((x) => x.predictedShare > 0 && x.predictedShare <= 1)).toBe(true);
    expect(r.rows[0].elementOpsShare).toBe(1);
    expect(r.fit).toBeDefined();
    // The per-subset artifacts went to the cache, one folder each.
    expect(fs.readdirSync(path.join(cacheDir, 'subsets')).sort()).toEqual([
      'student-all-levels',
      'student-levels-P3',
      'student-levels-P4+P5',
    ]);
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });
});
