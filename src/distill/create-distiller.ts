/** The run's StudentDistiller as its config describes it: one construction for `train` and `eval`. */
import { FeatureCache } from '../data/feature-cache';
import type { LogSink } from '../logging/logger';
import type { OptimizerConfig } from '../training/optimizers';
import type { DistillSetup } from './setup';
import { distillerArtifactsDir, StudentDistiller, type StudentDistillerOptions } from './student-distiller';
import { TaskYardstick } from './task-yardstick';

/** Options that differ between callers (training adds GradNorm's W, a resumed checkpoint, the cache folder). */
export type DistillerExtras = Partial<
  Pick<StudentDistillerOptions, 'sharedParameter' | 'checkpoint' | 'intraOpNumThreads'>
> & {
  /** Folder caching the artifacts (a run's `artifacts/`); default: built in memory. */
  artifactsRoot?: string;
};

/** The student optimizer of a run config as the engine's OptimizerConfig. */
export function studentOptimizer(setup: DistillSetup): OptimizerConfig {
  const o = setup.config.distill.optimizer;
  return o.type === 'adamw'
    ? { type: 'adamw', lr: o.lr, weightDecay: o.weight_decay, betas: o.betas, eps: o.eps }
    : { type: 'sgd', lr: o.lr, momentum: o.momentum, weightDecay: o.weight_decay };
}

/**
 * Builds the run's distiller from a prepared setup: loss, optimizer, clipping, teacher feature cache, and
 * the task objective (the student's own head) and task yardstick when the config uses them.
 */
export async function createStudentDistiller(
  setup: DistillSetup,
  log: LogSink,
  extras: DistillerExtras = {},
): Promise<StudentDistiller> {
  const config = setup.config;
  const fc = config.distill.feature_cache;
  const { artifactsRoot, ...rest } = extras;
  const task = setup.task;
  const yardstick =
    task && config.rl.reward.yardstick === 'task'
      ? await TaskYardstick.create(task.teacherHead, { ep: setup.ep })
      : undefined;
  const created = StudentDistiller.create({
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
    updates: config.distill.updates,
    trialOptimizerState: config.rl.environment.trial_optimizer_state,
    trialLrScale: config.rl.environment.trial_lr_scale,
    ...(config.distill.grad_clip !== null ? { maxGradNorm: config.distill.grad_clip } : {}),
    ...(artifactsRoot ? { artifactsDir: distillerArtifactsDir(artifactsRoot, 'all') } : {}),
    ...(task?.studentHead
      ? {
          head: task.studentHead.head,
          objectiveWeights: { distill: config.distill.distill_weight, task: config.distill.task_loss_weight },
        }
      : {}),
    ...(yardstick ? { yardstick } : {}),
    ...rest,
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
  // The distiller releases the yardstick; until it exists, a failure here must.
  return created.catch(async (err: unknown) => {
    await yardstick?.release();
    throw err;
  });
}
