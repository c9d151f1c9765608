/**
 * The task metric through the teacher's task head (models.teacher_head: pyramid levels in, task outputs
 * out) on each backbone's pyramid, with no training: can the student's pyramid stand in for the teacher's?
 * The head is spliced onto each backbone (composeTaskModel) and the task model scored on the held-out split
 * with the field's metric. A backbone whose levels do not fit the head (a missing level, other channels) is
 * skipped with the reason.
 */
import type { InputSize } from '../analysis/pyramid';
import type { Preprocess } from '../data/image-loader';
import type { Dataset } from '../data/types';
import { describeTaskModel, scoreTaskModel } from '../distill/score-task-model';
import { RlpkdError } from '../errors';
import { composeTaskModel } from '../heads/compose-task-model';
import { headLevelsOf } from '../heads/head-levels';
import type { HeadModel, HeadTask } from '../heads/types';
import type { LogSink } from '../logging/logger';
import { loadModel } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import type { ExecutionProviderName } from '../runtime/session';
import type { TaskScore } from '../teach/task-scorer';
import type { BackboneName, EvalBackbone } from './backbones';

/** A score, or why there is none. */
export type ScoreOrSkip = TaskScore | { skipped: string };

/** Scoring settings shared by the task sections. */
export interface ScoringOptions {
  val: Dataset;
  preprocess: Preprocess;
  size: InputSize;
  batchSize: number;
  ep?: ExecutionProviderName;
  log?: LogSink;
}

/** The teacher's head read from its file, described on the teacher (task, classes, outputs, levels). */
export function loadTeacherHead(file: string, teacher: OnnxModel, size: InputSize): HeadModel {
  const graph = loadModel(file);
  const bare: HeadModel = {
    task: 'classification',
    model: graph,
    levels: [],
    outputs: {},
    numClasses: 0,
    imageHeight: size.height,
    imageWidth: size.width,
  };
  // The task, classes and outputs are read off the task model the head makes with the teacher.
  const described = describeTaskModel(composeTaskModel(teacher, bare), teacher, { size });
  return { ...described, model: graph };
}

/** Why `head` cannot read `backbone`'s pyramid, or undefined when it can. */
export function headMismatch(head: HeadModel, backbone: OnnxModel, size: InputSize): string | undefined {
  const levels = headLevelsOf(backbone, size);
  for (const input of head.model.graph.inputs) {
    const level = levels.find((l) => l.name === input.name);
    if (!level) return `the head reads '${input.name}', which the backbone does not output`;
    const channels = input.shape?.[1];
    if (typeof channels === 'number' && channels !== level.channels) {
      return `the head reads ${channels} channels from '${input.name}', the backbone has ${level.channels}`;
    }
  }
  return undefined;
}

/** The score of a task model whose backbone is `backbone` (described on it, as `task`). */
export async function scoreTaskModelOn(
  taskModel: OnnxModel,
  backbone: OnnxModel,
  task: HeadTask | undefined,
  options: ScoringOptions,
): Promise<TaskScore> {
  const described = describeTaskModel(taskModel, backbone, { size: options.size, ...(task ? { task } : {}) });
  return scoreTaskModel(taskModel, described, options.val, {
    preprocess: options.preprocess,
    batchSize: options.batchSize,
    ...(options.ep ? { ep: options.ep } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}

/** The score of `head` spliced onto `backbone`. */
export function scoreHeadOn(
  head: HeadModel,
  backbone: OnnxModel,
  options: ScoringOptions,
): Promise<TaskScore> {
  return scoreTaskModelOn(composeTaskModel(backbone, head), backbone, head.task, options);
}

/** The teacher head's score on every backbone (see module doc). */
export async function teacherHeadScores(
  head: HeadModel,
  backbones: readonly EvalBackbone[],
  options: ScoringOptions,
): Promise<Partial<Record<BackboneName, ScoreOrSkip>>> {
  const out: Partial<Record<BackboneName, ScoreOrSkip>> = {};
  for (const b of backbones) {
    const why = headMismatch(head, b.model, options.size);
    if (why) {
      out[b.name] = { skipped: why };
      continue;
    }
    try {
      out[b.name] = await scoreHeadOn(head, b.model, options);
    } catch (err) {
      if (!(err instanceof RlpkdError)) throw err;
      out[b.name] = { skipped: err.message };
    }
  }
  return out;
}
