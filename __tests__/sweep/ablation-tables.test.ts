/**
 * The paper's tables from hand-made job results (two seeds, detection metrics): the plan's extra jobs and
 * which variants coincide with their base method, the stability and clipping figures against hand-computed
 * values, and Tables 1, 2, 4 and 5 cell by cell (mean ± sample std, the jobs behind each cell, the NAS rows
 * reading their chosen subset's job).
 */
import { configFromObject } from '../../src/config/load-config';
import type { RunConfig } from '../../src/config/schema';
import { parseMethod, planAblation } from '../../src/sweep/ablation-plan';
import { assembleTables, type TableCell } from '../../src/sweep/ablation-tables';
import type { AblationManifest, BranchResult, JobResult, NasJobResult } from '../../src/sweep/ablation-store';
import { tableExtraMethods, tableVariantSources } from '../../src/sweep/table-plan';
import { tableCsv, tablesMarkdown } from '../../src/sweep/tables-format';
import { clippedShare, levelLossSpread, medianGradNorm } from '../../src/sweep/training-stability';

function config(extra: Record<string, unknown> = {}): RunConfig {
  return configFromObject({
    models: { teacher: 't.onnx', student: 's.onnx', levels: ['P4', 'P5'] },
    ...extra,
  });
}

describe('the tables plan', () => {
  it('adds the NAS searches and the variants; the clipping ones wait for the baseline', () => {
    const extra = tableExtraMethods(config(), ['P4', 'P5']);
    expect(extra).toEqual([
      { method: 'nas-darts', after: [] },
      { method: 'nas-evolution', after: [] },
      { method: 'nas-gdas', after: [] },
      { method: 'rl@independent', after: [] },
      { method: 'rl@lambda0', after: [] },
      { method: 'rl@no-gradnorm', after: [] },
      { method: 'P4+P5@baseline', after: [] },
      { method: 'P4+P5@clip', after: ['P4+P5@baseline'] },
      { method: 'P4+P5@clip+gradnorm', after: ['P4+P5@baseline'] },
    ]);
    const jobs = planAblation(['P4', 'P5'], [1], extra);
    expect(jobs.find((j) => j.id === 's1-P4+P5@clip')!.needs).toEqual(['s1-phase1', 's1-P4+P5@baseline']);
    expect(jobs.find((j) => j.id === 's1-nas-gdas')!.needs).toEqual(['s1-phase1']);
  });

  it('reads a variant from its base job when the config already is that variant', () => {
    const c = config({
      rl: { policy: { mode: 'independent' } },
      gradnorm: { enabled: false },
      distill: { grad_clip: 2 },
    });
    const src = Object.fromEntries(tableVariantSources(c, ['P4', 'P5']).map((s) => [s.variant, s]));
    expect(src.independent).toEqual({ variant: 'independent', method: 'rl', sameAsBase: true });
    expect(src['no-gradnorm'].sameAsBase).toBe(true);
    expect(src.lambda0.sameAsBase).toBe(false);
    // gradnorm off and clip 2 in the config: the "+ clipping" row is the uniform job itself.
    expect(src.clip).toEqual({ variant: 'clip', method: 'P4+P5', sameAsBase: true });
    expect(src.baseline.method).toBe('P4+P5@baseline');
    // With the config's own norm nothing is measured, so nothing waits.
    expect(tableExtraMethods(c, ['P4', 'P5']).every((x) => x.after.length === 0)).toBe(true);
  });

  it('parses variant and search names, and refuses a variant of the wrong method', () => {
    expect(parseMethod('rl@lambda0', ['P4', 'P5'])).toEqual({ kind: 'rl', variant: 'lambda0' });
    expect(parseMethod('P4+P5@clip', ['P4', 'P5'])).toEqual({
      kind: 'fixed',
      levels: ['P4', 'P5'],
      variant: 'clip',
    });
    expect(parseMethod('nas-evolution', ['P4', 'P5'])).toEqual({ kind: 'nas', search: 'evolution' });
    expect(() => parseMethod('P4@clip', ['P4', 'P5'])).toThrow(/names no variant/);
    expect(() => parseMethod('rl@baseline', ['P4', 'P5'])).toThrow(/names no variant/);
    expect(() => parseMethod('rl@nope', ['P4', 'P5'])).toThrow(/names no variant/);
  });
});

describe('training stability figures', () => {
  const rec = (step: number, phase: number, g: number, p4?: number, p5?: number) => ({
    step,
    phase,
    'distill/grad_norm': g,
    ...(p4 !== undefined ? { 'distill/selected_level_loss/P4': p4 } : {}),
    ...(p5 !== undefined ? { 'distill/selected_level_loss/P5': p5 } : {}),
  });
  const records = [
    rec(1, 1, 100, 9, 9),
    rec(2, 3, 4, 2, 10),
    rec(3, 3, 1, 1, undefined),
    rec(4, 3, 3, 3, 5),
    rec(5, 3, 2, 2, undefined),
    { step: 5, phase: 3, 'heldout/joint/loss': 7 },
  ];

  it('gives the std over steps of L_l(t)/L_l(t0), averaged over levels', () => {
    const s = levelLossSpread(records, ['P4', 'P5'], 3);
    // P4 ratios 1, 0.5, 1.5, 1: mean 1, squares 0 + 0.25 + 0.25 + 0 = 0.5, / 3.
    expect(s.perLevel.P4).toBeCloseTo(Math.sqrt(0.5 / 3), 14);
    // P5 ratios 1, 0.5: sample std sqrt(2 · 0.25² / 1).
    expect(s.perLevel.P5).toBeCloseTo(Math.sqrt(0.125), 14);
    expect(s.mean).toBeCloseTo((Math.sqrt(0.5 / 3) + Math.sqrt(0.125)) / 2, 14);
    expect(s.steps).toBe(4);
    expect(levelLossSpread(records, ['P4', 'P5'], 1).mean).toBeNull();
  });

  it('gives the median gradient norm of a phase and the share of steps above a norm', () => {
    expect(medianGradNorm(records, 3, 'x')).toBe(2.5); // 1 2 3 4
    expect(medianGradNorm(records.slice(0, 4), 3, 'x')).toBe(3); // 1 3 4
    expect(clippedShare(records, 3, 2.5)).toBe(0.5);
    expect(() => medianGradNorm(records, 2, 'run r')).toThrow(/run r logged no student gradient norm/);
  });
});

describe('assembleTables', () => {
  const levels = ['P4', 'P5'];
  const seeds = [0, 1];
  const c = config();
  const manifest = { seeds, levels, costs: [0.8, 0.2], config: c } as unknown as AblationManifest;
  // AP per method and seed; AP50 = AP + 10 etc. so each column is distinguishable.
  const ap: Record<string, [number, number]> = {
    P4: [30, 32],
    P5: [20, 24],
    'P4+P5': [31, 31],
    random: [25, 27],
    rl: [33, 35],
    'rl@independent': [29, 30],
    'rl@lambda0': [34, 34],
    'rl@no-gradnorm': [32, 33],
    'P4+P5@baseline': [28, 30],
    'P4+P5@clip': [29, 29],
    'P4+P5@clip+gradnorm': [30, 32],
  };
  const cost: Record<string, number> = { P4: 0.8, P5: 0.2, 'P4+P5': 1, random: 0.5 };
  const branch = (method: string, seed: number): BranchResult => {
    const v = ap[method][seed];
    return {
      id: `s${seed}-${method}`,
      seed,
      method,
      runDir: '/x',
      metric: { name: 'AP', value: v, higherIsBetter: true, source: 'task' },
      taskValues: { AP: v, AP50: v + 10, AP75: v + 1, APs: v - 5, APm: v, APl: v + 5, AR1: 0 },
      meanCost: cost[method] ?? (method.startsWith('rl') ? 0.4 + seed / 10 : 1),
      heldOutCost: 0,
      updates: 6,
      images: 48,
      digest: 'd',
      trials: 0,
      updateSeconds: method.startsWith('P4+P5') ? 10 : method === 'P5' ? 4 + seed : 8,
      branchSeconds: 20 + seed,
      seconds: 30,
      phaseSeconds: [10, 0, 20, 0],
      gradClip: method.includes('clip') ? 3 + seed : null,
      clippedShare: method.includes('clip') ? 0.5 : null,
      gradnorm: !method.includes('@baseline') && !method.endsWith('@clip') && method !== 'rl@no-gradnorm',
      stability: { perLevel: {}, mean: method === 'rl' ? 0.2 + seed / 10 : 0.1, steps: 6 },
    };
  };
  const nas = (search: 'darts' | 'evolution' | 'gdas', seed: number, chosen: string): NasJobResult => ({
    id: `s${seed}-nas-${search}`,
    seed,
    method: `nas-${search}`,
    search,
    file: '/x/nas.json',
    chosen: chosen.split('+'),
    chosenMethod: chosen,
    objective: 1,
    cost: cost[chosen],
    searchSeconds: 5 + seed,
    ep: 'cpu',
    proxySteps: 4,
  });
  const results: JobResult[] = [
    ...seeds.flatMap((s) => Object.keys(ap).map((m) => branch(m, s))),
    ...seeds.flatMap((s) => [
      nas('darts', s, 'P4'),
      nas('evolution', s, s ? 'P5' : 'P4'),
      nas('gdas', s, 'P4+P5'),
    ]),
  ];
  const t = assembleTables(manifest, results);
  const table = (id: number) => t.tables.find((x) => x.id === id)!;
  const get = (id: number, label: string, key: string) =>
    table(id).rows.find((r) => r.label === label)!.cells[key] as TableCell;

  it('Table 1: detection columns, mean ± std, speedup against uniform, NAS rows from their choices', () => {
    expect(t.metric.columns).toEqual(['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl']);
    expect(table(1).rows.map((r) => r.label)).toEqual([
      'Uniform',
      'P4',
      'P5',
      'Random',
      'DARTS-LS',
      'EA-LS',
      'GDAS-LS',
      'RL',
    ]);
    expect(get(1, 'P5', 'AP').mean).toBe(22);
    expect(get(1, 'P5', 'AP').std).toBeCloseTo(Math.sqrt(8), 12); // 20, 24
    expect(get(1, 'P5', 'AP50').mean).toBe(32);
    expect(get(1, 'P5', 'speedup').mean).toBeCloseTo((10 / 4 + 10 / 5) / 2, 12);
    expect(get(1, 'P5', 'speedup').jobs).toEqual(['s0-P5', 's0-P4+P5', 's1-P5', 's1-P4+P5']);
    // EA-LS chose P4 in seed 0 and P5 in seed 1.
    expect(get(1, 'EA-LS', 'AP').mean).toBe((30 + 24) / 2);
    expect(get(1, 'EA-LS', 'AP').jobs).toEqual(['s0-P4', 's0-nas-evolution', 's1-P5', 's1-nas-evolution']);
    expect(table(1).rows.find((r) => r.label === 'EA-LS')!.cells.selection).toBe('P4 (seed 0), P5 (seed 1)');
    expect(get(1, 'GDAS-LS', 'cost').mean).toBe(1);
    expect(get(1, 'RL', 'cost').mean).toBeCloseTo(0.45, 12);
  });

  it('Table 2: search type, measured search cost, sample-adaptive', () => {
    const row = (l: string) => table(2).rows.find((r) => r.label === l)!.cells;
    expect(row('DARTS-LS').type).toBe('gradient');
    expect(row('EA-LS').type).toBe('evolution');
    expect((row('GDAS-LS').search as TableCell).mean).toBe(5.5);
    expect((row('GDAS-LS').search as TableCell).jobs).toEqual(['s0-nas-gdas', 's1-nas-gdas']);
    expect((row('RL').search as TableCell).mean).toBe(20.5 - 8);
    expect(row('RL').adaptive).toBe('yes');
    expect(row('Uniform').search).toBe('—');
    expect((row('Uniform').metric as TableCell).mean).toBe(31);
  });

  it('Tables 4 and 5: the variants, clipping norm and share, stability', () => {
    expect(get(4, 'RL w/o efficiency (λ = 0)', 'metric').mean).toBe(34);
    expect(get(4, 'RL w/o sequential', 'metric').jobs).toEqual(['s0-rl@independent', 's1-rl@independent']);
    expect(get(4, 'Fixed uniform', 'metric').mean).toBe(31);
    const row = (l: string) => table(5).rows.find((r) => r.label === l)!.cells;
    expect(row('Baseline (uniform)').clip).toBe('off');
    expect(row('Baseline (uniform)').gradnorm).toBe('off');
    expect((row('+ gradient clipping').clip as TableCell).mean).toBe(3.5);
    expect((row('+ gradient clipping').clipped as TableCell).mean).toBe(0.5);
    expect(row('+ GradNorm').gradnorm).toBe('on');
    expect((row('+ GradNorm').metric as TableCell).mean).toBe(31);
    expect((row('RL + GradNorm').stability as TableCell).mean).toBeCloseTo(0.25, 12);
    expect((row('RL + GradNorm').stability as TableCell).std).toBeCloseTo(Math.sqrt(0.005), 12);
  });

  it('formats Markdown and CSV', () => {
    const md = tablesMarkdown(t);
    expect(md).toContain('| P5 | P5 | 22.00 ± 2.828 | 32.00 ± 2.828 |');
    const csv = tableCsv(table(1)).split('\n');
    expect(csv[0]).toBe(
      'method,selection,AP,AP_std,AP50,AP50_std,AP75,AP75_std,APs,APs_std,APm,APm_std,APl,APl_std,cost,cost_std,speedup,speedup_std',
    );
    expect(csv[5].startsWith('DARTS-LS,"P4 (seed 0), P4 (seed 1)",31,')).toBe(true);
  });

  it('leaves out a detection column no job measured (APl null: no COCO-large object), saying so', () => {
    const noLarge = results.map((r) =>
      'taskValues' in r && r.taskValues ? { ...r, taskValues: { ...r.taskValues, APl: null } } : r,
    );
    const u = assembleTables(manifest, noLarge);
    expect(u.metric.columns).toEqual(['AP', 'AP50', 'AP75', 'APs', 'APm']);
    const t1 = u.tables.find((x) => x.id === 1)!;
    expect(t1.columns.map((c) => c.key)).not.toContain('APl');
    expect(t1.notes[0]).toMatch(/^APl: not measured/);
  });
});
