/**
 * Run checkpoints: one folder per checkpoint under `<run>/checkpoints/`, holding the student as a plain
 * inference ONNX (trained weights embedded, adapters dropped), the student's training state (parameters +
 * optimizer, an engine checkpoint), the policy ONNX (weights, config, normalizer statistics and sampling
 * RNG in its metadata), the PPO optimizer state, the GradNorm state and `state.json` (phase/epoch/unit
 * cursor, image-stream positions, reward statistics, held-out baseline, phase timings). The config's
 * `checkpoint.optimizer_state` may leave both optimizers' state out (a lighter checkpoint that cannot be
 * resumed; the pipeline refuses to).
 *
 * A checkpoint is written into a temporary folder and renamed into place, and only then does
 * `checkpoints/latest` (itself written atomically) point at it: a crash at any moment leaves either the
 * previous checkpoint or the new one, never a partial one. Stale temporary folders are removed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputFileError, RlpkdError } from '../errors';
import type { RunDir } from '../logging/run-dir';
import { saveModel, writeFileAtomic } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import type { RunningMeanStdState } from '../rl/running-mean-std';
import { PolicyNetwork, type PolicyCheckpoint } from '../rl/policy';
import {
  loadCheckpoint,
  saveCheckpoint,
  withoutOptimizerState,
  type CheckpointState,
} from '../training/checkpoint';
import type { GradNormState } from './gradnorm';
import type { StreamCursor } from './image-stream';

/** File names inside a checkpoint folder. */
export const CHECKPOINT_FILES = {
  state: 'state.json',
  student: 'student.onnx',
  studentTrain: 'student.train.onnx',
  policy: 'policy.onnx',
  policyMeta: 'policy-meta.onnx',
  ppoOptimizer: 'ppo-optimizer.onnx',
  gradnorm: 'gradnorm.json',
} as const;

/** Name of the pointer file naming the newest complete checkpoint. */
export const LATEST_POINTER = 'latest';

/** Where training stands: the next unit to run. */
export interface RunCursor {
  /** 1..4, or 5 when every phase is done. */
  phase: number;
  /** Epoch within the phase. */
  epoch: number;
  /** Unit within the epoch (phase 1/3: student step; 2/3 RL: PPO iteration; 4: always 0). */
  unit: number;
  /** Units done over the whole run (the metrics/TensorBoard step). */
  globalStep: number;
}

/** The JSON part of a checkpoint. */
export interface RunStateJson {
  version: 1;
  label: string;
  cursor: RunCursor;
  /** Image-stream positions by stream name. */
  streams: Record<string, StreamCursor>;
  /** Reward scaling statistics. */
  returnScaler?: RunningMeanStdState;
  /** Divides the state's loss feature (fixed at the first policy phase). */
  lossReference?: number;
  /** Held-out all-level distillation loss before any training (and per level). */
  heldOutStart?: { loss: number; levels: number[] };
  /** Wall seconds spent per phase (index 0 = phase 1). */
  phaseSeconds: number[];
  /** ISO time of writing. */
  savedAt: string;
}

/** Everything a checkpoint holds. */
export interface RunCheckpoint {
  state: RunStateJson;
  /** Student inference graph. */
  student: OnnxModel;
  /** Student parameters + optimizer state. */
  studentTrain: CheckpointState;
  policy?: PolicyCheckpoint;
  /** The meta-learned policy before the final adaptation (final checkpoint of a phase-4 run). */
  policyMeta?: PolicyCheckpoint;
  ppoOptimizer?: CheckpointState;
  gradnorm?: GradNormState;
}

/** A checkpoint read back (the policy files are loaded by the caller with its execution provider). */
export interface LoadedRunCheckpoint {
  dir: string;
  state: RunStateJson;
  studentTrain: CheckpointState;
  /** Path of policy.onnx when present. */
  policyFile?: string;
  ppoOptimizer?: CheckpointState;
  gradnorm?: GradNormState;
}

/** Label of a checkpoint: sortable by the global step. */
export function checkpointLabel(cursor: RunCursor): string {
  return `s${String(cursor.globalStep).padStart(8, '0')}-p${cursor.phase}-e${cursor.epoch}-u${cursor.unit}`;
}

function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** What to keep (the config's `checkpoint` section): how many ordinary checkpoints, and optimizer state. */
export interface CheckpointRetention {
  keep_last: number;
  optimizer_state?: 'always' | 'except_final' | 'never';
}

/** Whether a checkpoint at this cursor is saved without optimizer state. */
function dropsOptimizerState(cursor: RunCursor, retention: CheckpointRetention): boolean {
  const o = retention.optimizer_state ?? 'always';
  return o === 'never' || (o === 'except_final' && cursor.phase > 4);
}

/**
 * Writes a checkpoint atomically (see module doc), points `latest` at it and keeps the `keep_last` newest
 * ordinary checkpoints (a 'final' checkpoint is never pruned), with or without optimizer state per
 * `optimizer_state`. Returns its folder.
 */
export async function writeRunCheckpoint(
  run: RunDir,
  ckpt: RunCheckpoint,
  retention: number | CheckpointRetention,
): Promise<string> {
  const keep = typeof retention === 'number' ? { keep_last: retention } : retention;
  const light = dropsOptimizerState(ckpt.state.cursor, keep);
  const root = run.checkpointsDir;
  fs.mkdirSync(root, { recursive: true });
  for (const e of fs.readdirSync(root))
    if (e.startsWith('.tmp-') || e.startsWith('.old-')) removeDir(path.join(root, e));
  const label = ckpt.state.label;
  if (!/^[A-Za-z0-9._-]+$/.test(label) || label === LATEST_POINTER) {
    throw new RlpkdError(`invalid checkpoint label '${label}'`);
  }
  const tmp = path.join(root, `.tmp-${label}-${process.pid}`);
  removeDir(tmp);
  fs.mkdirSync(tmp);
  try {
    saveModel(ckpt.student, path.join(tmp, CHECKPOINT_FILES.student));
    saveCheckpoint(
      path.join(tmp, CHECKPOINT_FILES.studentTrain),
      light ? withoutOptimizerState(ckpt.studentTrain) : ckpt.studentTrain,
    );
    if (ckpt.policy)
      (await PolicyNetwork.fromCheckpoint(ckpt.policy)).save(path.join(tmp, CHECKPOINT_FILES.policy));
    if (ckpt.policyMeta) {
      (await PolicyNetwork.fromCheckpoint(ckpt.policyMeta)).save(path.join(tmp, CHECKPOINT_FILES.policyMeta));
    }
    if (ckpt.ppoOptimizer && !light)
      saveCheckpoint(path.join(tmp, CHECKPOINT_FILES.ppoOptimizer), ckpt.ppoOptimizer);
    if (ckpt.gradnorm)
      writeFileAtomic(path.join(tmp, CHECKPOINT_FILES.gradnorm), `${JSON.stringify(ckpt.gradnorm)}\n`);
    // state.json last: a folder with a state file has everything else.
    writeFileAtomic(path.join(tmp, CHECKPOINT_FILES.state), `${JSON.stringify(ckpt.state, null, 2)}\n`);
    const final = path.join(root, label);
    if (fs.existsSync(final)) {
      const old = path.join(root, `.old-${label}-${process.pid}`);
      fs.renameSync(final, old);
      fs.renameSync(tmp, final);
      removeDir(old);
    } else {
      fs.renameSync(tmp, final);
    }
    writeFileAtomic(path.join(root, LATEST_POINTER), `${label}\n`);
    pruneCheckpoints(root, label, keep.keep_last);
    return final;
  } catch (err) {
    removeDir(tmp);
    throw new RlpkdError(`could not write checkpoint '${label}' in '${root}': ${(err as Error).message}`, {
      hint: 'check free disk space and that the run directory is writable',
      cause: err,
    });
  }
}

function pruneCheckpoints(root: string, current: string, keepLast: number): void {
  const ordinary = fs
    .readdirSync(root)
    .filter((e) => /^s\d{8}-/.test(e) && fs.statSync(path.join(root, e)).isDirectory())
    .sort();
  const keep = new Set(keepLast > 0 ? ordinary.slice(-keepLast) : []);
  keep.add(current);
  for (const e of ordinary) if (!keep.has(e)) removeDir(path.join(root, e));
}

/** Reads the checkpoint `latest` points at (or the named one). */
export function readRunCheckpoint(run: RunDir, label?: string): LoadedRunCheckpoint {
  const root = run.checkpointsDir;
  const pointer = path.join(root, LATEST_POINTER);
  let name = label;
  if (!name) {
    if (!fs.existsSync(pointer)) {
      throw new InputFileError(`run '${run.root}' has no checkpoint to resume from`, {
        hint: 'it stopped before its first checkpoint; start a new run',
      });
    }
    name = fs.readFileSync(pointer, 'utf8').trim();
  }
  const dir = path.join(root, name);
  const file = (f: string) => path.join(dir, f);
  if (!fs.existsSync(file(CHECKPOINT_FILES.state))) {
    throw new InputFileError(`checkpoint '${dir}' is missing or incomplete (no ${CHECKPOINT_FILES.state})`);
  }
  let state: RunStateJson;
  try {
    state = JSON.parse(fs.readFileSync(file(CHECKPOINT_FILES.state), 'utf8')) as RunStateJson;
  } catch (err) {
    throw new InputFileError(
      `checkpoint state '${file(CHECKPOINT_FILES.state)}' is unreadable: ${(err as Error).message}`,
    );
  }
  if (state.version !== 1)
    throw new InputFileError(`checkpoint '${dir}' has an unknown format (version ${state.version})`);
  const exists = (f: string) => fs.existsSync(file(f));
  return {
    dir,
    state,
    studentTrain: loadCheckpoint(file(CHECKPOINT_FILES.studentTrain)),
    ...(exists(CHECKPOINT_FILES.policy) ? { policyFile: file(CHECKPOINT_FILES.policy) } : {}),
    ...(exists(CHECKPOINT_FILES.ppoOptimizer)
      ? { ppoOptimizer: loadCheckpoint(file(CHECKPOINT_FILES.ppoOptimizer)) }
      : {}),
    ...(exists(CHECKPOINT_FILES.gradnorm)
      ? { gradnorm: JSON.parse(fs.readFileSync(file(CHECKPOINT_FILES.gradnorm), 'utf8')) as GradNormState }
      : {}),
  };
}
