/**
 * `metrics.jsonl`: one JSON object per logged step, appended as it happens, so a crashed run keeps its
 * history and any tool (jq, pandas) can read it. Resuming cuts records past the checkpoint's step.
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
  /** Resume: keep only the existing records with step <= this, drop the rest (atomically), then append. */
  keepUpToStep?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** Appends metrics records to a JSON-lines file. */
export class MetricsWriter {
  private fd: number | undefined;
  private readonly now: () => number;

  constructor(
    readonly file: string,
    options: MetricsWriterOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (options.keepUpToStep !== undefined && fs.existsSync(file)) {
      const kept = readMetrics(file).filter((r) => r.step <= options.keepUpToStep!);
      writeFileAtomic(file, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    }
    this.fd = fs.openSync(file, 'a');
  }

  /** Appends one record; a `time` field (ISO 8601) is added. Non-finite numbers become null (JSON has none). */
  write(record: MetricsRecord): void {
    if (this.fd === undefined) throw new RlpkdError(`metrics file '${this.file}' is already closed`);
    fs.writeSync(this.fd, `${JSON.stringify({ time: new Date(this.now()).toISOString(), ...record })}\n`);
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
