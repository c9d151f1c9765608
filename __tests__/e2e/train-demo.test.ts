/**
 * The acceptance run: `rlpkd train` with no arguments (configs/demo.yaml: the trained demo detection
 * teacher and its head, the untrained student, the `scales` scenes, all four phases, the closing evaluation)
 * in a fresh folder, then its summary and eval.json checked: the held-out all-level distillation loss ends
 * below half its starting value, the distilled student recovers at least half of the AP gap between the
 * untrained student and the teacher through the teacher's head, and the deterministic policy's mean used cost
 * is below 1. The wall time is printed (the demo is sized for a few minutes on 2 cores), not asserted.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainSummary } from '../../src/distill/evaluation';
import { tempDir } from '../distill/run-fixtures';

jest.setTimeout(20 * 60 * 1000);

const ROOT = path.resolve(__dirname, '../..');

it('npx rlpkd train (the embedded demo) meets the acceptance figures', () => {
  const cwd = tempDir('demo');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'rlpkd.js'), 'train'], {
    cwd,
    encoding: 'utf8',
  });
  const seconds = (Date.now() - t0) / 1000;
  expect(r.stderr).not.toMatch(/^error/m);
  expect(r.status).toBe(0);
  for (const p of [
    'phase 1 (pretrain) done',
    'phase 2 (policy) done',
    'phase 3 (joint) done',
    'phase 4 (meta) done',
  ]) {
    expect(r.stderr).toContain(p);
  }
  const [run] = fs.readdirSync(path.join(cwd, 'runs'));
  const s = JSON.parse(fs.readFileSync(path.join(cwd, 'runs', run, 'summary.json'), 'utf8')) as TrainSummary;
  console.log(`demo: ${seconds.toFixed(0)} s wall\n${r.stdout}`);
  expect(s.lossAfter).toBeLessThan(s.lossBefore / 2);
  expect(s.selection.source).toBe('policy');
  expect(s.selection.meanUsedCost).toBeLessThan(1);
  const evaluation = JSON.parse(fs.readFileSync(path.join(cwd, 'runs', run, 'eval.json'), 'utf8')) as {
    task: { kind: string; metric: string; teacher: number; studentBefore: number; studentAfter: number };
  };
  const t = evaluation.task;
  expect([t.kind, t.metric]).toEqual(['detection', 'AP']);
  console.log(
    `AP through the teacher's head: teacher ${t.teacher}, student ${t.studentBefore} -> ${t.studentAfter}`,
  );
  expect(t.studentAfter - t.studentBefore).toBeGreaterThanOrEqual(0.5 * (t.teacher - t.studentBefore));
});
