/**
 * The embedded demo's trained detection teacher: `rlpkd models demo-teacher` runs `rlpkd teach` with
 * configs/teach_demo.yaml into a temporary run and ships its trained backbone and head in `onnx-graphs/`,
 * tagged with the recipe's content hash and the validation AP reached, beside the teach report. Teach is
 * bit-reproducible on one CPU, so a rebuild there writes the same model bytes.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../config/load-config';
import { loadTeachConfig, type TeachConfig } from '../config/teach-schema';
import { RlpkdError } from '../errors';
import type { LoggerOptions } from '../logging/logger';
import { loadModel, saveModel, writeFileAtomic } from '../onnx/model-io';
import { runTeach, type TeachReport } from './teach-model';
import { formatTeachSummary } from './teach-summary';

/** The files `models demo-teacher` writes (in onnx-graphs/ by default). */
export const DEMO_TEACHER_FILES = {
  backbone: 'demo-teacher.onnx',
  head: 'demo-teacher-head.onnx',
  report: 'demo-teacher.json',
} as const;

/** Model metadata keys of the shipped demo teacher. */
export const DEMO_TEACHER_METADATA = {
  role: 'rlpkd.demo_role',
  configHash: 'rlpkd.teach_config_sha256',
  metrics: 'rlpkd.teach_val_metrics',
} as const;

/** The default recipe: configs/teach_demo.yaml of the package. */
export function defaultTeachDemoConfig(): string {
  return path.join(packageRoot(), 'configs', 'teach_demo.yaml');
}

/**
 * The content hash of a teach config: SHA-256 of the validated config (defaults applied) as canonical JSON,
 * without what depends on the machine (output folder, dataset folder) and with the backbone's file named
 * by the SHA-256 of its bytes. Comments and formatting do not count; any value that changes the recipe does.
 */
export function teachConfigHash(config: TeachConfig): string {
  const backbone = createHash('sha256').update(fs.readFileSync(config.teach.backbone)).digest('hex');
  const { output_dir: _out, ...run } = config.run;
  const { root: _root, ...data } = config.data;
  const content = { ...config, run, data, teach: { ...config.teach, backbone: `sha256:${backbone}` } };
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

/** JSON with object keys sorted at every depth (the same value, the same text). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Options of buildDemoTeacher. */
export interface DemoTeacherOptions {
  /** Folder to write into (default onnx-graphs/ of the package). */
  outDir?: string;
  /** Teach config (default configs/teach_demo.yaml of the package). */
  configFile?: string;
  /** Keep the teach run directory (default: removed once the files are written). */
  keepRun?: boolean;
  /** Extra `--set`-style overrides (tests shorten the schedule with them). */
  overrides?: readonly string[];
  signal?: AbortSignal;
  logger?: Pick<LoggerOptions, 'stream' | 'progress'>;
}

/** What demo-teacher.json holds: the teach report plus where the files came from. */
export interface DemoTeacherReport extends TeachReport {
  config: string;
  configSha256: string;
}

/** The result of buildDemoTeacher. */
export interface DemoTeacherResult {
  backbone: string;
  head: string;
  report: string;
  /** The kept run directory (keepRun), else null. */
  runDir: string | null;
  teach: DemoTeacherReport;
  summaryText: string;
}

/** Trains the demo teacher per the recipe and writes its three files; see the module doc. */
export async function buildDemoTeacher(options: DemoTeacherOptions = {}): Promise<DemoTeacherResult> {
  const configFile = path.resolve(options.configFile ?? defaultTeachDemoConfig());
  const outDir = path.resolve(options.outDir ?? path.join(packageRoot(), 'onnx-graphs'));
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-demo-teacher-'));
  try {
    const config = loadTeachConfig(configFile, {
      overrides: [...(options.overrides ?? []), `run.output_dir=${JSON.stringify(runsDir)}`],
    });
    if (config.teach.task !== 'detection' && config.teach.task !== 'auto') {
      throw new RlpkdError(`models demo-teacher: '${configFile}' teaches ${config.teach.task}`, {
        hint: 'the demo teacher is a detection teacher: use a config with teach.task detection',
      });
    }
    const configSha256 = teachConfigHash(config);
    const result = await runTeach({
      config,
      sources: [configFile],
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    if (result.report.interrupted) {
      throw new RlpkdError('models demo-teacher: interrupted; nothing written', {
        hint: 'run it again to the end (the shipped files must come from the full recipe)',
      });
    }
    const trained = result.report.trained;
    const metadata = {
      [DEMO_TEACHER_METADATA.configHash]: configSha256,
      [DEMO_TEACHER_METADATA.metrics]: JSON.stringify({
        split: result.report.dataset.val,
        ...trained.values,
      }),
    };
    const files = {
      backbone: path.join(outDir, DEMO_TEACHER_FILES.backbone),
      head: path.join(outDir, DEMO_TEACHER_FILES.head),
      report: path.join(outDir, DEMO_TEACHER_FILES.report),
    };
    for (const [role, from, to] of [
      ['trained-teacher', result.backbone, files.backbone],
      ['trained-teacher-head', result.head, files.head],
    ] as const) {
      const model = loadModel(from);
      Object.assign(model.metadata, metadata, { [DEMO_TEACHER_METADATA.role]: role });
      saveModel(model, to);
    }
    const teach: DemoTeacherReport = {
      ...result.report,
      // The shipped report names files relative to the package, not this machine's paths.
      backbone: path.relative(path.dirname(configFile), config.teach.backbone),
      config: path.relative(packageRoot(), configFile),
      configSha256,
    };
    writeFileAtomic(files.report, `${JSON.stringify(teach, null, 2)}\n`);
    const keep = options.keepRun ?? false;
    const runNote = keep ? result.runDir : `${result.runDir} (removed; --keep-run keeps it)`;
    return {
      ...files,
      runDir: keep ? result.runDir : null,
      teach,
      summaryText: formatTeachSummary(teach, runNote),
    };
  } finally {
    if (!options.keepRun) fs.rmSync(runsDir, { recursive: true, force: true });
  }
}
