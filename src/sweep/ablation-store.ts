/**
 * An ablation directory on disk, shared by the ablate command and any number of workers:
 *   ablation-plan.json   the manifest (base config, seeds, levels, costs, jobs) the workers read
 *   runs/<job id>/       one run directory per job (phase 1, then each branch)
 *   results/<job id>.json one result per job, written atomically once the job is done; a job whose result
 *                        exists is done, so a retried or duplicated job never counts twice
 *   ablation.json, table.md, table.csv, pareto.json   the assembled comparison
 *   tables.json, tables.md, table1.csv, table2.csv, table4.csv, table5.csv   the paper's tables (--tables)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config/schema';
import type { UpdateAccount } from '../distill/run-checkpoint';
import { InputFileError, RlpkdError } from '../errors';
import { writeFileAtomic } from '../onnx/model-io';
import type { AblationMetric } from './ablation-metric';
import { jobId, type AblationJob, type TableNasMethod } from './ablation-plan';
import type { LevelLossSpread } from './training-stability';

/** File and folder names inside an ablation directory. */
export const ABLATION_FILES = {
  manifest: 'ablation-plan.json',
  runs: 'runs',
  results: 'results',
  json: 'ablation.json',
  markdown: 'table.md',
  csv: 'table.csv',
  pareto: 'pareto.json',
  tablesJson: 'tables.json',
  tablesMarkdown: 'tables.md',
  tableCsv: (n: number) => `table${n}.csv`,
} as const;

/** What every job of an ablation reads. */
export interface AblationManifest {
  format: 'rl-pyramidkd ablation';
  version: 1;
  /** The user's config (resolved, absolute paths), `--quick` applied. */
  config: RunConfig;
  sources: string[];
  seeds: number[];
  quick: boolean;
  /** Distilled levels and their cost shares (level order). */
  levels: string[];
  costs: number[];
  jobs: AblationJob[];
  /** `--tables`: the NAS searches and Table 4/5 variants are in `jobs` (absent in older manifests). */
  tables?: boolean;
}

/** A phase-1 job's result. */
export interface PhaseOneResult {
  id: string;
  seed: number;
  method: 'phase1';
  runDir: string;
  /** The checkpoint every branch of the seed starts from. */
  checkpoint: string;
  /** Wall seconds of phase 1. */
  seconds: number;
  updates: UpdateAccount;
}

/** A branch job's result: one method on one seed. */
export interface BranchResult {
  id: string;
  seed: number;
  method: string;
  runDir: string;
  metric: AblationMetric;
  /** The probe's primary metric on the branch's student (a head trained on the frozen backbone), when run. */
  probe?: { name: string; value: number };
  /** Mean cost share of the levels distilled per image in the branch's kept student updates (phase 3). */
  meanCost: number;
  /** Mean cost share of what the deterministic policy (or the selection) picks on the held-out images. */
  heldOutCost: number;
  /** Kept student updates after phase 1, the images in them, and their digest (equal = same images). */
  updates: number;
  images: number;
  digest: string;
  /** Rolled-back trial updates (phases 2–3): wall time, not updates. */
  trials: number;
  /** Wall seconds inside the kept student updates after phase 1. */
  updateSeconds: number;
  /** Wall seconds of the branch (phases 2–4, policy learning included) and with the shared phase 1. */
  branchSeconds: number;
  seconds: number;
  phaseSeconds: number[];
  /** Every value of the primary task score through the teacher's head (AP, AP50, …), when measured. */
  taskValues?: Record<string, number | null>;
  /** The gradient-clipping norm the branch trained with (null: none). */
  gradClip?: number | null;
  /** Share of phase 3's steps whose unclipped gradient norm exceeded gradClip (clipping variants). */
  clippedShare?: number | null;
  /** Whether GradNorm balanced the level weights in phase 3. */
  gradnorm?: boolean;
  /** Spread of the per-level loss ratios over the kept updates of phase 3 (training-stability.ts). */
  stability?: LevelLossSpread;
}

/** A NAS search job's result (`--tables`): the selection it chose from the seed's phase-1 checkpoint. */
export interface NasJobResult {
  id: string;
  seed: number;
  method: string;
  search: TableNasMethod;
  /** The nas.json it wrote. */
  file: string;
  /** Chosen levels (level order) and their method name (`P4+P5`). */
  chosen: string[];
  chosenMethod: string;
  /** Its objective and cost share as the search measured them. */
  objective: number;
  cost: number;
  /** Device-seconds of the search (nas.json search.seconds) and the execution provider. */
  searchSeconds: number;
  ep: string;
  proxySteps: number;
}

export type JobResult = PhaseOneResult | BranchResult | NasJobResult;

/** Paths of an ablation directory. */
export class AblationStore {
  readonly root: string;
  constructor(dir: string) {
    this.root = path.resolve(dir);
  }

  file(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  runDir(id: string): string {
    return this.file(ABLATION_FILES.runs, id);
  }

  resultFile(id: string): string {
    return this.file(ABLATION_FILES.results, `${id}.json`);
  }

  writeManifest(m: AblationManifest): void {
    fs.mkdirSync(this.root, { recursive: true });
    this.writeJson(ABLATION_FILES.manifest, m);
  }

  readManifest(): AblationManifest {
    const f = this.file(ABLATION_FILES.manifest);
    if (!fs.existsSync(f)) {
      throw new InputFileError(
        `'${this.root}' is not an ablation directory (no ${ABLATION_FILES.manifest})`,
        {
          hint: 'pass the --out folder of `rlpkd ablate` (workers must see the same storage)',
        },
      );
    }
    const m = JSON.parse(fs.readFileSync(f, 'utf8')) as AblationManifest;
    if (m.format !== 'rl-pyramidkd ablation' || m.version !== 1) {
      throw new InputFileError(`${f} is not an ablation manifest of format 1`);
    }
    return m;
  }

  /** The job's result, or null while it is not done. */
  readResult<T extends JobResult = JobResult>(id: string): T | null {
    const f = this.resultFile(id);
    return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as T) : null;
  }

  /** The phase-1 result a job of the same seed starts from (an internal error before it exists). */
  phaseOneOf(job: AblationJob): PhaseOneResult {
    const r = this.readResult<PhaseOneResult>(jobId(job.seed, 'phase1'));
    if (!r) throw new RlpkdError(`internal: job '${job.id}' started before its phase 1`);
    return r;
  }

  /** Writes a job's result atomically (the same job done twice writes the same file once more). */
  writeResult(r: JobResult): void {
    this.writeJson(path.join(ABLATION_FILES.results, `${r.id}.json`), r);
  }

  writeJson(relative: string, value: unknown): void {
    this.writeText(relative, `${JSON.stringify(value, null, 2)}\n`);
  }

  writeText(relative: string, text: string): void {
    const f = this.file(relative);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    writeFileAtomic(f, text);
  }
}
