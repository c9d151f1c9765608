/** Exhaustive evaluation of every non-empty selection: the oracle the other methods' regret is measured against. */
import { allSelections } from './search-space';

/** Evaluates all 2^L − 1 selections in mask order; returns the best (ties to the lower mask) and all objectives. */
export async function exhaustiveSearch(
  numLevels: number,
  objective: (mask: number) => Promise<number>,
): Promise<{ best: number; bestObjective: number; objectives: Map<number, number> }> {
  const objectives = new Map<number, number>();
  let best = 0;
  let bestObjective = Infinity;
  for (const mask of allSelections(numLevels)) {
    const j = await objective(mask);
    objectives.set(mask, j);
    if (j < bestObjective) {
      best = mask;
      bestObjective = j;
    }
  }
  return { best, bestObjective, objectives };
}
