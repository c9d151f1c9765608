/**
 * What the level-selection environment needs from the student's distillation step, and nothing more: the
 * distiller (src/distill/student-distiller.ts) owns the student, the teacher and their graphs; the
 * environment keeps only the MDP (states, budgets, rewards). Levels, masks, weights and distances are in
 * the distiller's level order (finest first); the environment maps its decision order onto it.
 */
import type { HostTensor } from '../runtime/tensors';

/** Images plus what identifies them for a teacher feature cache (sha256 per image and flip flags). */
export interface ImageBatch {
  images: HostTensor;
  hashes?: readonly string[];
  flipped?: readonly boolean[];
}

/** One distilled level as the environment sees it. */
export interface DistillerLevel {
  name: string;
  stride: number;
  /** Channels of the student tensor the loss compares (the policy state pools it). */
  channels: number;
}

/** What `Distiller.evaluate` measured on a batch of N images, without training. */
export interface DistillerEvaluation {
  /** [N, L] per-image unmasked level distances e[n, l]. */
  distances: Float32Array;
  /**
   * Student level features [N, C_l, H_l, W_l] by level name (when asked for), and the student tensors
   * asked for by `tensors` by their names (the 'deploy' policy state's trunk tensors).
   */
  features?: Record<string, HostTensor>;
  /**
   * [N] per-image loss on the reward's yardstick, when the distiller measures one other than the all-level
   * distance (the task yardstick: the student's pyramid through the teacher's frozen head).
   */
  yardstick?: Float64Array;
}

/** What `Distiller.evaluate` returns besides the distances. */
export interface EvaluateOptions {
  /** The student's level features. */
  features?: boolean;
  /** Intermediate student tensors by name (implies `features`). */
  tensors?: readonly string[];
}

/** What `Distiller.trial` measured: the update's own loss parts and the distances after it. */
export interface DistillerTrial {
  /**
   * [N, L] per-image distances in the update's forward pass (before it); NaN for a level the image did not
   * select when the update computed only the selected levels.
   */
  perSample: Float32Array;
  /** [N, L] per-image distances after the update (measured before it was undone). */
  after: Float32Array;
  /** [N] the yardstick after the update, when the distiller measures one (see DistillerEvaluation). */
  afterYardstick?: Float64Array;
}

/** The student's distillation step as the environment drives it (see module doc). */
export interface Distiller {
  readonly levels: readonly DistillerLevel[];
  /**
   * The batch with what the distiller computes once per batch (the teacher's features) attached; pass it
   * to the calls below to reuse that work.
   */
  prepare(batch: ImageBatch): Promise<ImageBatch>;
  /** Per-image per-level distances, and the student's features when asked for (EvaluateOptions). */
  evaluate(batch: ImageBatch, options?: EvaluateOptions): Promise<DistillerEvaluation>;
  /**
   * A trial update that leaves no trace: snapshot → fresh optimizer state → one update on the masked
   * ([N, L]), weighted ([L]) loss → measure → restore.
   */
  trial(batch: ImageBatch, mask: Float32Array, weights: Float32Array): Promise<DistillerTrial>;
  /** One kept update on the masked, weighted loss (the running optimizer state). */
  step(batch: ImageBatch, mask: Float32Array, weights: Float32Array): Promise<{ perSample: Float32Array }>;
}
