/**
 * The NAS search space of SPEC.md: one gate per pyramid level, a selection is a non-empty subset of the
 * levels (2^L − 1 of them), written as a bit mask (bit l = level l in level order, finest first). The
 * cost of a selection is a function of the whole subset (the inference share from selection-cost is not
 * additive: levels share a trunk), so expected costs under independent gates are computed exactly over
 * every subset rather than as a sum of per-level costs.
 */
import { RlpkdError } from '../errors';

/** Levels whose subsets are enumerated exactly (2^L terms per expected cost). */
export const MAX_SEARCH_LEVELS = 12;

/** The levels and what a selection costs. */
export interface SearchSpace {
  /** Level names in level order (finest first). */
  levelNames: readonly string[];
  /** Cost share of a selection (a non-empty mask), in [0, 1]; the empty selection costs 0. */
  cost(mask: number): number;
}

/** A search space over `levelNames` with a cost per subset (checked: L ≤ MAX_SEARCH_LEVELS). */
export function searchSpace(levelNames: readonly string[], cost: (levels: string[]) => number): SearchSpace {
  const L = levelNames.length;
  if (L === 0 || L > MAX_SEARCH_LEVELS) {
    throw new RlpkdError(`NAS search space: ${L} levels, expected 1 to ${MAX_SEARCH_LEVELS}`, {
      hint: 'select fewer levels with models.levels',
    });
  }
  const memo = new Map<number, number>();
  return {
    levelNames: [...levelNames],
    cost(mask: number): number {
      if (mask === 0) return 0;
      let c = memo.get(mask);
      if (c === undefined) {
        c = cost(maskLevels(levelNames, mask));
        memo.set(mask, c);
      }
      return c;
    },
  };
}

/** Every non-empty selection mask of L levels, in increasing order. */
export function allSelections(L: number): number[] {
  return Array.from({ length: 2 ** L - 1 }, (_, i) => i + 1);
}

/** The level names a mask selects (level order). */
export function maskLevels(levelNames: readonly string[], mask: number): string[] {
  return levelNames.filter((_, l) => (mask >> l) & 1);
}

/** The mask of a list of level names (each must be one of `levelNames`). */
export function levelsMask(levelNames: readonly string[], levels: readonly string[]): number {
  let mask = 0;
  for (const name of levels) {
    const l = levelNames.indexOf(name);
    if (l < 0) throw new RlpkdError(`'${name}' is not one of the levels ${levelNames.join(', ')}`);
    mask |= 1 << l;
  }
  return mask;
}

/** 'P3+P5' for a mask. */
export function selectionLabel(levelNames: readonly string[], mask: number): string {
  return maskLevels(levelNames, mask).join('+') || '(none)';
}

/** The 0/1 gate of each level in a mask, as loss weights would read them. */
export function maskGates(L: number, mask: number): number[] {
  return Array.from({ length: L }, (_, l) => (mask >> l) & 1);
}

/**
 * E[cost(S)] for S drawn with level l on independently with probability p[l], and its derivative with
 * respect to each p[l] (= E[cost(S ∪ {l})] − E[cost(S \ {l})] over the other levels), by enumerating all
 * 2^L subsets.
 */
export function expectedCost(space: SearchSpace, p: readonly number[]): { value: number; grad: number[] } {
  const L = space.levelNames.length;
  let value = 0;
  const grad = new Array<number>(L).fill(0);
  for (let mask = 0; mask < 2 ** L; mask++) {
    let prob = 1;
    for (let l = 0; l < L; l++) prob *= (mask >> l) & 1 ? p[l] : 1 - p[l];
    const c = space.cost(mask);
    value += prob * c;
    for (let l = 0; l < L; l++) {
      // Probability of the other levels' part of this mask, times ±cost: on-masks add, off-masks subtract.
      let others = 1;
      for (let k = 0; k < L; k++) if (k !== l) others *= (mask >> k) & 1 ? p[k] : 1 - p[k];
      grad[l] += ((mask >> l) & 1 ? 1 : -1) * others * c;
    }
  }
  return { value, grad };
}
