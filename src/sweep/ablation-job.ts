/**
 * Runs one job of an ablation (ablation-plan.ts) against its directory (ablation-store.ts); the same code
 * serves the local loop and the queue workers. Every step can be cut off at any moment and run again:
 * - a job whose result file exists is done and returns it;
 * - phase 1 is a normal run in `runs/<id>` stopped after phase 1 (`stopAfterPhase`); one killed midway
 *   resumes from its latest checkpoint (`train --resume` machinery), one killed before its first
 *   checkpoint starts over;
 * - a branch is a new run directory holding the branch's config and a copy of the seed's phase-1
 *   checkpoint (and its cached artifacts), assembled in a temporary folder and renamed into place, then
 *   resumed, so its training continues from phase 2 with the method's selection — and, when killed, from
 *   its own latest checkpoint;
 * - the result is written last, atomically.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { writeResolvedConfig } from '../config/load-config';
import { evaluateRun } from '../distill/evaluate-run';
import { runTraining, type TrainResult } from '../distill/pipeline';
import {
  CHECKPOINT_FILES,
  LATEST_POINTER,
  type RunStateJson,
  type UpdateAccount,
} from '../distill/run-checkpoint';
import { RlpkdError } from '../errors';
import type { LogLevel } from '../logging/logger';
import { createRunDirAt, RUN_FILES } from '../logging/run-dir';
import { readMetrics } from '../logging/metrics';
import { writeFileAtomic } from '../onnx/model-io';
import type { CheckpointEvaluation } from '../eval/checkpoint-evaluation';
import { branchConfig, phaseOneConfig } from './ablation-config';
import { ablationMetric } from './ablation-metric';
import { jobId, parseMethod, type AblationJob } from './ablation-plan';
import {
  AblationStore,
  type AblationManifest,
  type BranchResult,
  type JobResult,
  type PhaseOneResult,
} from './ablation-store';
import { runNasJob } from './nas-job';
import { clipSourceMethod } from './table-plan';
import { variantClips } from './table-variants';
import { clippedShare, levelLossSpread, medianGradNorm } from './training-stability';

/** How far a job is, as reported to a queue (job.updateProgress) or a console. */
export interface JobProgress {
  job: string;
  stage: 'starting' | 'training' | 'evaluating' | 'done';
}

/** How to run a job. */
export interface JobRunOptions {
  /** Aborting it stops training after the current unit with a checkpoint saved (the job then fails). */
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void | Promise<void>;
  /** Console of the job's training runs (default stderr) and its level (default warn). */
  logStream?: Writable;
  logLevel?: LogLevel;
}

/** The state of a run's latest checkpoint, or null when it has none. */
export function latestCheckpointState(runDir: string): { dir: string; state: RunStateJson } | null {
  const pointer = path.join(runDir, 'checkpoints', LATEST_POINTER);
  if (!fs.existsSync(pointer)) return null;
  const dir = path.join(runDir, 'checkpoints', fs.readFileSync(pointer, 'utf8').trim());
  const f = path.join(dir, CHECKPOINT_FILES.state);
  if (!fs.existsSync(f)) return null;
  return { dir, state: JSON.parse(fs.readFileSync(f, 'utf8')) as RunStateJson };
}

function account(state: RunStateJson, phase: number): UpdateAccount {
  return state.updates?.[phase - 1] ?? { updates: 0, images: 0, cost: 0, seconds: 0, trials: 0, digest: '' };
}

/** Runs job `id` of the ablation in `dir` (see module doc); returns its result. */
export async function runAblationJob(
  dir: string,
  id: string,
  options: JobRunOptions = {},
): Promise<JobResult> {
  const store = new AblationStore(dir);
  const done = store.readResult(id);
  if (done) return done;
  const manifest = store.readManifest();
  const job = manifest.jobs.find((j) => j.id === id);
  if (!job) throw new RlpkdError(`the ablation in '${store.root}' has no job '${id}'`);
  for (const need of job.needs) {
    if (!store.readResult(need)) throw new RlpkdError(`job '${id}' needs the result of '${need}' first`);
  }
  await options.onProgress?.({ job: id, stage: 'starting' });
  const method = job.method === 'phase1' ? null : parseMethod(job.method, manifest.levels);
  const result =
    method === null
      ? await runPhaseOne(store, manifest, job, options)
      : method.kind === 'nas'
        ? await runNasJob(store, manifest, job, method.search, options)
        : await runBranch(store, manifest, job, options);
  store.writeResult(result);
  await options.onProgress?.({ job: id, stage: 'done' });
  return result;
}

function trainLogger(options: JobRunOptions) {
  return {
    stream: options.logStream ?? process.stderr,
    progress: 'lines' as const,
    level: options.logLevel ?? ('warn' as const),
  };
}

function requireFinished(r: TrainResult, id: string): void {
  if (r.status === 'interrupted') {
    throw new RlpkdError(`job '${id}' was interrupted; its checkpoint is saved, run the job again to go on`);
  }
}

async function runPhaseOne(
  store: AblationStore,
  m: AblationManifest,
  job: AblationJob,
  options: JobRunOptions,
): Promise<PhaseOneResult> {
  const runDir = store.runDir(job.id);
  let latest = latestCheckpointState(runDir);
  // Killed before its first checkpoint: nothing to resume.
  if (!latest && fs.existsSync(runDir)) fs.rmSync(runDir, { recursive: true, force: true });
  if (!latest || latest.state.cursor.phase <= 1) {
    await options.onProgress?.({ job: job.id, stage: 'training' });
    const common = {
      stopAfterPhase: 1,
      logger: trainLogger(options),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const r = latest
      ? await runTraining({ ...common, resume: runDir })
      : await runTraining({
          ...common,
          config: phaseOneConfig(m.config, job.seed),
          sources: m.sources,
          runDir,
        });
    requireFinished(r, job.id);
    latest = latestCheckpointState(runDir);
  }
  if (!latest || latest.state.cursor.phase !== 2) {
    throw new RlpkdError(`internal: phase-1 run '${runDir}' did not end with a checkpoint at phase 2`);
  }
  return {
    id: job.id,
    seed: job.seed,
    method: 'phase1',
    runDir,
    checkpoint: latest.dir,
    seconds: latest.state.phaseSeconds[0],
    updates: account(latest.state, 1),
  };
}

/** Assembles a branch's run directory (see module doc); a folder already in place is kept. */
function createBranch(
  store: AblationStore,
  id: string,
  phaseOne: PhaseOneResult,
  config: ReturnType<typeof branchConfig>,
  sources: readonly string[],
): void {
  const final = store.runDir(id);
  if (fs.existsSync(final)) return;
  const tmp = store.file('runs', `.tmp-${id}-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  const run = createRunDirAt(tmp);
  writeResolvedConfig(run.root, config, [...sources, `rlpkd ablate: branch ${id} of ${phaseOne.checkpoint}`]);
  const label = path.basename(phaseOne.checkpoint);
  const copy = path.join(run.checkpointsDir, label);
  fs.cpSync(phaseOne.checkpoint, copy, { recursive: true });
  // The branch's metrics.jsonl starts empty: a resume from this checkpoint keeps none of its records (a
  // branch killed before its own first checkpoint must not keep what that attempt logged).
  const stateFile = path.join(copy, CHECKPOINT_FILES.state);
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as RunStateJson;
  writeFileAtomic(stateFile, `${JSON.stringify({ ...state, metricsRecords: 0 }, null, 2)}\n`);
  writeFileAtomic(path.join(run.checkpointsDir, LATEST_POINTER), `${label}\n`);
  // The artifacts are cached by content: the phase-1 run's fit the branch and save building them again.
  const artifacts = path.join(phaseOne.runDir, 'artifacts');
  if (fs.existsSync(artifacts)) fs.cpSync(artifacts, run.file('artifacts'), { recursive: true });
  try {
    fs.renameSync(tmp, final);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // Another worker put it in place first: use theirs.
    if (!fs.existsSync(final)) throw err;
  }
}

async function runBranch(
  store: AblationStore,
  m: AblationManifest,
  job: AblationJob,
  options: JobRunOptions,
): Promise<BranchResult> {
  const phaseOne = store.phaseOneOf(job);
  const method = parseMethod(job.method, m.levels);
  let randomCost: number | undefined;
  if (method.kind === 'random') {
    const rl = store.readResult<BranchResult>(jobId(job.seed, 'rl'));
    if (!rl) throw new RlpkdError(`internal: job '${job.id}' started before the rl branch`);
    randomCost = rl.meanCost;
  }
  // The clipping variants' norm: the config's, else measured on the baseline variant's run (training-stability.ts).
  let clip: number | null = null;
  if (method.kind !== 'random' && method.kind !== 'nas' && method.variant && variantClips(method.variant)) {
    if (m.config.distill.grad_clip !== null) clip = m.config.distill.grad_clip;
    else {
      const source = store.readResult<BranchResult>(jobId(job.seed, clipSourceMethod(m.config, m.levels)));
      if (!source) throw new RlpkdError(`internal: job '${job.id}' started before the baseline variant`);
      clip = medianGradNorm(
        readMetrics(path.join(source.runDir, RUN_FILES.metrics)),
        3,
        `baseline run '${source.runDir}'`,
      );
    }
  }
  const config = branchConfig(m.config, job.seed, method, randomCost, clip);
  createBranch(store, job.id, phaseOne, config, m.sources);
  const runDir = store.runDir(job.id);
  let latest = latestCheckpointState(runDir);
  if (!latest) throw new RlpkdError(`branch run '${runDir}' has no checkpoint`);
  if (latest.state.cursor.phase <= 4) {
    await options.onProgress?.({ job: job.id, stage: 'training' });
    const r = await runTraining({
      resume: runDir,
      // The branch is evaluated below (its own student's probe only), not twice.
      evaluate: false,
      logger: trainLogger(options),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    requireFinished(r, job.id);
    latest = latestCheckpointState(runDir)!;
  }
  await options.onProgress?.({ job: job.id, stage: 'evaluating' });
  // The probe trains on the branch's own student only: the teacher and the untrained student are the same
  // in every branch of a seed.
  const evaluation = await evaluateRun({ run: runDir, probeBackbones: ['studentAfter'] });
  const probe = evaluation.evaluation.probe;
  const probeScore = 'scores' in probe ? probe.scores.studentAfter : undefined;
  const s = latest.state;
  const after = [2, 3, 4].map((p) => account(s, p));
  const sum = (k: 'updates' | 'images' | 'cost' | 'seconds' | 'trials') =>
    after.reduce((a, x) => a + x[k], 0);
  const images = sum('images');
  const ps = s.phaseSeconds;
  const metrics = readMetrics(path.join(runDir, RUN_FILES.metrics));
  return {
    id: job.id,
    seed: job.seed,
    method: job.method,
    runDir,
    metric: ablationMetric({ summary: evaluation.summary, task: evaluation.evaluation.task }),
    ...(probeScore && 'value' in probeScore
      ? { probe: { name: probeScore.metric, value: probeScore.value } }
      : {}),
    meanCost: images > 0 ? sum('cost') / images : evaluation.summary.selection.meanUsedCost,
    heldOutCost: evaluation.summary.selection.meanUsedCost,
    updates: sum('updates'),
    images,
    digest: after
      .map((a) => a.digest)
      .filter((d) => d)
      .join('|'),
    trials: sum('trials'),
    updateSeconds: sum('seconds'),
    branchSeconds: ps[1] + ps[2] + ps[3],
    seconds: ps.reduce((a, b) => a + b, 0),
    phaseSeconds: [...ps],
    ...taskValues(evaluation.evaluation),
    gradClip: config.distill.grad_clip,
    gradnorm: config.gradnorm.enabled,
    stability: levelLossSpread(metrics, m.levels, 3),
    ...(clip !== null ? { clippedShare: clippedShare(metrics, 3, clip) } : {}),
  };
}

/** Every value of the student's primary task score through the teacher's head, when it was measured. */
function taskValues(e: CheckpointEvaluation): { taskValues?: Record<string, number | null> } {
  if ('skipped' in e.teacherHead) return {};
  const s = e.teacherHead.scores.studentAfter;
  return s && 'values' in s ? { taskValues: { ...s.values } } : {};
}
