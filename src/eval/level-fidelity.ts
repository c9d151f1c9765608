/**
 * How closely a student's pyramid matches the teacher's, level by level, on the same images:
 * - MSE: the mean over images and feature elements of (student − teacher)²;
 * - cosine similarity: per image, the cosine of the angle between the two level maps flattened to vectors
 *   (C·H·W elements), averaged over images; an image where either map is all zeros counts as 0.
 * Sums run in float64 so the result does not depend on the batch split.
 */
import { RlpkdError } from '../errors';

/** One level's fidelity. */
export interface LevelFidelity {
  mse: number;
  cosine: number;
}

/** Accumulates one level's fidelity over batches. */
export class LevelFidelityAccumulator {
  private squared = 0;
  private elements = 0;
  private cosineSum = 0;
  private images = 0;

  constructor(readonly level: string) {}

  /** Adds a batch: `n` images whose level maps are `student` and `teacher` (same layout, N-major). */
  add(student: ArrayLike<number>, teacher: ArrayLike<number>, n: number): void {
    if (student.length !== teacher.length || n < 1 || student.length % n !== 0) {
      throw new RlpkdError(
        `fidelity of level ${this.level}: the student's map has ${student.length} values, the teacher's ` +
          `${teacher.length}, for ${n} images`,
        { hint: 'teacher and student levels must have the same shape (no adapter is applied here)' },
      );
    }
    const per = student.length / n;
    for (let i = 0; i < n; i++) {
      let dot = 0;
      let ss = 0;
      let tt = 0;
      for (let j = i * per; j < (i + 1) * per; j++) {
        const s = student[j]!;
        const t = teacher[j]!;
        const d = s - t;
        this.squared += d * d;
        dot += s * t;
        ss += s * s;
        tt += t * t;
      }
      this.cosineSum += ss > 0 && tt > 0 ? dot / Math.sqrt(ss * tt) : 0;
    }
    this.elements += student.length;
    this.images += n;
  }

  /** The level's MSE and mean cosine similarity over everything added. */
  result(): LevelFidelity {
    if (this.images === 0) throw new RlpkdError(`fidelity of level ${this.level}: no images were added`);
    return { mse: this.squared / this.elements, cosine: this.cosineSum / this.images };
  }
}
