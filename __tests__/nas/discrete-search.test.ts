import { EvaluationCache } from '../../src/nas/evaluation-cache';
import { mutateOneGene, regularizedEvolution } from '../../src/nas/evolution';
import { exhaustiveSearch } from '../../src/nas/exhaustive';
import { randomSearch } from '../../src/nas/random-search';
import { Rng } from '../../src/util/rng';

// A fixed objective over 3 levels (7 selections): mask 6 is the best, mask 1 the worst.
const TABLE: Record<number, number> = { 1: 0.9, 2: 0.5, 3: 0.7, 4: 0.45, 5: 0.6, 6: 0.3, 7: 0.4 };

function counted() {
  const calls: number[] = [];
  const cache = new EvaluationCache(async (mask: number) => {
    calls.push(mask);
    return { objective: TABLE[mask] };
  });
  return { calls, cache };
}

describe('discrete NAS searches', () => {
  it('the cache evaluates each selection once and records the order of first evaluations', async () => {
    const { calls, cache } = counted();
    expect(await cache.objective(3)).toBe(0.7);
    expect(await cache.objective(5)).toBe(0.6);
    expect(await cache.objective(3)).toBe(0.7);
    expect(calls).toEqual([3, 5]);
    expect(cache.hits).toBe(1);
    expect(cache.entries.map((e) => [e.evaluation, e.mask])).toEqual([
      [1, 3],
      [2, 5],
    ]);
    expect(cache.best()!.mask).toBe(5);
  });

  it('one-gene mutation flips exactly one level and never empties the selection', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      const parent = 1 + rng.int(15);
      const child = mutateOneGene(parent, 4, rng);
      const diff = parent ^ child;
      expect(child).not.toBe(0);
      expect(diff & (diff - 1)).toBe(0); // one bit
      expect(diff).not.toBe(0);
    }
    expect(mutateOneGene(4, 3, new Rng(0))).not.toBe(0); // only flips that keep a level: 5 or 6
  });

  it('regularized evolution: cached fitness, the oldest leaves (not the worst), the best ever is the answer', async () => {
    const { calls, cache } = counted();
    const r = await regularizedEvolution(3, (m) => cache.objective(m), {
      population: 3,
      sampleSize: 2,
      cycles: 30,
      rng: new Rng(11),
    });
    // 33 individuals born, at most 7 distinct selections evaluated: the cache answered the rest.
    expect(r.history).toHaveLength(33);
    expect(new Set(calls).size).toBe(calls.length);
    expect(calls.length).toBeLessThanOrEqual(7);
    expect(cache.hits).toBe(33 - calls.length);
    // Aging: the final population is exactly the last three born, oldest first.
    expect(r.population).toEqual(r.history.slice(-3).map((h) => h.mask));
    const bestEver = Math.min(...r.history.map((h) => h.objective));
    expect(r.bestObjective).toBe(bestEver);
    expect(TABLE[r.best]).toBe(bestEver);
  });

  it('aging keeps a worse young member over a better old one', async () => {
    // Population 1: each cycle's child replaces the single member, whatever the fitness.
    const r = await regularizedEvolution(3, async (m) => TABLE[m], {
      population: 1,
      sampleSize: 1,
      cycles: 5,
      rng: new Rng(2),
    });
    expect(r.population).toEqual([r.history[5].mask]);
    for (let i = 1; i < r.history.length; i++) {
      const diff = r.history[i].mask ^ r.history[i - 1].mask;
      expect(diff & (diff - 1)).toBe(0);
    }
  });

  it('exhaustive search evaluates all 2^L − 1 selections and finds the table minimum', async () => {
    const { calls, cache } = counted();
    const r = await exhaustiveSearch(3, (m) => cache.objective(m));
    expect(calls).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(r.best).toBe(6);
    expect(r.bestObjective).toBe(0.3);
  });

  it('random search returns the best of what it drew, deterministically for a seed', async () => {
    const a = await randomSearch(3, async (m) => TABLE[m], { samples: 4, rng: new Rng(5) });
    const b = await randomSearch(3, async (m) => TABLE[m], { samples: 4, rng: new Rng(5) });
    expect(a).toEqual(b);
    expect(a.drawn).toHaveLength(4);
    expect(a.bestObjective).toBe(Math.min(...a.drawn.map((m) => TABLE[m])));
    a.drawn.forEach((m) => expect(m >= 1 && m <= 7).toBe(true));
  });
});
