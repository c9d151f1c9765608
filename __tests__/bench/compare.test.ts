import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  COMPARE_TARGETS,
  builderBenchGraphs,
  lastJson,
  summarizeComparison,
  type TorchStepResult,
} from '../../src/bench/compare';
import type { TrainStepBenchResult } from '../../src/bench/train-step';
import { loadModel } from '../../src/onnx';

/** A run with the given median and peak RSS (the other fields are not summarized). */
function ours(medianMs: number, peakRssMB: number): TrainStepBenchResult {
  return { medianMs, peakRssMB, stepsMs: [medianMs] } as TrainStepBenchResult;
}
const torch = (medianMs: number, peakRssMB: number): TorchStepResult => ({
  medianMs,
  peakRssMB,
  p90Ms: medianMs,
  minMs: medianMs,
  runtime: 'torch',
});

describe('bench compare summary', () => {
  it('takes the median over rounds of the times, the largest peak RSS, and checks the targets', () => {
    const s = summarizeComparison(
      [ours(700, 900), ours(820, 950), ours(760, 940)],
      [torch(1000, 1000), torch(900, 1100), torch(1100, 990)],
      [1.234, 2.5, 3, 0.5],
      16,
    );
    // Medians 760 and 1000; peaks 950 and 1100.
    expect(s).toMatchObject({ rounds: 3, timeRatio: 0.76, cpus: 16, met: true });
    expect(s.memoryRatio).toBeCloseTo(950 / 1100, 15);
    expect(s.ours.runs[0]).not.toHaveProperty('stepsMs');
    expect(s.loadAverage1m).toEqual([1.23, 2.5, 3, 0.5]);
    expect(s.targets).toEqual(COMPARE_TARGETS);
  });

  it('misses the targets when either ratio is above its bound', () => {
    // Two rounds: median = mean of the two middle values (810 / 1000 = 0.81 > 0.8).
    expect(
      summarizeComparison([ours(800, 500), ours(820, 500)], [torch(1000, 900), torch(1000, 900)], [], 2).met,
    ).toBe(false);
    expect(summarizeComparison([ours(500, 901)], [torch(1000, 900)], [], 2).met).toBe(false);
    expect(summarizeComparison([ours(800, 900)], [torch(1000, 900)], [], 2).met).toBe(true);
  });

  it('reads the JSON a child prints last, after other output', () => {
    expect(lastJson<{ a: number }>('progress\n{"a": 1}\n', 'child')).toEqual({ a: 1 });
    expect(lastJson<{ a: number }>('log line\n{\n  "a": 2\n}\n', 'child')).toEqual({ a: 2 });
    expect(() => lastJson('nothing here', 'the child')).toThrow(/the child printed no JSON result/);
  });

  it('builds the builder graphs once into the cache, weights in external data', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-compare-'));
    try {
      const g = builderBenchGraphs(dir, 'resnet18-fpn', 'resnet18-fpn', 32);
      expect(path.basename(g.teacher)).toBe('resnet18-fpn-32-seed1.onnx');
      expect(fs.existsSync(`${g.student}.data`)).toBe(true);
      const mtime = fs.statSync(g.teacher).mtimeMs;
      builderBenchGraphs(dir, 'resnet18-fpn', 'resnet18-fpn', 32);
      expect(fs.statSync(g.teacher).mtimeMs).toBe(mtime);
      expect(loadModel(g.teacher).graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3', 'p4', 'p5']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
