/**
 * One pass over an evaluation split (in order, no flips) scoring several predictors at once: the task
 * model (backbone + head, run with onnxruntime and decoded) and the chance-level prior.
 */
import { BatchLoader, type Batch } from '../data/batch-loader';
import type { Preprocess } from '../data/image-loader';
import type { Dataset } from '../data/types';
import { decodeFcos } from '../heads/fcos-decode';
import { segmentationLabelMaps } from '../heads/segmentation-decode';
import type { HeadModel } from '../heads/types';
import type { LogSink } from '../logging/logger';
import type { GraphSession } from '../runtime/session';
import { Rng } from '../util/rng';
import { TaskScorer, type TaskPrediction, type TaskScore } from './task-scorer';

/** Something that predicts a batch's labels. */
export type Predictor = (batch: Batch) => Promise<TaskPrediction> | TaskPrediction;

/** A predictor running a task model (image input `input`, the head's outputs) and decoding its outputs. */
export function modelPredictor(session: GraphSession, input: string, head: HeadModel): Predictor {
  return async (batch) => {
    const out = await session.run({ [input]: batch.images }, Object.values(head.outputs));
    if (head.task === 'classification') {
      return { task: 'classification', logits: out[head.outputs.logits!]!.data as Float32Array };
    }
    if (head.task === 'segmentation') {
      const logits = out[head.outputs.logits!]!;
      return {
        task: 'segmentation',
        labelMaps: segmentationLabelMaps(logits.data as Float32Array, logits.dims),
      };
    }
    const detections = decodeFcos(
      {
        cls: out[head.outputs.cls!]!.data as Float32Array,
        box: out[head.outputs.box!]!.data as Float32Array,
        centerness: out[head.outputs.centerness!]!.data as Float32Array,
      },
      {
        levels: head.levels,
        numClasses: head.numClasses,
        imageHeight: head.imageHeight,
        imageWidth: head.imageWidth,
      },
    );
    return { task: 'detection', detections };
  };
}

/** Options of scoreSplit. */
export interface ScoreSplitOptions {
  preprocess: Preprocess;
  batchSize: number;
  numWorkers?: number;
  log?: LogSink;
}

/** Scores every predictor on `dataset`; returns their metrics by name. */
export async function scoreSplit(
  dataset: Dataset,
  head: HeadModel,
  predictors: Record<string, Predictor>,
  options: ScoreSplitOptions,
): Promise<Record<string, TaskScore>> {
  const loader = new BatchLoader(dataset, {
    batchSize: options.batchSize,
    preprocess: options.preprocess,
    rng: new Rng('evaluation'),
    shuffle: false,
    hflip: 0,
    ...(options.numWorkers ? { numWorkers: options.numWorkers } : {}),
    ...(options.log ? { log: options.log } : {}),
    name: `evaluation split '${dataset.split}'`,
  });
  const scorers = Object.fromEntries(
    Object.keys(predictors).map((name) => [name, new TaskScorer(head.task, head.numClasses)]),
  );
  for await (const batch of loader.epoch(0)) {
    for (const [name, predict] of Object.entries(predictors)) scorers[name]!.add(batch, await predict(batch));
  }
  return Object.fromEntries(Object.entries(scorers).map(([name, s]) => [name, s.result()]));
}
