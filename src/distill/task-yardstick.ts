/**
 * The task yardstick of the reward (`rl.reward.yardstick: task`): each image's task loss on its labels with
 * the student's pyramid fed to the teacher's FROZEN head, i.e. how well the student's pyramid stands in for
 * the teacher's. One session of the head plus its loss (per image, as if each image were a batch of one),
 * the head's weights as constants; it never trains.
 */
import { appendHeadLoss, HEAD_LOSS_NAMES } from '../heads/head-loss';
import { RlpkdError } from '../errors';
import { createSession, type ExecutionProviderName, type GraphSession } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import { targetFeeds } from '../teach/task-feeds';
import type { RunHead } from './student-head';
import type { TaughtBatch, Yardstick } from './student-distiller';

/** The frozen teacher head's per-image task loss on the student's level features (see module doc). */
export class TaskYardstick implements Yardstick {
  private constructor(
    private readonly run: RunHead,
    private readonly session: GraphSession,
  ) {}

  /** Opens the head + per-image loss graph. */
  static async create(run: RunHead, options: { ep?: ExecutionProviderName } = {}): Promise<TaskYardstick> {
    const withLoss = appendHeadLoss(run.head.model, run.head, { perSample: true });
    const session = await createSession(withLoss.model, {
      ...(options.ep ? { executionProvider: options.ep } : {}),
      memArena: false,
    });
    return new TaskYardstick(run, session);
  }

  /**
   * Per-image task losses [N] of a labelled batch, from the student's level features by level name (the
   * tensors the distillation loss compares, adapters applied).
   */
  async measure(batch: TaughtBatch, features: Record<string, HostTensor>): Promise<Float64Array> {
    const feeds: Record<string, HostTensor> = { ...targetFeeds(this.run.head, batch) };
    for (const [input, pair] of Object.entries(this.run.levels)) {
      const f = features[pair.name];
      if (!f) throw new RlpkdError(`task yardstick: no student features of level ${pair.name}`);
      feeds[input] = f;
    }
    const out = await this.session.run(feeds, [HEAD_LOSS_NAMES.perSample]);
    return Float64Array.from(out[HEAD_LOSS_NAMES.perSample].data as Float32Array);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
