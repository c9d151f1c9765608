/**
 * Each selection evaluated once: the discrete searches (evolution, random, exhaustive) ask for the same
 * subsets again (15 of them for four levels), and the proxy training is deterministic, so a repeated
 * request returns the first result without engine work. The order of first evaluations is the search
 * curve.
 */

/** A fresh evaluation, in the order it happened. */
export interface CacheEntry<T> {
  /** 1-based index among fresh evaluations. */
  evaluation: number;
  mask: number;
  result: T;
}

/** Memoizes an evaluation function by selection mask. */
export class EvaluationCache<T extends { objective: number }> {
  private readonly results = new Map<number, Promise<T>>();
  /** Fresh evaluations in order. */
  readonly entries: CacheEntry<T>[] = [];
  /** Requests answered from the cache. */
  hits = 0;

  constructor(private readonly evaluateFresh: (mask: number) => Promise<T>) {}

  /** The result for `mask`, evaluated on the first request only. */
  evaluate(mask: number): Promise<T> {
    const known = this.results.get(mask);
    if (known) {
      this.hits++;
      return known;
    }
    const p = this.evaluateFresh(mask).then((result) => {
      this.entries.push({ evaluation: this.entries.length + 1, mask, result });
      return result;
    });
    this.results.set(mask, p);
    p.catch(() => this.results.delete(mask));
    return p;
  }

  /** The objective of `mask` (what the searches compare). */
  async objective(mask: number): Promise<number> {
    return (await this.evaluate(mask)).objective;
  }

  /** Fresh evaluations so far. */
  get evaluations(): number {
    return this.entries.length;
  }

  /** The best (lowest objective) fresh evaluation; ties go to the earlier one. */
  best(): CacheEntry<T> | undefined {
    let best: CacheEntry<T> | undefined;
    for (const e of this.entries) if (!best || e.result.objective < best.result.objective) best = e;
    return best;
  }
}
