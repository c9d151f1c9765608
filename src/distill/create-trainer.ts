/** The student's DistillTrainer as a run configures it: one construction for `train` and `eval`. */
import { FeatureCache } from '../data/feature-cache';
import type { LogSink } from '../logging/logger';
import { DistillTrainer, type DistillTrainerOptions } from './distill-trainer';
import { studentOptimizer } from './selection-env';
import type { DistillSetup } from './setup';

/** Options that differ between callers (training adds clipping, GradNorm's W, a resumed checkpoint). */
export type TrainerExtras = Partial<
  Pick<DistillTrainerOptions, 'maxGradNorm' | 'sharedParameter' | 'checkpoint'>
>;

/** Builds the student trainer from a prepared setup: loss, optimizer, teacher feature cache per config. */
export async function createDistillTrainer(
  setup: DistillSetup,
  log: LogSink,
  extras: TrainerExtras = {},
): Promise<DistillTrainer> {
  const config = setup.config;
  const fc = config.distill.feature_cache;
  return DistillTrainer.create({
    teacher: setup.teacher,
    teacherSession: setup.teacherSession,
    student: setup.student,
    imageInput: setup.studentImageInput,
    teacherImageInput: setup.teacherImageInput,
    pairs: setup.pairs,
    loss: config.distill.loss,
    tau: config.distill.cwd_tau,
    trainable: setup.trainable,
    optimizer: studentOptimizer(setup),
    executionProvider: setup.ep,
    ...extras,
    ...(fc.enabled
      ? {
          featureCache: {
            cache: new FeatureCache(fc.dir, { maxBytes: fc.max_size_mb * 2 ** 20, log }),
            teacherHash: setup.teacherHash,
            preprocess: { ...setup.preprocess, levels: setup.pairs.map((p) => p.teacher.output) },
          },
        }
      : {}),
  });
}
