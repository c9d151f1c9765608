/**
 * `rlpkd ablate --tables --quick` on the tiny project (two levels, shortest phases): the extra jobs (NAS
 * searches, Table 4/5 variants), Tables 1, 2, 4 and 5 with their rows and columns, every numeric cell
 * recomputed from the result files of the jobs it names, the NAS rows reading their chosen subset's job,
 * the files (tables.md, table<N>.csv, tables.json, pareto.json with NAS points), and a rerun reproducing
 * every non-timing cell.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config';
import { readMetrics } from '../../src/logging/metrics';
import { runAblation } from '../../src/sweep/run-ablation';
import {
  AblationStore,
  type BranchResult,
  type JobResult,
  type NasJobResult,
} from '../../src/sweep/ablation-store';
import type { AblationTables, TableCell } from '../../src/sweep/ablation-tables';
import { readParetoInput } from '../../src/viz/pareto-input';
import { tempDir } from '../distill/run-fixtures';
import { tinyAblationConfig } from './ablate-fixtures';

jest.setTimeout(600000);

const quiet = new Writable({ write: (_c, _e, done) => done() });

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

describe('rlpkd ablate --tables (local)', () => {
  it('writes Tables 1, 2, 4 and 5 whose every cell traces to job results', async () => {
    const dir = tempDir('ablate-tables');
    const config = tinyAblationConfig(dir);
    const out = path.join(dir, 'ablation');
    const r = await runAblation({ config, quick: true, tables: true, out, jobOptions: { logStream: quiet } });
    const store = new AblationStore(out);
    const m = store.readManifest();
    const s = config.run.seed;
    const [a, b] = m.levels;
    const all = `${a}+${b}`;
    expect(m.tables).toBe(true);
    expect(m.config.logging.every_steps).toBe(1);
    expect(m.jobs.map((j) => j.id).slice(6)).toEqual(
      [
        'nas-darts',
        'nas-evolution',
        'nas-gdas',
        'rl@independent',
        'rl@lambda0',
        'rl@no-gradnorm',
        `${all}@baseline`,
        `${all}@clip`,
        `${all}@clip+gradnorm`,
      ].map((x) => `s${s}-${x}`),
    );
    const result = (id: string) => store.readResult<JobResult>(id)!;

    // Variants trained with what they claim.
    const cfg = (method: string) =>
      loadConfig(path.join(store.runDir(`s${s}-${method}`), 'config.resolved.yaml'));
    expect(cfg('rl@independent').rl.policy.mode).toBe('independent');
    expect(cfg('rl@lambda0').rl.environment.lambda_tradeoff).toBe(0);
    expect(cfg('rl@no-gradnorm').gradnorm.enabled).toBe(false);
    expect(cfg(`${all}@baseline`).distill.grad_clip).toBeNull();
    const clip = result(`s${s}-${all}@clip`) as BranchResult;
    // c is the median unclipped gradient norm of the baseline's phase-3 steps (the same updates).
    expect(m.jobs.find((j) => j.id === clip.id)!.needs).toEqual([`s${s}-phase1`, `s${s}-${all}@baseline`]);
    const baselineNorms = readMetrics(path.join(store.runDir(`s${s}-${all}@baseline`), 'metrics.jsonl'))
      .filter((x) => x.phase === 3)
      .map((x) => x['distill/grad_norm'])
      .filter((x): x is number => typeof x === 'number')
      .sort((x, y) => x - y);
    const k = baselineNorms.length >> 1;
    expect(clip.gradClip).toBe(
      baselineNorms.length % 2 ? baselineNorms[k] : (baselineNorms[k - 1] + baselineNorms[k]) / 2,
    );
    expect(clip.clippedShare).toBeGreaterThanOrEqual(0);
    expect(clip.clippedShare).toBeLessThanOrEqual(1);
    expect(cfg(`${all}@clip+gradnorm`).distill.grad_clip).toBe(clip.gradClip);
    expect((result(`s${s}-${all}@clip+gradnorm`) as BranchResult).gradnorm).toBe(true);

    const t: AblationTables = JSON.parse(fs.readFileSync(path.join(out, 'tables.json'), 'utf8'));
    expect(t).toEqual(JSON.parse(JSON.stringify(r.tables!.report)));
    expect(t.tables.map((x) => x.id)).toEqual([1, 2, 4, 5]);
    const table = (id: number) => t.tables.find((x) => x.id === id)!;
    const labels = (id: number) => table(id).rows.map((x) => x.label);
    expect(labels(1)).toEqual(['Uniform', a, b, 'Random', 'DARTS-LS', 'EA-LS', 'GDAS-LS', 'RL']);
    expect(labels(2)).toEqual(['Uniform', 'DARTS-LS', 'EA-LS', 'GDAS-LS', 'RL']);
    expect(labels(4)).toEqual([
      'Fixed uniform',
      'RL w/o sequential',
      'RL w/o efficiency (λ = 0)',
      'RL w/o GradNorm',
      'RL (full)',
    ]);
    expect(labels(5)).toEqual(['Baseline (uniform)', '+ gradient clipping', '+ GradNorm', 'RL + GradNorm']);
    // No teacher head in the tiny project: the metric is the held-out distillation loss.
    expect(t.metric.columns).toEqual([t.metric.name]);
    expect(table(1).columns.map((c) => c.key)).toEqual(['selection', t.metric.name, 'cost', 'speedup']);
    expect(table(2).columns.map((c) => c.key)).toEqual(['type', 'metric', 'cost', 'search', 'adaptive']);
    expect(table(5).columns.map((c) => c.key)).toEqual([
      'clip',
      'clipped',
      'gradnorm',
      'metric',
      'stability',
    ]);

    // Every numeric cell names existing jobs of this ablation.
    for (const tb of t.tables) {
      for (const row of tb.rows) {
        for (const c of tb.columns.filter((x) => x.kind === 'number')) {
          const v = row.cells[c.key];
          if (typeof v === 'string') continue;
          expect(v.jobs.length).toBeGreaterThan(0);
          for (const id of v.jobs) expect(store.readResult(id)).not.toBeNull();
        }
      }
    }
    // … and is recomputed from them here.
    const cellOf = (id: number, label: string, key: string) =>
      table(id).rows.find((x) => x.label === label)!.cells[key] as TableCell;
    const branch = (method: string) => result(`s${s}-${method}`) as BranchResult;
    expect(cellOf(1, b, t.metric.name).mean).toBe(branch(b).metric.value);
    expect(cellOf(1, b, 'cost').mean).toBe(branch(b).meanCost);
    expect(cellOf(1, b, 'speedup').mean).toBeCloseTo(branch(all).updateSeconds / branch(b).updateSeconds, 12);
    expect(cellOf(1, 'Uniform', 'speedup').mean).toBe(1);
    for (const [label, search] of [
      ['DARTS-LS', 'darts'],
      ['EA-LS', 'evolution'],
      ['GDAS-LS', 'gdas'],
    ] as const) {
      const nas = result(`s${s}-nas-${search}`) as NasJobResult;
      expect(m.levels.filter((l) => nas.chosen.includes(l)).join('+')).toBe(nas.chosenMethod);
      const metricCell = cellOf(1, label, t.metric.name);
      expect(metricCell.jobs).toEqual([`s${s}-${nas.chosenMethod}`, `s${s}-nas-${search}`]);
      expect(metricCell.mean).toBe(branch(nas.chosenMethod).metric.value);
      expect(cellOf(2, label, 'search').mean).toBe(nas.searchSeconds);
      expect(nas.searchSeconds).toBeGreaterThan(0);
      expect(JSON.parse(fs.readFileSync(nas.file, 'utf8')).search.seconds).toBe(nas.searchSeconds);
    }
    const rl = branch('rl');
    expect(cellOf(2, 'RL', 'search').mean).toBeCloseTo(rl.branchSeconds - rl.updateSeconds, 12);
    expect(cellOf(4, 'RL w/o efficiency (λ = 0)', 'metric').mean).toBe(branch('rl@lambda0').metric.value);
    expect(cellOf(4, 'Fixed uniform', 'metric').jobs).toEqual([`s${s}-${all}`]);
    const stable = branch(`${all}@baseline`).stability!;
    expect(stable.steps).toBeGreaterThan(1);
    expect(stable.perLevel[a]).not.toBeNull();
    expect(cellOf(5, 'Baseline (uniform)', 'stability').mean).toBe(stable.mean);
    expect(stable.mean).toBeCloseTo(mean([stable.perLevel[a]!, stable.perLevel[b]!]), 12);
    const t5 = table(5).rows;
    expect(t5[0].cells.clip).toBe('off');
    expect((t5[1].cells.clip as TableCell).mean).toBe(clip.gradClip);
    expect((t5[1].cells.clipped as TableCell).mean).toBe(clip.clippedShare);
    expect(t5[2].cells.gradnorm).toBe('on');

    // Files.
    const md = fs.readFileSync(path.join(out, 'tables.md'), 'utf8');
    for (const title of ['Table 1', 'Table 2', 'Table 4', 'Table 5']) expect(md).toContain(`### ${title}`);
    expect(md).toContain('| DARTS-LS |');
    for (const n of [1, 2, 4, 5]) {
      const csv = fs
        .readFileSync(path.join(out, `table${n}.csv`), 'utf8')
        .trim()
        .split('\n');
      expect(csv).toHaveLength(table(n).rows.length + 1);
    }
    const pareto = readParetoInput(out);
    expect(pareto.points.filter((p) => p.fixed)).toHaveLength(3);
    expect(pareto.points.map((p) => p.method)).toEqual(
      expect.arrayContaining(['DARTS-LS', 'EA-LS', 'GDAS-LS', 'rl']),
    );
    // The issue-13 table keeps its rows.
    expect(r.report.rows.map((x) => x.method).sort()).toEqual([a, all, b, 'random', 'rl'].sort());

    // Rerun from scratch with the same seed: every non-timing cell again.
    const out2 = path.join(dir, 'ablation2');
    const r2 = await runAblation({
      config,
      quick: true,
      tables: true,
      out: out2,
      jobOptions: { logStream: quiet },
    });
    const timing = new Set(['speedup', 'search']);
    const strip = (x: AblationTables) =>
      x.tables.map((tb) =>
        tb.rows.map((row) =>
          Object.entries(row.cells)
            .filter(([k]) => !timing.has(k))
            .map(([k, v]) => [k, typeof v === 'string' ? v : [v.mean, v.std]]),
        ),
      );
    expect(strip(r2.tables!.report)).toEqual(strip(r.tables!.report));
  });
});
