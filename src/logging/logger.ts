/**
 * Console logging with levels, plus progress reporting: cli-progress bars with ETA on a terminal, plain
 * periodic lines (with ETA) when the output is a file or a pipe, so CI logs stay readable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cliProgress from 'cli-progress';

/** Log levels in increasing severity. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** What library code needs to report things (data loaders, caches, trainers take this, not a Logger). */
export interface LogSink {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A sink that drops everything (library defaults, tests). */
export const silentLog: LogSink = { debug() {}, info() {}, warn() {}, error() {} };

/** A running progress report. */
export interface Progress {
  /** Sets the position; `values` (loss=..., reward=...) are shown after the bar. */
  update(value: number, values?: Readonly<Record<string, number | string>>): void;
  /** Advances the position by `n`. */
  increment(n?: number, values?: Readonly<Record<string, number | string>>): void;
  /** Ends the report (a final line in line mode). */
  stop(): void;
}

/** Options of a Logger. */
export interface LoggerOptions {
  level?: LogLevel;
  /** Where messages and bars go (default process.stderr). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** auto: bars on a TTY, lines otherwise. */
  progress?: 'auto' | 'bars' | 'lines';
  /** Line mode: print a progress line at most every this many seconds (default 10), and at the end. */
  lineIntervalSeconds?: number;
  /** Also append every message (without bars) to this file, e.g. <run>/train.log. */
  file?: string;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

function formatValues(values: Readonly<Record<string, number | string>> | undefined): string {
  if (!values) return '';
  return Object.entries(values)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`)
    .join(' ');
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4);
}

/** The console logger of a run. */
export class Logger implements LogSink {
  private readonly level: number;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly useBars: boolean;
  private readonly lineInterval: number;
  private readonly now: () => number;
  private readonly fileFd: number | undefined;
  private multibar: cliProgress.MultiBar | undefined;
  private activeBars = 0;

  constructor(options: LoggerOptions = {}) {
    this.level = RANK[options.level ?? 'info'];
    this.stream = options.stream ?? process.stderr;
    const mode = options.progress ?? 'auto';
    this.useBars = mode === 'bars' || (mode === 'auto' && this.stream.isTTY === true);
    this.lineInterval = options.lineIntervalSeconds ?? 10;
    this.now = options.now ?? Date.now;
    if (options.file) {
      fs.mkdirSync(path.dirname(options.file), { recursive: true });
      this.fileFd = fs.openSync(options.file, 'a');
    }
  }

  debug(message: string): void {
    this.emit('debug', message);
  }
  info(message: string): void {
    this.emit('info', message);
  }
  warn(message: string): void {
    this.emit('warn', message);
  }
  error(message: string): void {
    this.emit('error', message);
  }

  /**
   * Starts a progress report over `total` units from `start` (a resumed epoch starts where it stopped). A
   * report during which nothing advanced ends without a line: an epoch a resume finds already complete
   * prints nothing.
   */
  progress(title: string, total: number, start = 0): Progress {
    return this.useBars ? this.barProgress(title, total, start) : this.lineProgress(title, total, start);
  }

  /** Writes a message to the log file only: one the console already showed (early warnings, the final error). */
  record(level: LogLevel, message: string): void {
    if (RANK[level] < this.level || this.fileFd === undefined) return;
    const prefix = level === 'info' ? '' : `${level}: `;
    fs.writeSync(this.fileFd, `${new Date(this.now()).toISOString()} ${prefix}${message}\n`);
  }

  /** Stops any bars and closes the log file. */
  close(): void {
    this.multibar?.update();
    this.multibar?.stop();
    this.multibar = undefined;
    if (this.fileFd !== undefined) fs.closeSync(this.fileFd);
  }

  private emit(level: LogLevel, message: string): void {
    if (RANK[level] < this.level) return;
    const prefix = level === 'info' ? '' : `${level}: `;
    const text = `${prefix}${message}\n`;
    if (this.multibar && this.activeBars > 0) this.multibar.log(text);
    else this.stream.write(text);
    this.record(level, message);
  }

  private barProgress(title: string, total: number, start: number): Progress {
    if (!this.multibar) {
      this.multibar = new cliProgress.MultiBar(
        {
          stream: this.stream,
          format: '{title} |{bar}| {percentage}% {value}/{total} eta {eta_formatted} {values}',
          hideCursor: false, // a crash must not leave the user's cursor hidden
          clearOnComplete: false,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
    }
    const multibar = this.multibar;
    const bar = multibar.create(total, start, { title, values: '' });
    this.activeBars++;
    let stopped = false;
    const began = this.now();
    let value = start;
    let lastValues: Readonly<Record<string, number | string>> | undefined;
    const seen = (v: number, values?: Readonly<Record<string, number | string>>) => {
      value = v;
      if (values) lastValues = values;
    };
    return {
      update: (v, values) => {
        seen(v, values);
        bar.update(v, { values: formatValues(values) });
      },
      increment: (n = 1, values) => {
        seen(value + n, values);
        bar.increment(n, { values: formatValues(values) });
      },
      stop: () => {
        if (stopped) return;
        stopped = true;
        // The bar itself is not in train.log; its final state is.
        if (value !== start) {
          const extra = formatValues(lastValues);
          const took = formatDuration((this.now() - began) / 1000);
          this.record('info', `${title} ${value}/${total} took ${took}${extra ? ` ${extra}` : ''}`);
        }
        bar.stop();
        this.activeBars--;
        if (this.activeBars === 0) {
          multibar.update(); // flushes messages logged since the last redraw (stop() would drop them)
          multibar.stop();
          this.multibar = undefined;
        }
      },
    };
  }

  private lineProgress(title: string, total: number, startValue: number): Progress {
    const start = this.now();
    let last = start;
    let value = startValue;
    let lastValues: Readonly<Record<string, number | string>> | undefined;
    let stopped = false;
    const line = (final: boolean) => {
      const elapsed = (this.now() - start) / 1000;
      const pct = total > 0 ? Math.floor((100 * value) / total) : 100;
      const done = value - startValue;
      const eta = done > 0 ? (elapsed * (total - value)) / done : NaN;
      const time = final ? `took ${formatDuration(elapsed)}` : `eta ${formatDuration(eta)}`;
      const extra = formatValues(lastValues);
      this.emit('info', `${title} ${value}/${total} (${pct}%) ${time}${extra ? ` ${extra}` : ''}`);
    };
    const set = (v: number, values?: Readonly<Record<string, number | string>>) => {
      value = v;
      if (values) lastValues = values;
      const t = this.now();
      if (value < total && (t - last) / 1000 >= this.lineInterval) {
        last = t;
        line(false);
      }
    };
    return {
      update: (v, values) => set(v, values),
      increment: (n = 1, values) => set(value + n, values),
      stop: () => {
        if (stopped) return;
        stopped = true;
        if (value !== startValue) line(true);
      },
    };
  }
}
