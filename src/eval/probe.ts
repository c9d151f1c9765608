/**
 * The probe: a fresh head of one kind trained on each frozen backbone under the same fixed, seeded budget
 * (eval.probe: steps, learning rate, batch size, seed: the same initial head and the same batches for every
 * backbone), then scored on the held-out split. It measures how much task information a pyramid holds,
 * where the teacher's head measures whether it can stand in for the teacher's. Trained with the same code
 * as `rlpkd teach --set teach.freeze_backbone=true` (src/teach/head-training.ts). A probe whose loss turns
 * non-finite is an error (reported as that backbone's skip reason), not a score of 0.
 */
import type { InputSize } from '../analysis/pyramid';
import { BatchLoader } from '../data/batch-loader';
import type { Dataset } from '../data/types';
import { RlpkdError } from '../errors';
import { headLevelsOf } from '../heads/head-levels';
import { HEAD_LOSS_NAMES } from '../heads/head-loss';
import type { HeadTask } from '../heads/types';
import type { OnnxModel } from '../onnx/types';
import { buildTaskHead, createHeadTraining, exportTaskModel, trainHead } from '../teach/head-training';
import type { TaskScore } from '../teach/task-scorer';
import { Rng } from '../util/rng';
import { scoreTaskModelOn, type ScoringOptions } from './teacher-head-scores';

/** The probe's budget and head (eval.probe, plus the task and levels). */
export interface ProbeSettings {
  task: HeadTask;
  /** Levels the head reads (output or level names), default every level of the backbone. */
  levels?: readonly string[];
  numClasses: number;
  steps: number;
  lr: number;
  batchSize: number;
  seed: number;
}

/** Head shape constants: `rlpkd teach`'s defaults (teach.head.tower_convs, segmentation_width). */
const PROBE_HEAD = { towerConvs: 2, segmentationWidth: 64 } as const;

/** Trains the probe head on the frozen `backbone` with `train`, and scores it on the held-out split. */
export async function probeBackbone(
  backbone: OnnxModel,
  train: Dataset,
  settings: ProbeSettings,
  options: ScoringOptions & { numWorkers?: number },
): Promise<TaskScore> {
  const size: InputSize = options.size;
  const head = buildTaskHead(settings.task, {
    levels: headLevelsOf(backbone, size, settings.levels),
    numClasses: settings.numClasses,
    imageHeight: size.height,
    imageWidth: size.width,
    seed: settings.seed,
    ...PROBE_HEAD,
  });
  const training = await createHeadTraining({
    backbone,
    head,
    freezeBackbone: true,
    optimizer: { type: 'adamw', lr: settings.lr, weightDecay: 0 },
    schedule: { type: 'constant' },
    gradClip: 10,
    plannedSteps: settings.steps,
    ...(options.ep ? { ep: options.ep } : {}),
  });
  try {
    const loader = new BatchLoader(train, {
      batchSize: settings.batchSize,
      preprocess: options.preprocess,
      rng: new Rng(settings.seed).fork('probe-data'),
      shuffle: true,
      hflip: 0,
      ...(options.numWorkers ? { numWorkers: options.numWorkers } : {}),
      ...(options.log ? { log: options.log } : {}),
      name: `probe training split '${train.split}'`,
    });
    let diverged: number | undefined;
    await trainHead(training, {
      loader,
      epochs: Math.ceil(settings.steps / Math.max(1, loader.batchesPerEpoch)),
      maxSteps: settings.steps,
      onStep: ({ step, values }) => {
        if (diverged === undefined && !Number.isFinite(values[HEAD_LOSS_NAMES.loss]!)) diverged = step;
      },
    });
    if (diverged !== undefined) {
      // A diverged head scores as if the pyramid held nothing: say so instead of reporting that 0.
      throw new RlpkdError(`the probe diverged (non-finite loss at step ${diverged} of ${settings.steps})`, {
        hint: 'lower eval.probe.lr',
      });
    }
    const trained = await exportTaskModel(training);
    return await scoreTaskModelOn(trained, backbone, settings.task, options);
  } finally {
    await training.session.release();
  }
}
