/** Pareto frontier and envelope against hand-worked points; the plot's method markers; the ablation-directory input files. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontierAt, paretoFrontier, paretoSpec, type ParetoPoint } from '../../src/viz/pareto';
import { parseParetoCsv, parseParetoJson, readParetoInput } from '../../src/viz/pareto-input';

// Fixed subsets (cost, AP): A (0.2, 20), B (0.4, 22) dominated by C (0.3, 25), D (0.6, 27), E (1.0, 30),
// F (0.6, 26) dominated by D at the same cost. The RL policy is not fixed and never on the frontier.
const pts: ParetoPoint[] = [
  { method: 'A', cost: 0.2, metric: 20, fixed: true },
  { method: 'B', cost: 0.4, metric: 22, fixed: true },
  { method: 'C', cost: 0.3, metric: 25, fixed: true },
  { method: 'D', cost: 0.6, metric: 27, fixed: true },
  { method: 'F', cost: 0.6, metric: 26, fixed: true },
  { method: 'E', cost: 1.0, metric: 30, fixed: true },
  { method: 'RL', cost: 0.35, metric: 29, std: 0.5 },
];

describe('paretoFrontier', () => {
  it('keeps the non-dominated fixed subsets by increasing cost', () => {
    expect(paretoFrontier(pts).map((p) => p.method)).toEqual(['A', 'C', 'D', 'E']);
  });

  it('hull: drops D, which lies under the chord C–E (25 + 5·0.3/0.7 = 27.14 > 27)', () => {
    expect(paretoFrontier(pts, { envelope: 'hull' }).map((p) => p.method)).toEqual(['A', 'C', 'E']);
  });

  it('lower-is-better metrics (a loss) flip the dominance', () => {
    const loss = pts.map((p) => ({ ...p, metric: -p.metric }));
    expect(paretoFrontier(loss, { higherIsBetter: false }).map((p) => p.method)).toEqual([
      'A',
      'C',
      'D',
      'E',
    ]);
  });

  it('interpolates linearly in cost, holds the best value beyond, is null below the cheapest', () => {
    const f = paretoFrontier(pts);
    expect(frontierAt(f, 0.25)).toBeCloseTo(22.5, 12); // halfway A→C
    expect(frontierAt(f, 0.5)).toBeCloseTo(25 + (2 * 0.2) / 0.3, 12); // C→D
    expect(frontierAt(f, 0.6)).toBe(27);
    expect(frontierAt(f, 2)).toBe(30);
    expect(frontierAt(f, 0.1)).toBeNull();
    expect(frontierAt([], 0.5)).toBeNull();
  });
});

describe('pareto input files', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-pareto-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the JSON form with its labels', () => {
    const r = parseParetoJson(
      JSON.stringify({
        metric: 'AP',
        cost: 'cost share',
        higherIsBetter: true,
        points: [
          { method: 'P3', cost: 0.3, metric: 25, fixed: true },
          { method: 'RL', cost: 0.35, metric: 29, std: 0.5 },
        ],
      }),
      'x.json',
    );
    expect(r.points).toEqual([
      { method: 'P3', cost: 0.3, metric: 25, fixed: true },
      { method: 'RL', cost: 0.35, metric: 29, std: 0.5 },
    ]);
    expect(r.options).toEqual({ metricName: 'AP', costName: 'cost share', higherIsBetter: true });
  });

  it('reads the CSV form in any column order, with optional std and fixed', () => {
    const r = parseParetoCsv(
      'fixed,method,metric,cost,std\ntrue,P3+P4,25.5,0.5,\n0,RL,29,0.35,0.25\n',
      'x.csv',
    );
    expect(r.points).toEqual([
      { method: 'P3+P4', cost: 0.5, metric: 25.5, fixed: true },
      { method: 'RL', cost: 0.35, metric: 29, std: 0.25, fixed: false },
    ]);
  });

  it('reads <dir>/pareto.csv and names the bad line or column', () => {
    fs.writeFileSync(path.join(dir, 'pareto.csv'), 'method,cost,metric\nA,0.2,20\nB,0.4,oops\n');
    expect(() => readParetoInput(dir)).toThrow(/point 2 \('B'\): metric must be a finite number/);
    fs.writeFileSync(path.join(dir, 'pareto.csv'), 'method,cost\nA,0.2\n');
    expect(() => readParetoInput(dir)).toThrow(/no 'metric' column/);
    fs.writeFileSync(path.join(dir, 'pareto.csv'), 'method,cost,metric\nA,0.2,20\nB,0.4,22\n');
    const r = readParetoInput(dir);
    expect(r.file).toBe(path.join(dir, 'pareto.csv'));
    expect(r.points.map((p) => p.method)).toEqual(['A', 'B']);
  });

  it('says which files it looks for in an empty directory', () => {
    const empty = fs.mkdtempSync(path.join(dir, 'empty-'));
    expect(() => readParetoInput(empty)).toThrow(/neither pareto.json nor pareto.csv/);
    expect(() => readParetoInput(path.join(dir, 'missing'))).toThrow(/does not exist/);
  });
});

describe('paretoSpec', () => {
  it('draws every other method with its own shape, coincident ones larger so each stays visible', () => {
    const spec = paretoSpec([
      { method: 'P4', cost: 0.8, metric: 30, fixed: true },
      { method: 'rl', cost: 0.5, metric: 29 },
      { method: 'DARTS-LS', cost: 0.8, metric: 30 },
      { method: 'GDAS-LS', cost: 0.8, metric: 30 },
      { method: 'EA-LS', cost: 0.8, metric: 30 },
    ]) as unknown as {
      layer: { data: { values: { method: string; size?: number }[] }; encoding: Record<string, unknown> }[];
    };
    const layer = spec.layer.find((l) => l.encoding.shape)!;
    expect(layer.data.values.map((v) => [v.method, v.size])).toEqual([
      ['rl', 130],
      ['DARTS-LS', 130],
      ['GDAS-LS', 300],
      ['EA-LS', 470],
    ]);
    const shape = layer.encoding.shape as { scale: { range: string[] }; sort: string[] };
    expect(shape.sort).toEqual(['rl', 'DARTS-LS', 'GDAS-LS', 'EA-LS']);
    expect(new Set(shape.scale.range.slice(0, 4)).size).toBe(4);
  });
});
