/** `rlpkd visualize` on a hand-made run directory and ablation directory: files, sizes, skips, errors. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { runCli } from '../helpers/run-cli';

/** A finished two-level run: config, metrics, a summary with selections, a final checkpoint with GradNorm. */
function writeRun(root: string, options: { gradnorm: boolean; summary: boolean }): string {
  const run = path.join(root, `run-${options.gradnorm ? 'gn' : 'plain'}`);
  fs.mkdirSync(path.join(run, 'checkpoints', 'final'), { recursive: true });
  fs.writeFileSync(path.join(run, 'config.resolved.yaml'), 'run:\n  name: tiny\n');
  const records = [
    { step: 0, phase: 1, 'heldout/start/loss': 10 },
    { step: 0, phase: 1, 'distill/loss': 4, 'distill/level_loss/P4': 3, 'distill/level_loss/P5': 1 },
    { step: 2, phase: 1, 'distill/loss': 3, 'heldout/pretrain/loss': 8 },
    { step: 3, phase: 2, 'rl/reward': 0.4, 'rl/used_cost': 0.5, 'ppo/entropy': 0.69 },
    { step: 4, phase: 2, 'rl/reward': 0.5, 'rl/used_cost': 0.4, 'ppo/entropy': 0.6 },
  ];
  fs.writeFileSync(path.join(run, 'metrics.jsonl'), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  if (options.summary) {
    const summary = {
      levelNames: ['P4', 'P5'],
      levelCosts: [0.8, 0.2],
      selection: { selections: [['P5'], ['P4', 'P5'], ['P4']], source: 'policy' },
    };
    fs.writeFileSync(path.join(run, 'summary.json'), JSON.stringify(summary));
  }
  fs.writeFileSync(path.join(run, 'checkpoints', 'latest'), 'final\n');
  if (options.gradnorm) {
    const history = [
      { step: 0, weights: [0.5, 0.5] },
      { step: 1, weights: [0.6, 0.4] },
      { step: 2, weights: [0.65, 0.35] },
    ];
    fs.writeFileSync(
      path.join(run, 'checkpoints', 'final', 'gradnorm.json'),
      JSON.stringify({ version: 1, levels: ['P4', 'P5'], history }),
    );
  }
  return run;
}

describe('rlpkd visualize', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-visualize-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('--run writes SVG and PNG of every plot into <run>/plots', async () => {
    const run = writeRun(dir, { gradnorm: true, summary: true });
    const r = await runCli('visualize', '--run', run, '--scale', '1');
    expect(r.stderr).not.toMatch(/^error/m);
    expect(r.code).toBe(0);
    const names = ['policy-heatmap', 'gradnorm-weights', 'loss-curves', 'reward-curves'];
    for (const n of names) {
      const svg = fs.readFileSync(path.join(run, 'plots', `${n}.svg`), 'utf8');
      const meta = await sharp(path.join(run, 'plots', `${n}.png`)).metadata();
      const w = Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(svg)![1]);
      expect([n, meta.width]).toEqual([n, Math.round(w)]);
      expect(r.stdout).toContain(`${n}.png (${meta.width}×${meta.height})`);
    }
    // Without boxes in the data the heatmap orders the images by the cost chosen (0.2, 0.8, 1.0).
    expect(fs.readFileSync(path.join(run, 'plots', 'policy-heatmap.svg'), 'utf8')).toContain(
      'held-out images, sorted by cost of the levels chosen',
    );
  });

  it('skips what the run lacks, writes into --out, and takes --sort', async () => {
    const run = writeRun(dir, { gradnorm: false, summary: false });
    const out = path.join(dir, 'elsewhere');
    const r = await runCli('visualize', '--run', run, '--out', out, '--scale', '1', '--sort', 'levels');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('skipped policy-heatmap: no summary.json');
    expect(r.stdout).toContain('skipped gradnorm-weights: the run used no GradNorm');
    expect(fs.readdirSync(out).sort()).toEqual([
      'loss-curves.png',
      'loss-curves.svg',
      'reward-curves.png',
      'reward-curves.svg',
    ]);
  });

  it('--ablation draws the Pareto plot from pareto.json', async () => {
    const abl = path.join(dir, 'ablation');
    fs.mkdirSync(abl);
    const points = [
      { method: 'P5', cost: 0.2, metric: 20, fixed: true },
      { method: 'P4+P5', cost: 1, metric: 24, fixed: true },
      { method: 'RL', cost: 0.5, metric: 23.5, std: 0.4 },
    ];
    fs.writeFileSync(path.join(abl, 'pareto.json'), JSON.stringify({ metric: 'AP', points }));
    const r = await runCli('visualize', '--ablation', abl, '--scale', '1');
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(abl, 'plots', 'pareto.svg'), 'utf8')).toContain('AP (higher is better)');
    expect(fs.existsSync(path.join(abl, 'plots', 'pareto.png'))).toBe(true);
  });

  it('needs exactly one of --run and --ablation (usage error), and names a missing run', async () => {
    const none = await runCli('visualize');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/exactly one of --run and --ablation/);
    const missing = await runCli('visualize', '--run', path.join(dir, 'nope'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/run directory '.*nope' does not exist\n {2}hint:/);
  });
});
