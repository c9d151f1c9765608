/**
 * One entry point per NAS method over a prepared problem and objective: runs the search, times it, and
 * returns the chosen selection with its search curve. Discrete methods score selections through one
 * EvaluationCache; the differentiable ones search on the student and then score their choice with the
 * same objective (that evaluation is timed apart from the search).
 */
import { Rng } from '../util/rng';
import { dartsGates } from './darts';
import { runGatedSearch, type GatedSearchPoint } from './differentiable-search';
import type { EvaluationCache } from './evaluation-cache';
import { regularizedEvolution } from './evolution';
import { exhaustiveSearch } from './exhaustive';
import { gdasGates } from './gdas';
import type { SelectionEvaluation, SelectionObjective } from './objective';
import { randomSearch } from './random-search';
import { selectionLabel } from './search-space';
import type { ProxyTrainable } from './student-problem';

/** The methods of `rlpkd nas --method`. */
export const NAS_METHODS = ['darts', 'gdas', 'evolution', 'random', 'exhaustive'] as const;
export type NasMethod = (typeof NAS_METHODS)[number];

/** Table names of the methods. */
export const METHOD_NAMES: Record<NasMethod, string> = {
  darts: 'DARTS-LS',
  gdas: 'GDAS-LS',
  evolution: 'EA-LS',
  random: 'random search',
  exhaustive: 'exhaustive (oracle)',
};

/** Settings of the searches (each method reads its own). */
export interface MethodSettings {
  seed: string;
  /** DARTS/GDAS: architecture steps, ξ, α learning rate, GDAS temperatures. */
  steps: number;
  xi: number;
  archLr: number;
  tauMax: number;
  tauMin: number;
  /** Evolution: population, tournament size, cycles. */
  population: number;
  sampleSize: number;
  cycles: number;
  /** Random search: selections drawn. */
  samples: number;
}

/** One point of a search curve: the objective after each evaluation (discrete) or step (differentiable). */
export interface CurvePoint {
  index: number;
  selection: string;
  objective: number;
  /** Best objective so far (discrete methods). */
  best?: number;
  temperature?: number;
}

/** What a method found and what it cost. */
export interface MethodResult {
  chosen: SelectionEvaluation;
  curve: CurvePoint[];
  curveUnit: 'evaluation' | 'step';
  /** Wall seconds of the search's engine work. */
  searchSeconds: number;
  /** Wall seconds of scoring the differentiable search's choice (0 for the discrete ones). */
  scoringSeconds: number;
  /** Proxy trainings run by the search (cache hits excluded). */
  evaluations: number;
  cacheHits: number;
  /** Final α (differentiable methods). */
  alpha?: number[];
}

/** Runs `method` (see module doc). */
export async function runMethod(
  method: NasMethod,
  ctx: {
    problem: ProxyTrainable;
    objective: SelectionObjective;
    cache: EvaluationCache<SelectionEvaluation>;
    settings: MethodSettings;
    onProgress?: (point: CurvePoint) => void;
  },
): Promise<MethodResult> {
  const { problem, objective, cache, settings } = ctx;
  const L = problem.numLevels;
  const names = objective.space.levelNames;
  const rng = new Rng(`${settings.seed}:nas:${method}`);
  const evaluationsBefore = cache.evaluations;
  const hitsBefore = cache.hits;
  const t0 = performance.now();
  if (method === 'darts' || method === 'gdas') {
    await problem.reset();
    const scheme =
      method === 'darts'
        ? dartsGates(objective.space)
        : gdasGates(objective.space, settings.tauMax, settings.tauMin);
    const r = await runGatedSearch(problem, objective.space, scheme, {
      steps: settings.steps,
      xi: settings.xi,
      lambda: objective.settings.lambda,
      baseLoss: objective.baseLoss,
      archLr: settings.archLr,
      seed: `${settings.seed}:nas:${method}`,
      onStep: (p: GatedSearchPoint) => ctx.onProgress?.(toPoint(p)),
    });
    const searchSeconds = (performance.now() - t0) / 1000;
    const chosen = await cache.evaluate(r.selection);
    return {
      chosen,
      curve: r.curve.map(toPoint),
      curveUnit: 'step',
      searchSeconds,
      scoringSeconds: (performance.now() - t0) / 1000 - searchSeconds,
      // The search itself runs no proxy training; scoring its choice is timed apart.
      evaluations: 0,
      cacheHits: 0,
      alpha: r.alpha,
    };
  }
  const curve: CurvePoint[] = [];
  let best = Infinity;
  const scored = async (mask: number) => {
    const fresh = cache.evaluations;
    const j = await cache.objective(mask);
    if (cache.evaluations > fresh) {
      best = Math.min(best, j);
      const point = { index: curve.length + 1, selection: selectionLabel(names, mask), objective: j, best };
      curve.push(point);
      ctx.onProgress?.(point);
    }
    return j;
  };
  let chosenMask: number;
  if (method === 'evolution') {
    chosenMask = (
      await regularizedEvolution(L, scored, {
        population: settings.population,
        sampleSize: settings.sampleSize,
        cycles: settings.cycles,
        rng,
      })
    ).best;
  } else if (method === 'random') {
    chosenMask = (await randomSearch(L, scored, { samples: settings.samples, rng })).best;
  } else {
    chosenMask = (await exhaustiveSearch(L, scored)).best;
  }
  // The answer was evaluated during the search: read it back without counting a request.
  const chosen = cache.entries.find((e) => e.mask === chosenMask)!.result;
  return {
    chosen,
    curve,
    curveUnit: 'evaluation',
    searchSeconds: (performance.now() - t0) / 1000,
    scoringSeconds: 0,
    evaluations: cache.evaluations - evaluationsBefore,
    cacheHits: cache.hits - hitsBefore,
  };

  function toPoint(p: GatedSearchPoint): CurvePoint {
    return {
      index: p.step + 1,
      selection: p.selection,
      objective: p.objective,
      ...(p.temperature !== undefined ? { temperature: p.temperature } : {}),
    };
  }
}
