/**
 * A local ablation of a tiny project (32×32 graphs, two levels, 16 training images, --quick): the job
 * list, one phase-1 checkpoint shared by every branch, equal kept updates on the same images, the random
 * branch at the rl branch's cost, the tables, and a branch run again giving the same metric.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load-config';
import { readParetoInput } from '../../src/viz/pareto-input';
import { runAblation } from '../../src/sweep/run-ablation';
import { AblationStore, type BranchResult, type PhaseOneResult } from '../../src/sweep/ablation-store';
import { tempDir } from '../distill/run-fixtures';
import { tinyAblationConfig } from './ablate-fixtures';

jest.setTimeout(300000);

const quiet = new Writable({ write: (_c, _e, done) => done() });

describe('rlpkd ablate (local)', () => {
  it('branches every method from one phase-1 checkpoint with equal updates and writes the tables', async () => {
    const dir = tempDir('ablate');
    const config = tinyAblationConfig(dir);
    const out = path.join(dir, 'ablation');
    const ablate = async (lines: string[]) =>
      runAblation({
        config,
        quick: true,
        out,
        onProgress: (l) => lines.push(l),
        jobOptions: { logStream: quiet },
      });
    const lines: string[] = [];
    const r = await ablate(lines);
    const store = new AblationStore(out);
    const m = store.readManifest();
    const L = m.levels;
    expect(L).toHaveLength(2);
    const s = config.run.seed;
    expect(m.jobs.map((j) => j.id)).toEqual([
      `s${s}-phase1`,
      `s${s}-${L[0]}`,
      `s${s}-${L[1]}`,
      `s${s}-${L[0]}+${L[1]}`,
      `s${s}-rl`,
      `s${s}-random`,
    ]);
    expect(lines).toHaveLength(6);

    // Every branch starts from a copy of the one phase-1 checkpoint.
    const p1 = store.readResult<PhaseOneResult>(`s${s}-phase1`)!;
    expect(p1.updates.updates).toBeGreaterThan(0);
    const label = path.basename(p1.checkpoint);
    const student = fs.readFileSync(path.join(p1.checkpoint, 'student.train.onnx'));
    const branches = m.jobs
      .filter((j) => j.method !== 'phase1')
      .map((j) => store.readResult<BranchResult>(j.id)!);
    for (const b of branches) {
      const copy = path.join(b.runDir, 'checkpoints', label, 'student.train.onnx');
      // The copy may be pruned once the branch has newer checkpoints; its log names the start.
      if (fs.existsSync(copy)) expect(fs.readFileSync(copy).equals(student)).toBe(true);
      expect(fs.readFileSync(path.join(b.runDir, 'config.resolved.yaml'), 'utf8')).toContain(label);
      expect(b.phaseSeconds[0]).toBeCloseTo(p1.seconds, 9);
    }

    // Same number of kept updates on the same images; trials only where a policy learns.
    const byMethod = Object.fromEntries(branches.map((b) => [b.method, b]));
    for (const b of branches) {
      expect(b.updates).toBe(byMethod.rl.updates);
      expect(b.digest).toBe(byMethod.rl.digest);
    }
    expect(byMethod.rl.updates).toBeGreaterThan(0);
    expect(byMethod.rl.trials).toBeGreaterThan(0);
    expect(byMethod[L[0]].trials).toBe(0);
    expect(r.report.sameUpdates && r.report.sameImages).toBe(true);

    // Fixed subsets cost exactly their levels' share; random was drawn at the rl branch's cost.
    expect(byMethod[`${L[0]}+${L[1]}`].meanCost).toBeCloseTo(m.costs[0] + m.costs[1], 9);
    expect(byMethod[L[1]].meanCost).toBeCloseTo(m.costs[1], 9);
    const randomConfig = loadConfig(path.join(byMethod.random.runDir, 'config.resolved.yaml'));
    expect(randomConfig.distill.selection).toBe('random');
    expect(randomConfig.distill.random_cost).toBeCloseTo(byMethod.rl.meanCost, 12);

    // Tables.
    for (const f of ['ablation.json', 'table.md', 'table.csv', 'pareto.json']) {
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    }
    const md = fs.readFileSync(path.join(out, 'table.md'), 'utf8');
    for (const b of branches) expect(md).toContain(`| ${b.method} |`);
    expect(md).toMatch(/Winner at <= the RL policy's cost: /);
    expect(fs.readFileSync(path.join(out, 'table.csv'), 'utf8').trim().split('\n')).toHaveLength(6);
    const pareto = readParetoInput(out);
    expect(pareto.points.filter((p) => p.fixed)).toHaveLength(3);
    expect(pareto.options.higherIsBetter).toBe(false);
    const row = r.report.rows.find((x) => x.method === L[1])!;
    expect(row.metric.mean).toBe(byMethod[L[1]].metric.value);
    expect(row.metric.std).toBeNull();

    // A branch run again from scratch reproduces its metric exactly; finished jobs are not rerun.
    const again = `s${s}-${L[0]}`;
    fs.rmSync(store.resultFile(again));
    fs.rmSync(store.runDir(again), { recursive: true });
    const lines2: string[] = [];
    const r2 = await ablate(lines2);
    expect(lines2).toEqual([expect.stringContaining(`${again} done`)]);
    expect(r2.report.rows.map((x) => x.metric.mean)).toEqual(r.report.rows.map((x) => x.metric.mean));
  });
});
