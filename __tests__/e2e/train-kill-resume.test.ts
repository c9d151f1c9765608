/**
 * A run killed outright (SIGKILL: no checkpoint on the way out) and resumed with `rlpkd train --resume`
 * writes the same metrics.jsonl as the run without the kill, timing aside: the records the killed process
 * logged after its last checkpoint, including those of the checkpoint's own step, are dropped and written
 * again once (the ablation's stability figure reads them).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMetrics } from '../../src/logging/metrics';
import { tempDir } from '../distill/run-fixtures';
import { tinyAblationConfig } from './ablate-fixtures';

jest.setTimeout(300000);

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'rlpkd.js');

/** The run's records without wall-clock fields. */
function records(out: string): Record<string, unknown>[] {
  const [run] = fs.readdirSync(out);
  return readMetrics(path.join(out, run, 'metrics.jsonl')).map((r) =>
    Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'time' && !k.startsWith('time/'))),
  );
}

/** `rlpkd train`, killed with SIGKILL as soon as its log prints a line matching `at` (never, for null). */
async function train(cfg: string, out: string, at: RegExp | null): Promise<boolean> {
  const child = spawn(process.execPath, [CLI, 'train', '--config', cfg, '--set', `run.output_dir=${out}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  let killed = false;
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
    if (at && !killed && at.test(log)) killed = child.kill('SIGKILL');
  });
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  if (!killed && code !== 0) throw new Error(`rlpkd train failed:\n${log}`);
  return killed;
}

describe('rlpkd train --resume after a kill', () => {
  it('gives the metrics of the uninterrupted run, whichever phase was killed', async () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')))
      throw new Error('run `npm run build` before the e2e tests');
    const dir = tempDir('kill-resume');
    const config = tinyAblationConfig(dir, 2);
    config.logging.every_steps = 1;
    const cfg = path.join(dir, 'config.yaml');
    fs.writeFileSync(cfg, JSON.stringify(config)); // JSON is YAML
    await train(cfg, path.join(dir, 'full'), null);
    const full = records(path.join(dir, 'full'));
    expect(full.filter((r) => r.phase === 3).length).toBeGreaterThan(2);
    // In phase 2 after its first epoch, and in phase 3 after its first checkpoint.
    for (const [i, at] of [/phase 2 policy +epoch 1\/2/, /GradNorm measures/].entries()) {
      const out = path.join(dir, `killed-${i}`);
      expect(await train(cfg, out, at)).toBe(true);
      const [run] = fs.readdirSync(out);
      const r = spawnSync(process.execPath, [CLI, 'train', '--resume', path.join(out, run)], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`resume failed:\n${r.stderr}`);
      expect(records(out)).toEqual(full);
    }
  });
});
