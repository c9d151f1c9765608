/**
 * Run checkpoints: one folder per checkpoint under `<run>/checkpoints/`, holding the student as a plain
 * inference ONNX (trained weights embedded, adapters dropped), the student's training state (parameters +
 * optimizer, an engine checkpoint), the policy ONNX (weights, config, normalizer statistics and sampling
 * RNG in its metadata), the PPO and MAML trainers' state (their optimizers as engine checkpoints, their
 * RNG streams in `trainers.json`), the GradNorm state and `state.json` (format version, phase/epoch/unit
 * cursor, image-stream positions, reward statistics, held-out baseline, phase timings). The config's
 * `checkpoint.optimizer_state` may leave the optimizers' state out (a lighter checkpoint that cannot be
 * resumed; the pipeline refuses to).
 *
 * Formats: `state.json`'s `version` is RUN_STATE_VERSION. Format 1 (before the trainers lived for the
 * whole run) re-created the PPO trainer per iteration and the MAML trainer per epoch from position seeds,
 * so it has no trainer RNG streams: it is read as format 2 wherever nothing needs them (any `eval`, and a
 * resume before the first PPO update or at phase 4's start); elsewhere a resume fails with one message.
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
import type { MamlTrainerState } from '../rl/maml';
import type { PpoTrainerState } from '../rl/ppo';
import type { RunningMeanStdState } from '../rl/running-mean-std';
import {
  loadCheckpoint,
  saveCheckpoint,
  withoutOptimizerState,
  type CheckpointState,
} from '../training/checkpoint';
import type { RngState } from '../util/rng';
import type { GradNormState } from './gradnorm';
import type { StreamCursor } from './image-stream';
import { TASK_CHECKPOINT_FILES } from './task-checkpoint-files';

/** File names inside a checkpoint folder. */
export const CHECKPOINT_FILES = {
  state: 'state.json',
  student: 'student.onnx',
  studentTrain: 'student.train.onnx',
  policy: 'policy.onnx',
  policyMeta: 'policy-meta.onnx',
  ppoOptimizer: 'ppo-optimizer.onnx',
  mamlOptimizer: 'maml-optimizer.onnx',
  trainers: 'trainers.json',
  gradnorm: 'gradnorm.json',
} as const;

/** Version of `state.json` (and the checkpoint folder's layout) this code writes. */
export const RUN_STATE_VERSION = 2;

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
  /** RUN_STATE_VERSION when written by this code (see module doc for older ones). */
  version: number;
  label: string;
  cursor: RunCursor;
  /** Image-stream positions by stream name. */
  streams: Record<string, StreamCursor>;
  /** Reward scaling statistics. */
  returnScaler?: RunningMeanStdState;
  /** Divides the state's loss feature (fixed at the first policy phase). */
  lossReference?: number;
  /** Held-out all-level distillation loss before any training (and per level). */
  heldOutStart?: { loss: number; levels: number[]; taskLoss?: number };
  /** Wall seconds spent per phase (index 0 = phase 1). */
  phaseSeconds: number[];
  /** The student updates each phase kept, and its rolled-back trials (index 0 = phase 1; absent: none yet). */
  updates?: UpdateAccount[];
  /** ISO time of writing. */
  savedAt: string;
  /**
   * Records metrics.jsonl held when the checkpoint was taken: a resume keeps those and drops the later ones
   * (absent in older checkpoints: records up to the cursor's step are kept).
   */
  metricsRecords?: number;
}

/**
 * The student updates a phase kept. Trial updates of the level-selection environment are rolled back, so
 * they are counted apart (`trials`): they cost wall time (in phaseSeconds) but train nothing.
 */
export interface UpdateAccount {
  /** Kept student updates (optimizer steps). */
  updates: number;
  /** Images in them. */
  images: number;
  /** Σ over those images of the cost share of the levels each distilled. */
  cost: number;
  /** Wall seconds inside the kept updates. */
  seconds: number;
  /** Rolled-back trial updates (one per episode batch of phases 2 and 3). */
  trials: number;
  /** sha-256 chain over each update's image hashes and flips: equal digests = same images in same batches. */
  digest: string;
}

/** Everything a checkpoint holds. */
export interface RunCheckpoint {
  state: RunStateJson;
  /** Student inference graph. */
  student: OnnxModel;
  /** Student parameters + optimizer state. */
  studentTrain: CheckpointState;
  /** The policy as PolicyNetwork saves it (`exportForInference()`). */
  policy?: OnnxModel;
  /** The meta-learned policy before the final adaptation (final checkpoint of a phase-4 run). */
  policyMeta?: OnnxModel;
  ppo?: PpoTrainerState;
  maml?: MamlTrainerState;
  gradnorm?: GradNormState;
  /** Task-loss runs: the task models and the labels-only student's training state. */
  task?: TaskCheckpoint;
}

/** What a checkpoint of a task-loss run adds (TASK_CHECKPOINT_FILES). */
export interface TaskCheckpoint {
  /** Inference graphs by file name (the student's task model, the labels-only student and its task model). */
  models: Record<string, OnnxModel>;
  /** The labels-only student's parameters and optimizer state. */
  labelsOnlyTrain?: Readonly<CheckpointState>;
}

/** A checkpoint read back (the policy files are loaded by the caller with its execution provider). */
export interface LoadedRunCheckpoint {
  dir: string;
  /** The state, migrated to RUN_STATE_VERSION. */
  state: RunStateJson;
  /** The format the folder was written in. */
  writtenVersion: number;
  studentTrain: CheckpointState;
  /** Path of policy.onnx when present. */
  policyFile?: string;
  ppo?: PpoTrainerState;
  maml?: MamlTrainerState;
  gradnorm?: GradNormState;
  /** The labels-only student's training state, when the run trains one (read for `resume` only). */
  labelsOnlyTrain?: CheckpointState;
}

/** `trainers.json`: the trainers' RNG streams (their optimizers are engine checkpoints beside it). */
interface TrainerRngs {
  ppo?: RngState;
  maml?: RngState;
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
    if (ckpt.policy) saveModel(ckpt.policy, path.join(tmp, CHECKPOINT_FILES.policy));
    if (ckpt.policyMeta) saveModel(ckpt.policyMeta, path.join(tmp, CHECKPOINT_FILES.policyMeta));
    // A light checkpoint keeps no optimizer state, the trainers' included (it is never resumed).
    if (ckpt.ppo?.optimizer && !light)
      saveCheckpoint(path.join(tmp, CHECKPOINT_FILES.ppoOptimizer), ckpt.ppo.optimizer);
    if (ckpt.maml?.outer && !light)
      saveCheckpoint(path.join(tmp, CHECKPOINT_FILES.mamlOptimizer), ckpt.maml.outer);
    if ((ckpt.ppo || ckpt.maml) && !light) {
      const rngs: TrainerRngs = {
        ...(ckpt.ppo ? { ppo: ckpt.ppo.rng } : {}),
        ...(ckpt.maml ? { maml: ckpt.maml.rng } : {}),
      };
      writeFileAtomic(
        path.join(tmp, CHECKPOINT_FILES.trainers),
        `${JSON.stringify(rngs)}
`,
      );
    }
    if (ckpt.gradnorm)
      writeFileAtomic(path.join(tmp, CHECKPOINT_FILES.gradnorm), `${JSON.stringify(ckpt.gradnorm)}\n`);
    for (const [file, model] of Object.entries(ckpt.task?.models ?? {}))
      saveModel(model, path.join(tmp, file));
    const labelsOnly = ckpt.task?.labelsOnlyTrain;
    if (labelsOnly) {
      saveCheckpoint(
        path.join(tmp, TASK_CHECKPOINT_FILES.labelsOnlyTrain),
        light ? withoutOptimizerState(labelsOnly) : labelsOnly,
      );
    }
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

/** What the checkpoint is read for: `resume` needs everything to continue exactly, `eval` only the models. */
export type CheckpointPurpose = 'resume' | 'eval';

/**
 * Reads the checkpoint `latest` points at (or the named one), migrating an older format where that is
 * exact for `purpose` and failing with one message where it is not (see module doc).
 */
export function readRunCheckpoint(
  run: RunDir,
  label?: string,
  purpose: CheckpointPurpose = 'resume',
): LoadedRunCheckpoint {
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
  const exists = (f: string) => fs.existsSync(file(f));
  const writtenVersion = state.version;
  if (writtenVersion !== RUN_STATE_VERSION) {
    state = migrateState(dir, state, purpose, exists(CHECKPOINT_FILES.ppoOptimizer));
  }
  const rngs: TrainerRngs = exists(CHECKPOINT_FILES.trainers)
    ? (JSON.parse(fs.readFileSync(file(CHECKPOINT_FILES.trainers), 'utf8')) as TrainerRngs)
    : {};
  const optimizer = (f: string) => (exists(f) ? loadCheckpoint(file(f)) : null);
  return {
    dir,
    state,
    writtenVersion,
    studentTrain: loadCheckpoint(file(CHECKPOINT_FILES.studentTrain)),
    ...(exists(CHECKPOINT_FILES.policy) ? { policyFile: file(CHECKPOINT_FILES.policy) } : {}),
    ...(rngs.ppo ? { ppo: { optimizer: optimizer(CHECKPOINT_FILES.ppoOptimizer), rng: rngs.ppo } } : {}),
    ...(rngs.maml ? { maml: { outer: optimizer(CHECKPOINT_FILES.mamlOptimizer), rng: rngs.maml } } : {}),
    ...(exists(CHECKPOINT_FILES.gradnorm)
      ? { gradnorm: JSON.parse(fs.readFileSync(file(CHECKPOINT_FILES.gradnorm), 'utf8')) as GradNormState }
      : {}),
    // Only resuming trains the labels-only student on (eval reads its inference graphs).
    ...(purpose === 'resume' && exists(TASK_CHECKPOINT_FILES.labelsOnlyTrain)
      ? { labelsOnlyTrain: loadCheckpoint(file(TASK_CHECKPOINT_FILES.labelsOnlyTrain)) }
      : {}),
  };
}

/**
 * Format 1 → 2. The JSON layout is the same; what format 1 lacks is the trainers' RNG streams. A resume
 * that would use a PPO trainer which has already updated (format 1 saved its Adam state but re-seeded its
 * shuffling per iteration), or a MAML trainer past its first epoch, cannot continue exactly.
 */
function migrateState(
  dir: string,
  state: RunStateJson,
  purpose: CheckpointPurpose,
  hasPpoOptimizer: boolean,
): RunStateJson {
  if (state.version !== 1) {
    throw new InputFileError(
      `checkpoint '${dir}' has format ${String(state.version)}; this rl-pyramidkd reads formats 1 and ${RUN_STATE_VERSION}`,
      { hint: 'open it with the rl-pyramidkd version that wrote it (or a newer one)' },
    );
  }
  const { phase, epoch } = state.cursor;
  const needsPpo = hasPpoOptimizer && phase <= 3;
  const needsMaml = phase === 4 && epoch > 0;
  if (purpose === 'resume' && (needsPpo || needsMaml)) {
    throw new InputFileError(
      `checkpoint '${dir}' has format 1, which does not hold the ${needsPpo ? 'PPO' : 'MAML'} trainer's state that resuming phase ${phase} needs (format ${RUN_STATE_VERSION} does)`,
      {
        hint: 'finish the run with the rl-pyramidkd version that started it, or start a new run; `rlpkd eval` still reads this checkpoint',
      },
    );
  }
  return { ...state, version: RUN_STATE_VERSION };
}
