/**
 * onnxruntime's fully optimized form of an inference graph, saved once to a cache folder. At level 'all'
 * onnxruntime rewrites CPU convolutions into its blocked NCHWc layout (a ResNet-101-FPN forward: 147 ms
 * against 216 ms at 'extended', batch 2 at 224², 2 threads), but doing that at load time keeps the
 * original and the reordered weights in memory together (+220 MB). The saved form holds only the
 * reordered weights, in an external-data file onnxruntime maps lazily, and loads at level 'basic'.
 * It is specific to the CPU and the onnxruntime version that wrote it, so both are part of the cache key.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputFileError, RlpkdError } from '../errors';
import { contentHash, fileIdentity } from '../util/content-hash';
import { ortModule, ortModulePath } from './ort-module';
import type { ResolvedExecutionProvider } from './session';

/** A graph file and the onnxruntime optimization level to load it with. */
export interface GraphFile {
  file: string;
  graphOptimizationLevel: 'basic' | 'extended' | 'all';
}

/** File name of the optimized graph inside its cache entry; the weights sit beside it in `<name>.data`. */
const OPTIMIZED_FILE = 'optimized.onnx';

/** What the saved graph depends on besides the model: the CPU's model name and features, the runtime. */
function hardwareKey(): string {
  let flags = '';
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    flags = /^flags\s*:(.*)$/m.exec(info)?.[1]?.trim() ?? '';
  } catch {
    // not Linux: the model name and architecture have to do
  }
  const version = (ortModule().env as { versions?: { common?: string } }).versions?.common ?? 'unknown';
  return JSON.stringify({ cpu: os.cpus()[0]?.model ?? '', arch: process.arch, flags, ort: version });
}

/**
 * Runs the one-off optimization in a child process with the same onnxruntime build: loading a model at the
 * `all` level holds the original and the reordered weights at once (a ResNet-101-FPN's ~500 MB), and memory
 * a process frees is not always given back, so a training run that optimized its teacher in-process peaked
 * ~0.15 GB higher than one that found it cached.
 */
export function optimizeInChild(model: string, sessionOptions: object): Promise<void> {
  const script =
    'const [mod, model, opts] = process.argv.slice(1);' +
    'require(mod).InferenceSession.create(model, JSON.parse(opts))' +
    '.then((s) => s.release()).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });';
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', script, ortModulePath(), model, JSON.stringify(sessionOptions)],
      { maxBuffer: 1 << 20 },
      (err, _stdout, stderr) => (err ? reject(new Error(String(stderr).trim() || err.message)) : resolve()),
    );
  });
}

/**
 * Path of `model` optimized by onnxruntime at level 'all' for this CPU, creating it in `cacheDir` on first
 * use (one session load at 'all': seconds, and that level's load-time memory, once). Load the result with
 * graphOptimizationLevel 'basic'. The entry is written to a temporary folder and renamed into place, so
 * an interrupted run leaves no half-written entry.
 */
export async function optimizedModelFile(
  model: string,
  options: { cacheDir: string; intraOpNumThreads?: number },
): Promise<string> {
  if (!fs.existsSync(model)) {
    throw new InputFileError(`ONNX model '${model}' does not exist`, { hint: 'check the path' });
  }
  const key = contentHash([fileIdentity(model), hardwareKey()], 20);
  const entry = path.join(options.cacheDir, `optimized-${key}`);
  const file = path.join(entry, OPTIMIZED_FILE);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(options.cacheDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(options.cacheDir, '.optimizing-'));
  try {
    const sessionOptions = {
      graphOptimizationLevel: 'all' as const,
      enableCpuMemArena: false,
      logSeverityLevel: 3 as const, // its warning that the result is hardware-specific is what the cache key handles
      optimizedModelFilePath: path.join(tmp, OPTIMIZED_FILE),
      ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
      extra: {
        session: {
          optimized_model_external_initializers_file_name: `${OPTIMIZED_FILE}.data`,
          optimized_model_external_initializers_min_size_in_bytes: '1024',
        },
      },
    };
    try {
      await optimizeInChild(model, sessionOptions);
    } catch {
      // No child process here (or it failed): optimize in this process, at the cost of its peak memory.
      const session = await ortModule().InferenceSession.create(model, sessionOptions);
      await session.release();
    }
    if (!fs.existsSync(path.join(tmp, OPTIMIZED_FILE))) {
      throw new RlpkdError(`onnxruntime did not write the optimized form of '${model}'`);
    }
    try {
      fs.renameSync(tmp, entry);
    } catch (err) {
      // Another process finished the same entry first: use theirs.
      if (!fs.existsSync(file)) throw err;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return file;
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (err instanceof RlpkdError) throw err;
    throw new RlpkdError(`onnxruntime could not optimize '${model}': ${(err as Error).message}`, {
      hint: 'run `rlpkd inspect` on the model, or load it without the optimized cache',
      cause: err,
    });
  }
}

/**
 * How to load a frozen inference graph (a teacher) for `ep`: on the CPU its optimized form from the
 * cache at level 'basic'; elsewhere (or when onnxruntime cannot save an optimized form of it) the file
 * itself at level 'all'. `onFallback` hears why the cache was not used (it may throw to refuse).
 */
export async function frozenGraphFile(
  model: string,
  ep: ResolvedExecutionProvider,
  options: { cacheDir: string; intraOpNumThreads?: number; onFallback?: (reason: string) => void },
): Promise<GraphFile> {
  if (ep !== 'cpu') return { file: model, graphOptimizationLevel: 'all' };
  try {
    return { file: await optimizedModelFile(model, options), graphOptimizationLevel: 'basic' };
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    options.onFallback?.((err as Error).message);
    return { file: model, graphOptimizationLevel: 'all' };
  }
}
