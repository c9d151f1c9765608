/**
 * Top-k classification accuracy. Ties: classes are ranked by score, equal scores in ascending class index
 * (a stable sort of −score, i.e. numpy `argsort(-logits, kind='stable')`), so top-1 is the first maximum
 * (numpy/PyTorch `argmax`) and the label is in the top k when fewer than k classes rank before it: those
 * with a higher score, and those with an equal score and a lower index.
 */
import { RlpkdError } from '../errors';

/** Options of {@link TopKAccuracy}. */
export interface TopKOptions {
  /** The k values to report (default [1, 5]). */
  readonly ks?: readonly number[];
  /** Samples with this label are skipped (e.g. -100, PyTorch's cross-entropy default). */
  readonly ignoreIndex?: number;
}

/** Accuracy for each k, over the samples counted. */
export interface TopKResult {
  /** `{ 1: top-1, 5: top-5 }`; null when no sample was counted. */
  readonly accuracy: Record<number, number | null>;
  readonly samples: number;
  readonly ignored: number;
}

/** Counts top-k hits over batches of logits (N × C, row-major) and labels. */
export class TopKAccuracy {
  readonly numClasses: number;
  private readonly ks: readonly number[];
  private readonly ignoreIndex: number | undefined;
  private readonly hits: number[];
  private samples = 0;
  private ignored = 0;

  constructor(numClasses: number, options: TopKOptions = {}) {
    this.numClasses = numClasses;
    this.ks = options.ks ?? [1, 5];
    this.ignoreIndex = options.ignoreIndex;
    if (
      !Number.isInteger(numClasses) ||
      numClasses < 1 ||
      this.ks.some((k) => !Number.isInteger(k) || k < 1)
    ) {
      throw new RlpkdError(
        `top-k needs a positive number of classes and k ≥ 1 (got ${numClasses} classes, k ${this.ks.join(', ')})`,
        {
          hint: 'pass the logits width as numClasses and whole numbers as ks',
        },
      );
    }
    this.hits = this.ks.map(() => 0);
  }

  /** Adds a batch: `logits` holds `labels.length` rows of `numClasses` scores. */
  add(logits: ArrayLike<number>, labels: ArrayLike<number>): void {
    const C = this.numClasses;
    if (logits.length !== labels.length * C) {
      throw new RlpkdError(`top-k: ${logits.length} logits for ${labels.length} labels × ${C} classes`, {
        hint: 'logits must be a row-major N × C array with one label per row',
      });
    }
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i]!;
      if (label === this.ignoreIndex) {
        this.ignored++;
        continue;
      }
      if (!(Number.isInteger(label) && label >= 0 && label < C)) {
        throw new RlpkdError(`top-k: label ${label} of sample ${i} is outside 0..${C - 1}`, {
          hint: 'labels are class indices; mark samples to skip with ignoreIndex',
        });
      }
      const own = logits[i * C + label]!;
      let before = 0;
      for (let c = 0; c < C; c++) {
        const s = logits[i * C + c]!;
        if (Number.isNaN(s)) {
          throw new RlpkdError(`top-k: sample ${i} has a NaN score for class ${c}`, {
            hint: 'the model produced NaN; check its inputs and weights',
          });
        }
        if (s > own || (s === own && c < label)) before++;
      }
      this.ks.forEach((k, j) => {
        if (before < k) this.hits[j]! += 1;
      });
      this.samples++;
    }
  }

  /** Accuracy per k so far. */
  result(): TopKResult {
    const accuracy: Record<number, number | null> = {};
    this.ks.forEach((k, j) => (accuracy[k] = this.samples > 0 ? this.hits[j]! / this.samples : null));
    return { accuracy, samples: this.samples, ignored: this.ignored };
  }
}
