/**
 * `rlpkd ablate --queue` on a real Redis (Debian's redis-server on a random loopback port) with two
 * `rlpkd worker` processes: one is killed with SIGKILL in the middle of a job; the ablation still
 * completes, every job is done exactly once (its result written once, "done" logged by one worker), and
 * the table (and, with --tables, the paper's tables) equal those the same ablation gives locally (timing
 * columns excepted).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { runAblation } from '../../src/sweep/run-ablation';
import { AblationStore } from '../../src/sweep/ablation-store';
import { tempDir } from '../distill/run-fixtures';
import { tinyAblationConfig } from './ablate-fixtures';

jest.setTimeout(600000);

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'rlpkd.js');
const REDIS = '/usr/bin/redis-server';
const quiet = new Writable({ write: (_c, _e, done) => done() });

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitFor(check: () => boolean, what: string, ms = 60000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A child process with its stderr collected. */
function start(args: string[], cwd: string): { child: ChildProcess; out: string[] } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const out: string[] = [];
  child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
  return { child, out };
}

const haveRedis = fs.existsSync(REDIS);
if (!haveRedis) console.log(`skipped: ${REDIS} is not installed (Debian package redis-server)`);
const maybe = haveRedis ? describe : describe.skip;

maybe('rlpkd ablate --queue with two rlpkd workers', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  it('survives a worker killed mid-job, counts every job once and gives the local table', async () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')))
      throw new Error('run `npm run build` before the e2e tests');
    const dir = tempDir('ablate-queue');
    const config = tinyAblationConfig(dir, 2);
    const port = await freePort();
    const redis = spawn(
      REDIS,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    children.push(redis);
    const url = `redis://127.0.0.1:${port}`;
    const workerArgs = ['worker', '--queue', url, '--lock-seconds', '4', '--stalled-seconds', '2'];
    const a = start(workerArgs, dir);
    const b = start(workerArgs, dir);
    children.push(a.child, b.child);
    await waitFor(() => [a, b].every((w) => w.out.join('').includes('worker ready')), 'the workers');

    // Kill whichever worker starts the rl branch (the longest job), a moment into it.
    let killed: { who: string; job: string } | null = null;
    const watcher = (async () => {
      await waitFor(
        () => [a, b].some((w) => /job s\d+-rl started/.test(w.out.join(''))),
        'the rl job',
        300000,
      );
      await new Promise((r) => setTimeout(r, 1500));
      const w = /job s\d+-rl started/.test(a.out.join('')) ? a : b;
      w.child.kill('SIGKILL');
      killed = { who: w === a ? 'a' : 'b', job: /job (s\d+-rl) started/.exec(w.out.join(''))![1] };
    })();
    const out = path.join(dir, 'queued');
    const progress: string[] = [];
    const queued = await runAblation({
      config,
      quick: true,
      tables: true,
      out,
      queue: url,
      queueOptions: { pollMs: 200 },
      onProgress: (l) => progress.push(l),
    });
    await watcher;
    expect(killed).not.toBeNull();
    const store = new AblationStore(out);
    const ids = store.readManifest().jobs.map((j) => j.id);
    expect(fs.readdirSync(path.join(out, 'results')).sort()).toEqual(ids.map((id) => `${id}.json`).sort());
    // A worker logs "done" just after it writes the result the ablation waits for: let the lines arrive.
    const allLogs = () => a.out.join('') + b.out.join('');
    await waitFor(() => ids.every((id) => allLogs().includes(`job ${id} done`)), 'every "done" line', 10000);
    await new Promise((r) => setTimeout(r, 500));
    const logs = allLogs();
    for (const id of ids) expect(logs.split(`job ${id} done`).length - 1).toBe(1);
    // The killed job was started again by the survivor.
    const survivor = (killed!.who === 'a' ? b : a).out.join('');
    expect(survivor).toContain(`job ${killed!.job} started`);
    expect(progress.some((l) => /running .*\((training|evaluating|starting)\)/.test(l))).toBe(true);

    const local = await runAblation({
      config,
      quick: true,
      tables: true,
      out: path.join(dir, 'local'),
      jobOptions: { logStream: quiet },
    });
    const cells = (r: typeof local) =>
      r.report.rows.map((x) => [x.method, x.meanCost, x.metric.mean, x.updates, x.trials]);
    expect(cells(queued)).toEqual(cells(local));
    expect(queued.report.winner).toEqual(local.report.winner);
    // --tables: the NAS searches and variants ran on the queue too, and give the same tables (timing aside).
    const timing = new Set(['speedup', 'search']);
    const tableCells = (r: typeof local) =>
      r.tables!.report.tables.map((t) =>
        t.rows.map((row) =>
          Object.entries(row.cells)
            .filter(([k]) => !timing.has(k))
            .map(([k, v]) => [k, typeof v === 'string' ? v : v.mean]),
        ),
      );
    expect(tableCells(queued)).toEqual(tableCells(local));
  });
});
