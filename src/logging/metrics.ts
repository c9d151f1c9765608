/**
 * `metrics.jsonl`: one JSON object per logged step, appended as it happens, so a crashed run keeps its
 * history and any tool (jq, pandas) can read it. Resuming keeps the records the checkpoint had seen (a
 * checkpoint stores their count: records of the checkpoint's own step can come before or after it) and
 * drops the rest, which the resumed run writes again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlpkdError } from '../errors';
import { writeFileAtomic } from '../onnx/model-io';

/** One metrics record: a global step plus named values. */
export interface MetricsRecord {
  step: number;
  [key: string]: unknown;
}

/** Options of MetricsWriter. */
export interface MetricsWriterOptions {
  /** Resume: keep only the first this many existing records, drop the rest (atomically), then append. */
  keepRecords?: number;
  /**
   * Resume from a checkpoint that stored no record count (older runs): keep the records with step <= this.
   * Ignored when `keepRecords` is given.
   */
  keepUpToStep?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** Appends metrics records to a JSON-lines file. */
export class MetricsWriter {
  private fd: number | undefined;
  private readonly now: () => number;
  private count = 0;

  constructor(
    readonly file: string,
    options: MetricsWriterOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const { keepRecords, keepUpToStep } = options;
    if ((keepRecords !== undefined || keepUpToStep !== undefined) && fs.existsSync(file)) {
      const all = readMetrics(file);
      const kept =
        keepRecords !== undefined ? all.slice(0, keepRecords) : all.filter((r) => r.step <= keepUpToStep!);
      writeFileAtomic(file, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
      this.count = kept.length;
    } else if (fs.existsSync(file)) {
      this.count = readMetrics(file).length;
    }
    this.fd = fs.openSync(file, 'a');
  }

  /** Appends one record; a `time` field (ISO 8601) is added. Non-finite numbers become null (JSON has none). */
  write(record: MetricsRecord): void {
    if (this.fd === undefined) throw new RlpkdError(`metrics file '${this.file}' is already closed`);
    fs.writeSync(this.fd, `${JSON.stringify({ time: new Date(this.now()).toISOString(), ...record })}\n`);
    this.count++;
  }

  /** Records the file holds (kept on opening plus written since): what a checkpoint stores. */
  get records(): number {
    return this.count;
  }

  /** Closes the file. */
  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Reads a metrics file; a cut-off last line (a crash mid-write) is ignored, any other bad line is an error. */
export function readMetrics(file: string): MetricsRecord[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: MetricsRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      const rec = JSON.parse(line) as MetricsRecord;
      if (typeof rec.step !== 'number') throw new Error('no numeric "step"');
      out.push(rec);
    } catch (err) {
      const isLast = lines.slice(i + 1).every((l) => l.trim() === '');
      if (!isLast) {
        throw new RlpkdError(`'${file}' line ${i + 1} is not a metrics record: ${(err as Error).message}`);
      }
    }
  });
  return out;
}
