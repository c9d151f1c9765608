/**
 * The task-level evaluation of a run's checkpoint on its held-out split, beside the distillation numbers:
 * fidelity of each student to the teacher per level, the task metric through the teacher's head, a probe
 * per backbone, the students' own heads, the policy by image content and the inference cost. Shared by
 * `rlpkd eval` and the end of `rlpkd train`. Each section that cannot be measured says why instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DistillSetup } from '../distill/setup';
import type { SelectionReport } from '../distill/evaluation';
import { TASK_CHECKPOINT_FILES } from '../distill/task-checkpoint-files';
import { RlpkdError } from '../errors';
import type { HeadModel, HeadTask } from '../heads/types';
import type { LogSink } from '../logging/logger';
import { loadModel } from '../onnx/model-io';
import { hasTaskLabels } from '../teach/task-feeds';
import { describeTaskModel } from '../distill/score-task-model';
import { TASK_LABELS } from '../teach/task-feeds';
import { PRIMARY_METRIC, type TaskScore } from '../teach/task-scorer';
import { runBackbones, type BackboneName, type EvalBackbone } from './backbones';
import { inferenceCost, type InferenceCost } from './inference-cost';
import { heldOutRecords, policyBySize, type PolicyBySize } from './policy-by-size';
import { probeBackbone } from './probe';
import { pyramidFidelity, type FidelityReport } from './pyramid-fidelity';
import {
  loadTeacherHead,
  scoreTaskModelOn,
  teacherHeadScores,
  type ScoreOrSkip,
  type ScoringOptions,
} from './teacher-head-scores';

/** A section's result, or why it was skipped. */
export type Section<T> = T | { skipped: string };

/** The primary task metric through the teacher's head, per backbone (null where that backbone was skipped). */
export interface TaskSummary {
  kind: HeadTask;
  metric: TaskScore['metric'];
  teacher: number | null;
  studentBefore: number | null;
  studentAfter: number | null;
  labelsOnly?: number | null;
}

/** Everything the evaluation measured beyond the distillation losses. */
export interface CheckpointEvaluation {
  /** Backbone files by role. */
  backbones: Partial<Record<BackboneName, string>>;
  /** Held-out images with task labels the task metrics ran on (the split's size). */
  fidelity: FidelityReport;
  /** The primary metric through the teacher's head, or null (then `teacherHead` says why). */
  task: TaskSummary | null;
  teacherHead: Section<{ file: string; scores: Partial<Record<BackboneName, ScoreOrSkip>> }>;
  probe: Section<{
    task: HeadTask;
    steps: number;
    lr: number;
    batchSize: number;
    seed: number;
    scores: Partial<Record<BackboneName, ScoreOrSkip>>;
  }>;
  ownHead: Section<{ studentAfter?: TaskScore; labelsOnly?: TaskScore }>;
  policy: Section<PolicyBySize>;
  cost: InferenceCost;
}

/** What evaluateCheckpoint reads. */
export interface CheckpointEvaluationInput {
  setup: DistillSetup;
  /** Folder of the checkpoint (student.onnx and, for task-loss runs, the task-model files). */
  checkpointDir: string;
  /** The held-out level selections (heldOutSelection), in held-out image order. */
  selection: SelectionReport;
  log: LogSink;
  /**
   * The backbones the probe trains on (default every one): an ablation's branches probe only their own
   * student, since the teacher and the untrained student are the same in every branch.
   */
  probeBackbones?: readonly BackboneName[];
}

/** A score's primary value, or null for a skipped one. */
function primary(s: ScoreOrSkip | undefined): number | null {
  return s && 'value' in s ? s.value : null;
}

/** Runs every section (see module doc). */
export async function evaluateCheckpoint(input: CheckpointEvaluationInput): Promise<CheckpointEvaluation> {
  const { setup, log } = input;
  const config = setup.config;
  const backbones = runBackbones(config.models, input.checkpointDir);
  const val = setup.splits.val;
  const scoring: ScoringOptions = {
    val,
    preprocess: setup.preprocess,
    size: setup.size,
    batchSize: config.data.batch_size,
    ep: setup.ep,
    log,
  };
  log.info(
    `eval: fidelity of ${backbones.length - 1} student backbones on ${setup.heldOut.hashes.length} images`,
  );
  const fidelity = await pyramidFidelity(backbones, setup.pairs, setup.heldOut.images, {
    batchSize: config.data.batch_size,
    ep: setup.ep,
  });

  const teacher = backbones.find((b) => b.name === 'teacher')!;
  const headFile = config.models.teacher_head;
  const head = headFile ? loadTeacherHead(headFile, teacher.model, setup.size) : undefined;
  const noLabels = (task: HeadTask, ds = val): string | undefined =>
    hasTaskLabels(task, ds)
      ? undefined
      : `the ${ds === val ? 'held-out' : 'training'} split '${ds.split}' has no ${task} labels (${TASK_LABELS[task]})`;

  let teacherHead: CheckpointEvaluation['teacherHead'];
  let summary: TaskSummary | null = null;
  const headMissing = 'models.teacher_head is not set (`rlpkd teach` writes a head.onnx)';
  const unlabelled = head ? noLabels(head.task) : undefined;
  if (!head || !headFile) {
    teacherHead = { skipped: headMissing };
  } else if (unlabelled) {
    teacherHead = { skipped: unlabelled };
  } else {
    log.info(`eval: the teacher's ${head.task} head on ${backbones.length} backbones`);
    const scores = await teacherHeadScores(head, backbones, scoring);
    teacherHead = { file: headFile, scores };
    summary = {
      kind: head.task,
      metric: PRIMARY_METRIC[head.task],
      teacher: primary(scores.teacher),
      studentBefore: primary(scores.studentBefore),
      studentAfter: primary(scores.studentAfter),
      ...(scores.labelsOnly ? { labelsOnly: primary(scores.labelsOnly) } : {}),
    };
  }

  // The probe trains a head of the teacher head's kind on its levels: without one there is no kind to train.
  const probeSkip = !setup.config.eval.probe.enabled
    ? 'eval.probe.enabled is false'
    : !head
      ? `${headMissing}: the probe trains a head of its kind`
      : (unlabelled ?? noLabels(head.task, setup.splits.train));
  const probe: CheckpointEvaluation['probe'] =
    probeSkip || !head ? { skipped: probeSkip! } : await runProbes(input, backbones, head, scoring);
  const ownHead = await ownHeadScores(input, backbones, noLabels, scoring);

  const records = heldOutRecords(setup.heldOut.files, val);
  const policy: CheckpointEvaluation['policy'] = records.every((r) => r !== undefined)
    ? policyBySize(
        input.selection.selections,
        records as NonNullable<(typeof records)[number]>[],
        setup.levelNames,
        input.selection.budgets ? { budgets: input.selection.budgets, costs: setup.costs } : undefined,
      )
    : { skipped: 'the held-out images are not all records of the held-out split' };

  const outputOf = (name: string) => setup.pairs.find((p) => p.name === name)!.student.output;
  const cost = inferenceCost(
    teacher.model,
    backbones.find((b) => b.name === 'studentBefore')!.model,
    setup.size,
    input.selection.selections,
    outputOf,
  );
  return {
    backbones: Object.fromEntries(backbones.map((b) => [b.name, b.file])),
    fidelity,
    task: summary,
    teacherHead,
    probe,
    ownHead,
    policy,
    cost,
  };
}

async function runProbes(
  input: CheckpointEvaluationInput,
  backbones: readonly EvalBackbone[],
  head: HeadModel,
  scoring: ScoringOptions,
): Promise<CheckpointEvaluation['probe']> {
  const { setup, log } = input;
  const p = setup.config.eval.probe;
  const train = setup.splits.train;
  const task = head.task;
  const settings = {
    task,
    levels: head.levels.map((l) => l.name),
    numClasses: train.classes.length,
    steps: p.steps,
    lr: p.lr,
    batchSize: p.batch_size,
    seed: p.seed,
  };
  const scores: Partial<Record<BackboneName, ScoreOrSkip>> = {};
  const probed = input.probeBackbones;
  for (const b of probed ? backbones.filter((x) => probed.includes(x.name)) : backbones) {
    log.info(`eval: probe (${task}, ${p.steps} steps) on the ${b.name} backbone`);
    try {
      scores[b.name] = await probeBackbone(b.model, train, settings, {
        ...scoring,
        numWorkers: setup.config.data.num_workers,
      });
    } catch (err) {
      // A backbone without a level the head reads is skipped; anything else is a failure.
      if (!(err instanceof RlpkdError)) throw err;
      scores[b.name] = { skipped: err.message };
    }
  }
  return { task, steps: p.steps, lr: p.lr, batchSize: p.batch_size, seed: p.seed, scores };
}

async function ownHeadScores(
  input: CheckpointEvaluationInput,
  backbones: readonly EvalBackbone[],
  noLabels: (task: HeadTask) => string | undefined,
  scoring: ScoringOptions,
): Promise<CheckpointEvaluation['ownHead']> {
  const files = [
    ['studentAfter', TASK_CHECKPOINT_FILES.studentTaskModel],
    ['labelsOnly', TASK_CHECKPOINT_FILES.labelsOnlyTaskModel],
  ] as const;
  const present = files.filter(([, f]) => fs.existsSync(path.join(input.checkpointDir, f)));
  if (present.length === 0) {
    return {
      skipped:
        'the checkpoint has no student task model (the run did not train with distill.task_loss_weight)',
    };
  }
  const out: { studentAfter?: TaskScore; labelsOnly?: TaskScore } = {};
  for (const [name, file] of present) {
    const backbone =
      backbones.find((b) => b.name === name) ?? backbones.find((b) => b.name === 'studentAfter')!;
    const model = loadModel(path.join(input.checkpointDir, file));
    const task = describeTaskModel(model, backbone.model, { size: scoring.size }).task;
    const why = noLabels(task);
    if (why) return { skipped: why };
    input.log.info(`eval: ${file}`);
    out[name] = await scoreTaskModelOn(model, backbone.model, task, scoring);
  }
  return out;
}
