/**
 * EA-LS: regularized (aging) evolution (Real et al., AAAI 2019, Algorithm 1) over selection masks. A
 * population of random selections; each cycle samples `sampleSize` members with replacement, mutates the
 * best of them in exactly one gene (one level flipped, never to the empty selection), evaluates the child,
 * appends it and removes the oldest member, not the worst. The answer is the best selection ever
 * evaluated. Evaluations go through an EvaluationCache, so a child met before costs nothing.
 */
import { RlpkdError } from '../errors';
import type { Rng } from '../util/rng';

/** Settings of the evolution. */
export interface EvolutionOptions {
  /** Population size P. */
  population: number;
  /** Tournament size S. */
  sampleSize: number;
  /** Mutation cycles after the initial population. */
  cycles: number;
  rng: Rng;
}

/** What the evolution did. */
export interface EvolutionResult {
  /** The best selection among every evaluated one. */
  best: number;
  bestObjective: number;
  /** Every individual in order of birth (initial population first), with its objective. */
  history: { mask: number; objective: number }[];
  /** The final population, oldest first. */
  population: number[];
}

/** One-gene mutation: flips one level chosen among those whose flip keeps the selection non-empty. */
export function mutateOneGene(mask: number, numLevels: number, rng: Rng): number {
  const flips = Array.from({ length: numLevels }, (_, l) => mask ^ (1 << l)).filter((m) => m !== 0);
  return flips[rng.int(flips.length)];
}

/** Runs regularized evolution (see module doc) with `objective` (lower is better). */
export async function regularizedEvolution(
  numLevels: number,
  objective: (mask: number) => Promise<number>,
  options: EvolutionOptions,
): Promise<EvolutionResult> {
  const { population: P, sampleSize: S, cycles, rng } = options;
  if (P < 1 || S < 1 || cycles < 0) {
    throw new RlpkdError(`evolution: population ${P}, sample size ${S}, cycles ${cycles}`, {
      hint: 'use a population and sample size of at least 1 and cycles ≥ 0',
    });
  }
  const history: { mask: number; objective: number }[] = [];
  const population: { mask: number; objective: number }[] = [];
  const born = async (mask: number) => {
    const member = { mask, objective: await objective(mask) };
    history.push(member);
    population.push(member);
  };
  const subsets = 2 ** numLevels - 1;
  for (let i = 0; i < P; i++) await born(1 + rng.int(subsets));
  for (let c = 0; c < cycles; c++) {
    let parent = population[rng.int(population.length)];
    for (let s = 1; s < S; s++) {
      const candidate = population[rng.int(population.length)];
      if (candidate.objective < parent.objective) parent = candidate;
    }
    await born(mutateOneGene(parent.mask, numLevels, rng));
    population.shift(); // aging: the oldest goes, whatever its fitness
  }
  const best = history.reduce((a, b) => (b.objective < a.objective ? b : a));
  return {
    best: best.mask,
    bestObjective: best.objective,
    history,
    population: population.map((m) => m.mask),
  };
}
