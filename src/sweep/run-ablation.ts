/**
 * `rlpkd ablate` as a library call: plans the jobs (ablation-plan.ts) for the config's levels and seeds,
 * writes the manifest into the ablation directory, runs the jobs — one after another here, or on a BullMQ
 * queue served by `rlpkd worker` processes (job-queue.ts) — and assembles ablation.json, table.md,
 * table.csv and pareto.json from the results. Rerun on the same directory, it continues where it
 * stopped: finished jobs keep their results, unfinished ones resume from their checkpoints. With `tables`
 * it also runs the NAS searches and the Table 4/5 variants (table-plan.ts) and writes the paper's tables
 * (ablation-tables.ts); every run then logs every step (logging.every_steps 1), which the stability
 * figure and the measured clipping norm read.
 */
import * as path from 'node:path';
import type { RunConfig } from '../config/schema';
import { prepareDistillation } from '../distill/setup';
import { RlpkdError } from '../errors';
import { silentLog } from '../logging/logger';
import { quickConfig } from './ablation-config';
import { runAblationJob, type JobRunOptions } from './ablation-job';
import { planAblation } from './ablation-plan';
import {
  ablationCsv,
  ablationMarkdown,
  ablationPareto,
  assembleAblation,
  type AblationReport,
} from './ablation-report';
import { ABLATION_FILES, AblationStore, type AblationManifest, type BranchResult } from './ablation-store';
import { assembleTables, NAS_TABLE_NAMES, type AblationTables } from './ablation-tables';
import { runJobsOnQueue, type QueueRunOptions } from './job-queue';
import { tableExtraMethods } from './table-plan';
import { tableCsv, tablesMarkdown } from './tables-format';

/** What to compare and where. */
export interface AblateOptions {
  config: RunConfig;
  /** Config files it came from (recorded in each run's resolved config). */
  sources?: string[];
  /** Number of seeds: run.seed, run.seed + 1, ... (default 1). */
  seeds?: number;
  /** Cap the phases' epochs (ablation-config.ts QUICK_EPOCHS) and the NAS searches (nas-job.ts) for smoke use. */
  quick?: boolean;
  /** Also run the NAS searches and Table 4/5 variants and write the paper's tables. */
  tables?: boolean;
  /** Ablation directory (default `<run.output_dir>/ablation-<run.name>`). */
  out?: string;
  /** redis://HOST:PORT: run the jobs on the BullMQ queue there instead of here. */
  queue?: string;
  queueOptions?: Omit<QueueRunOptions, 'signal' | 'onProgress'>;
  /** One line per finished job (local) or per change of the queue's state. */
  onProgress?: (line: string) => void;
  /** Options of locally run jobs (their console). */
  jobOptions?: Omit<JobRunOptions, 'signal'>;
  signal?: AbortSignal;
}

/** What an ablation produced. */
export interface AblateResult {
  dir: string;
  report: AblationReport;
  markdown: string;
  /** The paper's tables (with `tables`) and their Markdown. */
  tables?: { report: AblationTables; markdown: string };
}

/** The manifest parts that must match for a rerun to continue an existing ablation directory. */
function identity(m: AblationManifest): string {
  return JSON.stringify({
    config: m.config,
    seeds: m.seeds,
    quick: m.quick,
    jobs: m.jobs,
    tables: !!m.tables,
  });
}

/** Runs (or continues) an ablation; see module doc. */
export async function runAblation(options: AblateOptions): Promise<AblateResult> {
  const n = options.seeds ?? 1;
  if (!Number.isInteger(n) || n < 1) {
    throw new RlpkdError(`--seeds must be a positive integer, got ${n}`, { hint: 'e.g. --seeds 3' });
  }
  const config = structuredClone(options.quick ? quickConfig(options.config) : options.config);
  if (options.tables) config.logging.every_steps = 1;
  const dir = options.out ?? path.join(config.run.output_dir, `ablation-${config.run.name}`);
  const store = new AblationStore(dir);
  // Models, data and levels are checked before anything is written or queued.
  const setup = await prepareDistillation(config, { ep: config.run.ep, log: silentLog });
  const seeds = Array.from({ length: n }, (_, k) => config.run.seed + k);
  const manifest: AblationManifest = {
    format: 'rl-pyramidkd ablation',
    version: 1,
    config,
    sources: options.sources ?? [],
    seeds,
    quick: options.quick ?? false,
    levels: [...setup.levelNames],
    costs: [...setup.costs],
    jobs: planAblation(
      setup.levelNames,
      seeds,
      options.tables ? tableExtraMethods(config, setup.levelNames) : [],
    ),
    ...(options.tables ? { tables: true } : {}),
  };
  let existing: AblationManifest | undefined;
  try {
    existing = store.readManifest();
  } catch {
    existing = undefined;
  }
  if (existing && identity(existing) !== identity(manifest)) {
    throw new RlpkdError(`'${store.root}' holds an ablation with another config, seeds or schedule`, {
      hint: 'pass another --out folder, or rerun with the same config and options to continue it',
    });
  }
  // Normalised through JSON, so the manifest the workers read is exactly what identity() compares.
  store.writeManifest(JSON.parse(JSON.stringify(manifest)) as AblationManifest);
  const jobs = manifest.jobs;
  const say = options.onProgress ?? (() => {});
  if (options.queue) {
    await runJobsOnQueue(store, jobs, options.queue, {
      ...(options.queueOptions ?? {}),
      onProgress: say,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } else {
    let k = 0;
    for (const job of jobs) {
      k++;
      if (store.readResult(job.id)) continue;
      const t0 = Date.now();
      await runAblationJob(store.root, job.id, {
        ...(options.jobOptions ?? {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      say(`${k}/${jobs.length} ${job.id} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  const all = jobs.map((j) => store.readResult(j.id)).filter((r) => r !== null);
  // The comparison of issue 13 keeps its rows: the base methods, not the tables' searches and variants.
  const results = all.filter((r): r is BranchResult => 'metric' in r && !r.method.includes('@'));
  const report = assembleAblation(manifest, results);
  const markdown = ablationMarkdown(report);
  store.writeJson(ABLATION_FILES.json, report);
  store.writeText(ABLATION_FILES.markdown, markdown);
  store.writeText(ABLATION_FILES.csv, ablationCsv(report));
  const pareto = ablationPareto(report);
  if (!options.tables) {
    store.writeJson(ABLATION_FILES.pareto, pareto);
    return { dir: store.root, report, markdown };
  }
  const tables = assembleTables(manifest, all);
  const tablesMd = tablesMarkdown(tables);
  store.writeJson(ABLATION_FILES.tablesJson, tables);
  store.writeText(ABLATION_FILES.tablesMarkdown, tablesMd);
  for (const t of tables.tables) store.writeText(ABLATION_FILES.tableCsv(t.id), tableCsv(t));
  store.writeJson(ABLATION_FILES.pareto, withNasPoints(pareto, tables));
  return { dir: store.root, report, markdown, tables: { report: tables, markdown: tablesMd } };
}

/** pareto.json with the NAS methods as points (at their chosen subsets' measured cost and metric). */
function withNasPoints(pareto: Record<string, unknown>, t: AblationTables): Record<string, unknown> {
  const table1 = t.tables.find((x) => x.id === 1)!;
  const key = t.metric.columns.includes(t.metric.name) ? t.metric.name : t.metric.columns[0];
  const names = new Set(Object.values(NAS_TABLE_NAMES));
  const points = table1.rows
    .filter((r) => names.has(r.label))
    .map((r) => {
      const metric = r.cells[key];
      const cost = r.cells.cost;
      if (typeof metric === 'string' || typeof cost === 'string') {
        throw new RlpkdError(`internal: Table 1 row ${r.label} has no numeric ${key} or cost`);
      }
      return {
        method: r.label,
        cost: cost.mean,
        metric: metric.mean,
        ...(metric.std !== null ? { std: metric.std } : {}),
        fixed: false,
      };
    });
  return { ...pareto, points: [...(pareto.points as unknown[]), ...points] };
}
