/**
 * A user's task model scored with its task's metric on a labelled split: what its outputs are (FCOS
 * detection outputs, or one logits output of rank 2 for classification, rank 4 for segmentation) is read
 * off the graph, the detection levels off the backbone the head was built on.
 */
import { imageInput } from '../analysis/pyramid';
import type { Preprocess } from '../data/image-loader';
import type { Dataset } from '../data/types';
import { RlpkdError } from '../errors';
import { FCOS_OUTPUTS } from '../heads/fcos-head';
import { headLevelsOf } from '../heads/head-levels';
import type { HeadModel, HeadTask } from '../heads/types';
import type { LogSink } from '../logging/logger';
import type { OnnxModel } from '../onnx/types';
import { createSession, type ExecutionProviderName } from '../runtime/session';
import { modelPredictor, scoreSplit } from '../teach/score-split';
import type { TaskScore } from '../teach/task-scorer';

/** Options of describeTaskModel. */
export interface DescribeTaskModelOptions {
  /** The task, when the outputs do not say it (default: read off the outputs). */
  task?: HeadTask;
  /** Image size the model runs at. */
  size: { height: number; width: number };
}

function staticDim(model: OnnxModel, output: string, axis: number): number {
  const d = model.graph.outputs.find((o) => o.name === output)?.shape?.[axis];
  if (typeof d !== 'number' || d < 1) {
    throw new RlpkdError(
      `task model '${model.graph.name}': output '${output}' has no fixed size on axis ${axis} (the class count)`,
      { hint: 'export the task model with a static class dimension' },
    );
  }
  return d;
}

/**
 * The head description scoring needs (task, outputs, classes, detection levels) of a task model whose
 * backbone is `backbone` (its pyramid outputs are what the detection head reads).
 */
export function describeTaskModel(
  taskModel: OnnxModel,
  backbone: OnnxModel,
  options: DescribeTaskModelOptions,
): HeadModel {
  const outputs = taskModel.graph.outputs;
  const isDetection = Object.values(FCOS_OUTPUTS).every((n) => outputs.some((o) => o.name === n));
  const rank = outputs.length === 1 ? outputs[0]!.shape?.length : undefined;
  const task: HeadTask | undefined =
    options.task ??
    (isDetection ? 'detection' : rank === 2 ? 'classification' : rank === 4 ? 'segmentation' : undefined);
  const base = { model: taskModel, imageHeight: options.size.height, imageWidth: options.size.width };
  if (task === 'detection') {
    if (!isDetection) {
      throw new RlpkdError(
        `task model '${taskModel.graph.name}' lacks the detection outputs ${Object.values(FCOS_OUTPUTS).join(', ')}`,
        { hint: 'pass a task model written by `rlpkd teach` with a detection head' },
      );
    }
    // The levels the head reads: the backbone's pyramid outputs that the task model consumes.
    const consumed = new Set(taskModel.graph.nodes.flatMap((n) => n.inputs));
    const levels = headLevelsOf(backbone, options.size).filter((l) => consumed.has(l.name));
    if (levels.length === 0) {
      throw new RlpkdError(
        `task model '${taskModel.graph.name}' reads none of the student's pyramid outputs`,
        {
          hint: 'the detection head must be composed on the student backbone (rlpkd teach)',
        },
      );
    }
    const numClasses = staticDim(taskModel, FCOS_OUTPUTS.cls, 2);
    return { ...base, task, levels, numClasses, outputs: { ...FCOS_OUTPUTS } };
  }
  if (task === 'classification' || task === 'segmentation') {
    const logits = outputs[0]?.name;
    if (outputs.length !== 1 || !logits) {
      throw new RlpkdError(
        `task model '${taskModel.graph.name}' has ${outputs.length} outputs; a ${task} model has one`,
      );
    }
    return { ...base, task, levels: [], numClasses: staticDim(taskModel, logits, 1), outputs: { logits } };
  }
  throw new RlpkdError(
    `cannot tell the task of model '${taskModel.graph.name}' from its outputs (${outputs.map((o) => o.name).join(', ')})`,
    { hint: 'pass --task detection|segmentation|classification' },
  );
}

/** Options of scoreTaskModel. */
export interface ScoreTaskModelOptions {
  preprocess: Preprocess;
  batchSize: number;
  ep?: ExecutionProviderName;
  log?: LogSink;
}

/** The task metric of `taskModel` (described by `head`) on `dataset`, in order, no flips. */
export async function scoreTaskModel(
  taskModel: OnnxModel,
  head: HeadModel,
  dataset: Dataset,
  options: ScoreTaskModelOptions,
): Promise<TaskScore> {
  const session = await createSession(taskModel, { executionProvider: options.ep ?? 'cpu' });
  try {
    const scores = await scoreSplit(
      dataset,
      head,
      { model: modelPredictor(session, imageInput(taskModel).name, head) },
      {
        preprocess: options.preprocess,
        batchSize: options.batchSize,
        ...(options.log ? { log: options.log } : {}),
      },
    );
    return scores.model!;
  } finally {
    await session.release();
  }
}
