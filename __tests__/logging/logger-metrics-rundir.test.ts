import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { InputFileError } from '../../src/errors';
import {
  Logger,
  MetricsWriter,
  RUN_FILES,
  createRunDir,
  formatDuration,
  openRunDir,
  RUN_DIR_FORMAT_VERSION,
  readMetrics,
  timestamp,
} from '../../src/logging';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-log-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function capture(isTTY: boolean): { stream: PassThrough & { isTTY?: boolean }; text: () => string } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean };
  stream.isTTY = isTTY;
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

describe('Logger', () => {
  it('filters by level and prefixes warnings and errors', () => {
    const out = capture(false);
    const log = new Logger({ level: 'info', stream: out.stream });
    log.debug('hidden');
    log.info('shown');
    log.warn('careful');
    log.error('broken');
    log.close();
    expect(out.text()).toBe('shown\nwarn: careful\nerror: broken\n');
  });

  it('prints periodic plain lines with an ETA when not a TTY', () => {
    const out = capture(false);
    let ms = 0;
    const log = new Logger({ stream: out.stream, now: () => ms, lineIntervalSeconds: 10 });
    const p = log.progress('phase 1 epoch 1/3', 100);
    ms = 5000;
    p.update(10, { loss: 0.5 }); // before the interval: no line
    ms = 10_000;
    p.update(25, { loss: 0.25 }); // 25% after 10 s -> 30 s left
    ms = 12_000;
    p.increment(5);
    ms = 40_000;
    p.update(100, { loss: 0.125 });
    p.stop();
    p.stop();
    expect(out.text().split('\n').filter(Boolean)).toEqual([
      'phase 1 epoch 1/3 25/100 (25%) eta 30s loss=0.2500',
      'phase 1 epoch 1/3 100/100 (100%) took 40s loss=0.1250',
    ]);
  });

  it('draws cli-progress bars on a TTY and logs above them', () => {
    const out = capture(true);
    const log = new Logger({ stream: out.stream });
    const p = log.progress('epochs', 4);
    p.update(2, { reward: 1.5 });
    log.info('message while the bar runs');
    p.stop();
    log.close();
    const text = out.text();
    expect(text).toContain('message while the bar runs');
    expect(text).toMatch(/epochs \|.*\| 50% 2\/4 eta .* reward=1\.500/);
  });

  it('mirrors messages into a log file', () => {
    const out = capture(false);
    const file = path.join(tmp, 'train.log');
    const log = new Logger({ stream: out.stream, file, now: () => Date.UTC(2026, 0, 2, 3, 4, 5) });
    log.warn('skipping x');
    log.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('2026-01-02T03:04:05.000Z warn: skipping x\n');
  });

  it('a report resumed at `start` measures its ETA from there; one that never advanced prints nothing', () => {
    const out = capture(false);
    let ms = 0;
    const log = new Logger({ stream: out.stream, now: () => ms, lineIntervalSeconds: 10 });
    const done = log.progress('phase 2 policy epoch 8/12', 3, 3); // a resume finds the epoch complete
    done.stop();
    const p = log.progress('phase 1 epoch 2/3', 100, 50);
    ms = 10_000;
    p.update(75); // 25 units in 10 s from the resume point -> 10 s left (not 3.3 s)
    ms = 20_000;
    p.update(100);
    p.stop();
    expect(out.text().split('\n').filter(Boolean)).toEqual([
      'phase 1 epoch 2/3 75/100 (75%) eta 10s',
      'phase 1 epoch 2/3 100/100 (100%) took 20s',
    ]);
  });

  it('record() writes to the log file only; a finished bar leaves its final state in the file', () => {
    const out = capture(true);
    const file = path.join(tmp, 'train.log');
    let ms = Date.UTC(2026, 0, 2, 3, 4, 5);
    const log = new Logger({ stream: out.stream, file, now: () => ms });
    log.record('warn', 'shown on the console before the log existed');
    log.record('debug', 'below the level');
    const bar = log.progress('epochs', 4);
    ms += 2000;
    bar.update(4, { loss: 0.5 });
    bar.stop();
    const idle = log.progress('resumed', 4, 4);
    idle.stop();
    log.close();
    expect(out.text()).not.toContain('shown on the console');
    expect(fs.readFileSync(file, 'utf8')).toBe(
      '2026-01-02T03:04:05.000Z warn: shown on the console before the log existed\n' +
        '2026-01-02T03:04:07.000Z epochs 4/4 took 2s loss=0.5000\n',
    );
  });

  it('formats durations', () => {
    expect(formatDuration(12.4)).toBe('12s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(3720)).toBe('1h02m');
    expect(formatDuration(NaN)).toBe('?');
  });
});

describe('MetricsWriter', () => {
  it("appends JSON lines, keeps a resume point's records (by step, or by count), tolerates a cut-off last line", () => {
    const file = path.join(tmp, 'metrics.jsonl');
    const w = new MetricsWriter(file, { now: () => 0 });
    for (let step = 1; step <= 5; step++) w.write({ step, phase: 1, loss: 1 / step });
    w.write({ step: 6, loss: NaN });
    w.close();
    expect(() => w.write({ step: 7 })).toThrow(/already closed/);
    const recs = readMetrics(file);
    expect(recs.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(recs[1]).toEqual({ time: '1970-01-01T00:00:00.000Z', step: 2, phase: 1, loss: 0.5 });
    expect(recs[5]!.loss).toBeNull();

    fs.appendFileSync(file, '{"step": 7, "lo');
    expect(readMetrics(file)).toHaveLength(6);
    const resumed = new MetricsWriter(file, { keepUpToStep: 3, now: () => 0 });
    resumed.write({ step: 4, loss: 0.3 });
    resumed.close();
    expect(readMetrics(file).map((r) => [r.step, r.loss])).toEqual([
      [1, 1],
      [2, 0.5],
      [3, 1 / 3],
      [4, 0.3],
    ]);
    // A checkpoint's record count: records of its own step written after it are dropped too.
    const w2 = new MetricsWriter(file, { now: () => 0 });
    expect(w2.records).toBe(4);
    w2.write({ step: 4, phase: 2, reward: 1 });
    const atCheckpoint = w2.records;
    w2.write({ step: 4, phase: 3, loss: 0.2 });
    w2.write({ step: 5, phase: 3, loss: 0.1 });
    w2.close();
    const again = new MetricsWriter(file, { keepRecords: atCheckpoint, keepUpToStep: 99, now: () => 0 });
    expect(again.records).toBe(5);
    again.close();
    expect(readMetrics(file).map((r) => [r.step, r.phase ?? null])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, null],
      [4, 2],
    ]);
    fs.writeFileSync(file, '{"step":1}\nnot json\n{"step":2}\n');
    expect(() => readMetrics(file)).toThrow(/line 2 is not a metrics record/);
  });
});

describe('run directories', () => {
  it('creates <name>-<timestamp>, never reuses a folder, and writes files atomically', () => {
    const date = new Date(2026, 6, 4, 9, 8, 7);
    expect(timestamp(date)).toBe('20260704-090807');
    const a = createRunDir(path.join(tmp, 'runs'), 'demo', date);
    const b = createRunDir(path.join(tmp, 'runs'), 'demo', date);
    expect(path.basename(a.root)).toBe('demo-20260704-090807');
    expect(path.basename(b.root)).toBe('demo-20260704-090807-2');
    const f = a.writeJson('checkpoints/step-1/state.json', { step: 1 });
    expect(JSON.parse(fs.readFileSync(f, 'utf8'))).toEqual({ step: 1 });
    expect(fs.readdirSync(path.dirname(f))).toEqual(['state.json']);
    expect(a.configFile).toBe(path.join(a.root, RUN_FILES.config));
    expect(() => createRunDir(tmp, 'bad name')).toThrow(/may only use letters/);
  });

  it('opens only folders that hold a resolved config', () => {
    const run = createRunDir(tmp, 'r', new Date(2026, 0, 1));
    expect(() => openRunDir(run.root)).toThrow(InputFileError);
    expect(() => openRunDir(run.root)).toThrow(/is not a run directory \(no config\.resolved\.yaml\)/);
    run.writeFile(RUN_FILES.config, 'run: {}\n');
    expect(openRunDir(run.root).root).toBe(run.root);
    expect(() => openRunDir(path.join(tmp, 'nope'))).toThrow(/does not exist/);
  });

  it('carry a format version: a folder from before it opens, a newer format is refused clearly', () => {
    const run = createRunDir(tmp, 'v', new Date(2026, 0, 2));
    run.writeFile(RUN_FILES.config, 'run: {}\n');
    const formatFile = run.file(RUN_FILES.format);
    expect(JSON.parse(fs.readFileSync(formatFile, 'utf8'))).toEqual({
      format: 'rl-pyramidkd run',
      version: RUN_DIR_FORMAT_VERSION,
    });
    fs.rmSync(formatFile); // as the code before the version file wrote it
    expect(openRunDir(run.root).root).toBe(run.root);
    fs.writeFileSync(formatFile, JSON.stringify({ format: 'rl-pyramidkd run', version: 7 }));
    expect(() => openRunDir(run.root)).toThrow(
      `has format 7; this rl-pyramidkd reads format ${RUN_DIR_FORMAT_VERSION}`,
    );
  });
});
