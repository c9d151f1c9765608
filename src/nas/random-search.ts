/**
 * Random search: `samples` selections drawn uniformly from the 2^L − 1 non-empty ones (with replacement,
 * so repeats are cache hits), the best kept: the sanity baseline every other method must beat.
 */
import type { Rng } from '../util/rng';

/** Draws `samples` selections and returns the best (lowest objective; ties to the first drawn). */
export async function randomSearch(
  numLevels: number,
  objective: (mask: number) => Promise<number>,
  options: { samples: number; rng: Rng },
): Promise<{ best: number; bestObjective: number; drawn: number[] }> {
  const drawn: number[] = [];
  let best = 0;
  let bestObjective = Infinity;
  for (let i = 0; i < options.samples; i++) {
    const mask = 1 + options.rng.int(2 ** numLevels - 1);
    drawn.push(mask);
    const j = await objective(mask);
    if (j < bestObjective) {
      best = mask;
      bestObjective = j;
    }
  }
  return { best, bestObjective, drawn };
}
