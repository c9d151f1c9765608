/**
 * The labels-only baseline (`distill.labels_only_baseline`): a second student trained on the task loss
 * alone, on the same schedule as the distilled one, so that "distillation helps" is measured against the
 * same images, flips, optimizer and number of updates without the teacher.
 *
 * Where it runs: beside each kept update of the distilled student (phases 1 and 3), on the very batch that
 * update used (its teacher features already attached), as one more fused step of its own TrainingSession on
 * the distiller's artifacts fed distillation weight 0 (task-objective.ts). So it costs exactly one student
 * update per distilled update, needs no second set of graphs, and cannot drift from the distilled student's
 * schedule; the environment's trial updates (rolled back) are not updates and do not touch it. Weight 0
 * times the distillation loss contributes exactly zero gradient, so this is bit for bit the run the same
 * schedule with `distill.distill_weight: 0` would give (tested).
 */
import { RlpkdError } from '../errors';
import type { ExecutionProviderName } from '../runtime/session';
import type { CheckpointState } from '../training/checkpoint';
import { TrainingSession } from '../training/training-session';
import type { StudentDistiller, TaughtBatch } from './student-distiller';
import { HEAD_LOSS_NAMES } from '../heads/head-loss';

/** What one baseline update did. */
export interface BaselineStepResult {
  /** Its task loss on the batch (before the update). */
  taskLoss: number;
  gradNorm: number;
}

/** The labels-only student (see module doc). */
export class LabelsOnlyBaseline {
  private constructor(
    readonly session: TrainingSession,
    private readonly distiller: StudentDistiller,
    private readonly taskWeight: number,
  ) {}

  /**
   * Opens the baseline on the distiller's artifacts, from `checkpoint` (a resumed run's) or else from the
   * distiller's current state (a new run creates it before the first update: both students start alike).
   */
  static async create(
    distiller: StudentDistiller,
    options: {
      taskWeight: number;
      maxGradNorm?: number;
      checkpoint?: CheckpointState;
      executionProvider?: ExecutionProviderName;
    },
  ): Promise<LabelsOnlyBaseline> {
    if (!(options.taskWeight > 0)) {
      throw new RlpkdError(
        'labels-only baseline: it trains on the task loss alone, so its weight must be > 0',
        {
          hint: 'set distill.task_loss_weight > 0',
        },
      );
    }
    const src = distiller.session;
    const session = await TrainingSession.create({
      artifacts: src.artifacts,
      checkpoint: options.checkpoint ?? distiller.checkpointState(),
      ...(options.executionProvider ? { executionProvider: options.executionProvider } : {}),
      ...(options.maxGradNorm !== undefined ? { maxGradNorm: options.maxGradNorm } : {}),
    });
    return new LabelsOnlyBaseline(session, distiller, options.taskWeight);
  }

  /** One update on the batch the distilled student just trained on (same mask and level weights, weight 0). */
  async step(batch: TaughtBatch, mask: Float32Array, weights: Float32Array): Promise<BaselineStepResult> {
    const feeds = await this.distiller.stepFeeds(batch, mask, weights, { distill: 0, task: this.taskWeight });
    const r = await this.session.fusedStep(feeds);
    const taskLoss = (r.outputs[HEAD_LOSS_NAMES.loss].data as Float32Array)[0];
    return { taskLoss, gradNorm: r.gradNorm };
  }

  /** Parameters, optimizer state and step (copies). */
  checkpointState(): CheckpointState {
    return this.session.checkpointState();
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
