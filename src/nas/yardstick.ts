/**
 * The validation loss the NAS objective is measured with. An interface, so that another yardstick (the
 * task loss through the teacher's frozen head) can replace the features one without touching the
 * searches. The features yardstick is the held-out all-level distillation loss of `rlpkd eval` (mean over
 * images of Σ_l e[n, l]): it reads no gate, which is why DARTS needs the unrolled gradient.
 */
import type { StudentDistiller, TaughtBatch } from '../distill/student-distiller';

/** A validation loss of the distiller's current student. */
export interface ValidationYardstick {
  /** 'features' (all-level distillation loss) or another yardstick's name. */
  readonly name: string;
  /** Validation batches (the unrolled gradient uses one per step). */
  readonly batchCount: number;
  /** L_val over the whole validation set. */
  loss(): Promise<number>;
  /** L_val and ∇_w L_val on validation batch `index` (0 ≤ index < batchCount). */
  gradient(index: number): Promise<{ loss: number; gradient: Float32Array }>;
}

/** The all-level distillation loss on `batches` (teacher features attached once by the caller). */
export function featuresYardstick(
  distiller: StudentDistiller,
  batches: readonly TaughtBatch[],
): ValidationYardstick {
  const L = distiller.numLevels;
  const ones = (n: number) => new Float32Array(n).fill(1);
  return {
    name: 'features',
    batchCount: batches.length,
    async loss() {
      let sum = 0;
      let images = 0;
      for (const batch of batches) {
        const e = (await distiller.evaluate(batch)).distances;
        for (let i = 0; i < e.length; i++) sum += e[i];
        images += batch.images.dims[0];
      }
      return sum / images;
    },
    async gradient(index) {
      const batch = batches[index];
      // Weights 1 and every image: the graph's loss is Σ_l mean_n e[n, l], this batch's L_val.
      const r = await distiller.gradient(batch, ones(batch.images.dims[0] * L), ones(L));
      return { loss: r.loss, gradient: r.gradient };
    },
  };
}
