/**
 * Run directories: `<output_dir>/<name>-<YYYYMMDD-HHMMSS>/` holding the resolved config, metrics.jsonl,
 * TensorBoard event files, train.log, checkpoints/ and `run-format.json` (the layout's version,
 * RUN_DIR_FORMAT_VERSION). Every file written through it is atomic. A folder without the version file was
 * written before it existed; its layout is version 1's, so it opens as that.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputFileError, RlpkdError } from '../errors';
import { RESOLVED_CONFIG_NAME } from '../config/load-config';
import { writeFileAtomic } from '../onnx/model-io';

/** Well-known names inside a run directory. */
export const RUN_FILES = {
  config: RESOLVED_CONFIG_NAME,
  metrics: 'metrics.jsonl',
  log: 'train.log',
  checkpoints: 'checkpoints',
  format: 'run-format.json',
} as const;

/** Version of the run directory's layout this code writes (checkpoints carry their own version). */
export const RUN_DIR_FORMAT_VERSION = 1;

/** Local-time stamp `YYYYMMDD-HHMMSS` used in run directory names. */
export function timestamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`
  );
}

/** A run directory and its standard paths. */
export class RunDir {
  constructor(readonly root: string) {}

  /** Absolute path of a file or folder inside the run. */
  file(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  get configFile(): string {
    return this.file(RUN_FILES.config);
  }
  get metricsFile(): string {
    return this.file(RUN_FILES.metrics);
  }
  get logFile(): string {
    return this.file(RUN_FILES.log);
  }
  get checkpointsDir(): string {
    return this.file(RUN_FILES.checkpoints);
  }

  /** Writes a file inside the run atomically (temp file + rename); returns its path. */
  writeFile(relative: string, data: string | readonly Uint8Array[]): string {
    const target = this.file(relative);
    writeFileAtomic(target, data);
    return target;
  }

  /** Writes pretty JSON atomically; returns its path. */
  writeJson(relative: string, value: unknown): string {
    return this.writeFile(relative, `${JSON.stringify(value, null, 2)}\n`);
  }
}

/** Creates a fresh run directory; a name already taken within the same second gets `-2`, `-3`, ... */
export function createRunDir(outputDir: string, name: string, date: Date = new Date()): RunDir {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new RlpkdError(`run name '${name}' may only use letters, digits, '.', '_' and '-'`);
  }
  try {
    fs.mkdirSync(outputDir, { recursive: true });
  } catch (err) {
    throw new RlpkdError(`cannot create the runs folder '${outputDir}': ${(err as Error).message}`, {
      hint: 'set run.output_dir to a writable folder',
      cause: err,
    });
  }
  const base = `${name}-${timestamp(date)}`;
  for (let i = 1; ; i++) {
    const dir = path.join(outputDir, i === 1 ? base : `${base}-${i}`);
    try {
      fs.mkdirSync(dir); // not recursive: fails if taken, so two runs never share a folder
      const run = new RunDir(path.resolve(dir));
      run.writeJson(RUN_FILES.format, { format: 'rl-pyramidkd run', version: RUN_DIR_FORMAT_VERSION });
      return run;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new RlpkdError(`cannot create run directory '${dir}': ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }
}

/** Creates a run directory at exactly `dir` (its parent is created; `dir` itself must not exist yet). */
export function createRunDirAt(dir: string): RunDir {
  const root = path.resolve(dir);
  try {
    fs.mkdirSync(path.dirname(root), { recursive: true });
    fs.mkdirSync(root);
  } catch (err) {
    throw new RlpkdError(`cannot create run directory '${dir}': ${(err as Error).message}`, {
      hint: 'remove the folder, or pick another one',
      cause: err,
    });
  }
  const run = new RunDir(root);
  run.writeJson(RUN_FILES.format, { format: 'rl-pyramidkd run', version: RUN_DIR_FORMAT_VERSION });
  return run;
}

/** Opens an existing run directory (for --resume, eval, visualize); it must hold a resolved config. */
export function openRunDir(dir: string): RunDir {
  const root = path.resolve(dir);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new InputFileError(`run directory '${dir}' does not exist`, {
      hint: 'pass a folder under runs/ created by `rlpkd train`',
    });
  }
  const run = new RunDir(root);
  if (!fs.existsSync(run.configFile)) {
    throw new InputFileError(`'${dir}' is not a run directory (no ${RUN_FILES.config})`, {
      hint: 'pass a folder under runs/ created by `rlpkd train`',
    });
  }
  const formatFile = run.file(RUN_FILES.format);
  if (fs.existsSync(formatFile)) {
    let version: unknown;
    try {
      version = (JSON.parse(fs.readFileSync(formatFile, 'utf8')) as { version?: unknown }).version;
    } catch (err) {
      throw new InputFileError(`'${formatFile}' is unreadable: ${(err as Error).message}`);
    }
    if (version !== RUN_DIR_FORMAT_VERSION) {
      throw new InputFileError(
        `run directory '${dir}' has format ${String(version)}; this rl-pyramidkd reads format ${RUN_DIR_FORMAT_VERSION}`,
        { hint: 'open it with the rl-pyramidkd version that wrote it (or a newer one)' },
      );
    }
  }
  return run;
}
