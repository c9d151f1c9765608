import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchBrowserDeploy } from '../../src/bench/browser-deploy';
import {
  deployTimingTable,
  fastestOfRounds,
  fixedSelections,
  selectionCost,
  sessionRunOverhead,
  type SelectionTiming,
} from '../../src/bench/deploy-timing';
import type { BundleHead, BundleMeta } from '../../src/web/bundle-format';

/** The parts of meta.json the timing reads: MACs of 4 levels and of a concatenating head's parts. */
function meta(merge?: number): Pick<BundleMeta, 'levels' | 'head'> {
  const levels = [
    ['P2', 800],
    ['P3', 200],
    ['P4', 50],
    ['P5', 10],
  ] as const;
  return {
    levels: levels.map(([name, macs]) => ({ name, macs }) as BundleMeta['levels'][number]),
    head: {
      parts: levels.map(([level, macs]) => ({ level, macs: macs / 2 })),
      merge: merge === undefined ? null : { macs: merge },
    } as unknown as BundleHead,
  };
}

const timing = (levels: string[], partsMs: number, headMs: number): SelectionTiming => ({
  levels,
  partsMs,
  headMs,
  trunkMs: 1,
});

describe('fixedSelections', () => {
  it('gives each level alone, then the coarse-first cumulative subsets', () => {
    expect(fixedSelections(meta())).toEqual([
      ['P2'],
      ['P3'],
      ['P4'],
      ['P5'],
      ['P4', 'P5'],
      ['P3', 'P4', 'P5'],
      ['P2', 'P3', 'P4', 'P5'],
    ]);
  });
});

describe('selectionCost', () => {
  it('sums the level and head MACs of the selection, the merge when any head part runs', () => {
    expect(selectionCost(meta(), ['P4', 'P5'])).toEqual({ partsMacs: 60, headMacs: 30, sessionRuns: 4 });
    expect(selectionCost(meta(20), ['P5'])).toEqual({ partsMacs: 10, headMacs: 25, sessionRuns: 3 });
    expect(selectionCost({ ...meta(), head: null }, ['P2'])).toEqual({
      partsMacs: 800,
      headMacs: 0,
      sessionRuns: 1,
    });
  });
});

describe('deployTimingTable', () => {
  it('predicts each selection as its MAC share of the measured all-levels time', () => {
    const rows = deployTimingTable(meta(), [
      timing(['P2', 'P3', 'P4', 'P5'], 10, 5),
      timing(['P4', 'P5'], 0.6, 0.3),
    ]);
    // All levels: 1060 + 530 = 1590 MACs in 15 ms. P4+P5: 60 + 30 = 90 MACs → 90 / 1590 × 15 ms.
    expect(rows[0]).toMatchObject({ measuredMs: 15, predictedShare: 1, predictedMs: 15, ratio: 1 });
    expect(rows[1].measuredMs).toBeCloseTo(0.9, 12);
    expect(rows[1].predictedShare).toBeCloseTo(90 / 1590, 12);
    expect(rows[1].predictedMs).toBeCloseTo((90 / 1590) * 15, 12);
    expect(rows[1].ratio).toBeCloseTo(0.9 / ((90 / 1590) * 15), 12);
    expect(rows[1].sessionRuns).toBe(4);
  });

  it('needs the all-levels selection', () => {
    expect(() => deployTimingTable(meta(), [timing(['P5'], 1, 1)])).toThrow(/all-levels/);
  });
});

describe('sessionRunOverhead', () => {
  it('recovers the fixed ms and ms per MAC of parts timed alone (level and head parts)', () => {
    // Each part takes 0.03 ms + 0.01 ms per MAC.
    const t = (macs: number): number => 0.03 + 0.01 * macs;
    const timings = [
      timing(['P2'], t(800), t(400)),
      timing(['P3'], t(200), t(100)),
      timing(['P4'], t(50), t(25)),
      timing(['P5'], t(10), t(5)),
      timing(['P4', 'P5'], 99, 99), // not a single part: left out
    ];
    const o = sessionRunOverhead(meta(), timings)!;
    expect(o.points).toHaveLength(8);
    expect(o.fixedMs).toBeCloseTo(0.03, 10);
    expect(o.msPerMac).toBeCloseTo(0.01, 12);
    // With a merge graph a lone head part is two runs: only the level parts count.
    const merged = sessionRunOverhead(meta(20), timings)!;
    expect(merged.points.map((p) => p.part)).toEqual(['level-P2', 'level-P3', 'level-P4', 'level-P5']);
    expect(merged.fixedMs).toBeCloseTo(0.03, 10);
  });

  it('is undefined with fewer than two distinct part sizes', () => {
    expect(sessionRunOverhead({ ...meta(), head: null }, [timing(['P5'], 1, 0)])).toBeUndefined();
  });
});

describe('fastestOfRounds', () => {
  it('takes the least of each median over the rounds, per selection matched by its levels', () => {
    const a = [timing(['P5'], 1, 4), { ...timing(['P4', 'P5'], 3, 2), trunkMs: 0.5 }];
    const b = [timing(['P4', 'P5'], 2, 6), timing(['P5'], 1.5, 3)];
    expect(fastestOfRounds([a, b])).toEqual([
      { levels: ['P5'], partsMs: 1, headMs: 3, trunkMs: 1 },
      { levels: ['P4', 'P5'], partsMs: 2, headMs: 2, trunkMs: 0.5 },
    ]);
    expect(() => fastestOfRounds([a, [b[0]]])).toThrow(/did not time P5/);
  });
});

describe('benchBrowserDeploy', () => {
  it('refuses a folder without meta.json, and a missing browser, with a hint', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-bench-deploy-'));
    try {
      await expect(benchBrowserDeploy({ bundleDir: dir })).rejects.toMatchObject({
        message: expect.stringMatching(/is not a policy bundle \(no meta.json\)/),
        hint: expect.stringMatching(/export-policy/),
      });
      fs.writeFileSync(path.join(dir, 'meta.json'), '{}');
      await expect(
        benchBrowserDeploy({ bundleDir: dir, chromium: path.join(dir, 'no-chromium') }),
      ).rejects.toMatchObject({
        message: expect.stringMatching(/no browser at/),
        hint: expect.stringMatching(/apt-get install chromium/),
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
