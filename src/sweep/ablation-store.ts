/**
 * An ablation directory on disk, shared by the ablate command and any number of workers:
 *   ablation-plan.json   the manifest (base config, seeds, levels, costs, jobs) the workers read
 *   runs/<job id>/       one run directory per job (phase 1, then each branch)
 *   results/<job id>.json one result per job, written atomically once the job is done; a job whose result
 *                        exists is done, so a retried or duplicated job never counts twice
 *   ablation.json, table.md, table.csv, pareto.json   the assembled comparison
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config/schema';
import type { UpdateAccount } from '../distill/run-checkpoint';
import { InputFileError } from '../errors';
import { writeFileAtomic } from '../onnx/model-io';
import type { AblationMetric } from './ablation-metric';
import type { AblationJob } from './ablation-plan';

/** File and folder names inside an ablation directory. */
export const ABLATION_FILES = {
  manifest: 'ablation-plan.json',
  runs: 'runs',
  results: 'results',
  json: 'ablation.json',
  markdown: 'table.md',
  csv: 'table.csv',
  pareto: 'pareto.json',
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
}

export type JobResult = PhaseOneResult | BranchResult;

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
