/**
 * The pure side of `rlpkd bench deploy`: which fixed level selections are timed, what the cost model
 * (the MACs meta.json gives per level part and head part) predicts for each, the table of measured
 * against predicted, and the fixed time every onnxruntime session run costs whatever its work — which
 * the MACs cannot see and which is reported on its own line, never folded into the prediction.
 */
import type { BundleMeta } from '../web/bundle-format';
import { fitSubsetTimes } from './subset-step';

/** Medians (ms per image) the browser measured for one fixed selection. */
export interface SelectionTiming {
  /** The computed levels, finest first. */
  levels: string[];
  /** The level parts run together. */
  partsMs: number;
  /** The head's parts (and merge) on those levels together. */
  headMs: number;
  trunkMs: number;
}

/** One row of the table. */
export interface DeployTimingRow {
  levels: string[];
  partsMs: number;
  headMs: number;
  /** partsMs + headMs: what the selection changes. */
  measuredMs: number;
  /** MACs of the selected level parts and of the head on them (merge included when it runs). */
  partsMacs: number;
  headMacs: number;
  /** (partsMacs + headMacs) over the same for every level. */
  predictedShare: number;
  /** predictedShare × the all-levels row's measuredMs. */
  predictedMs: number;
  /** measuredMs / predictedMs. */
  ratio: number;
  /** How many session runs the selection takes (level parts, head parts, merge). */
  sessionRuns: number;
}

/** The fixed cost of one session run, from the single-part rows. */
export interface SessionRunOverhead {
  /** Intercept of ms ≈ fixedMs + msPerMac · MACs over the single-part runs. */
  fixedMs: number;
  msPerMac: number;
  /** The (MACs, ms) points it was fitted on: each level part and each head part alone. */
  points: { part: string; macs: number; ms: number }[];
}

/**
 * The selections timed: each single level (finest first), then the coarse-first cumulative subsets
 * (coarsest alone, the two coarsest, ..., all), without repeating the coarsest level alone.
 */
export function fixedSelections(meta: Pick<BundleMeta, 'levels'>): string[][] {
  const names = meta.levels.map((l) => l.name);
  const singles = names.map((n) => [n]);
  const cumulative: string[][] = [];
  for (let k = names.length - 2; k >= 0; k--) cumulative.push(names.slice(k));
  return [...singles, ...cumulative];
}

/** MACs and session runs the cost model counts for a selection's level parts and head parts. */
export function selectionCost(
  meta: Pick<BundleMeta, 'levels' | 'head'>,
  levels: readonly string[],
): { partsMacs: number; headMacs: number; sessionRuns: number } {
  const parts = meta.levels.filter((l) => levels.includes(l.name));
  const headParts = meta.head?.parts.filter((p) => levels.includes(p.level)) ?? [];
  const merge = meta.head?.merge && headParts.length > 0 ? meta.head.merge : undefined;
  return {
    partsMacs: parts.reduce((n, l) => n + l.macs, 0),
    headMacs: headParts.reduce((n, p) => n + p.macs, 0) + (merge?.macs ?? 0),
    sessionRuns: parts.length + headParts.length + (merge ? 1 : 0),
  };
}

/**
 * The table: each timed selection against the cost model, the prediction scaled from the measured
 * all-levels time (which must be among the timings).
 */
export function deployTimingTable(
  meta: Pick<BundleMeta, 'levels' | 'head'>,
  timings: readonly SelectionTiming[],
): DeployTimingRow[] {
  const all = meta.levels.map((l) => l.name);
  const full = timings.find((t) => t.levels.length === all.length && all.every((l) => t.levels.includes(l)));
  if (!full) throw new Error('deployTimingTable: the timings need the all-levels selection');
  const fullCost = selectionCost(meta, all);
  const fullMacs = fullCost.partsMacs + fullCost.headMacs;
  const fullMs = full.partsMs + full.headMs;
  return timings.map((t) => {
    const cost = selectionCost(meta, t.levels);
    const predictedShare = fullMacs > 0 ? (cost.partsMacs + cost.headMacs) / fullMacs : 0;
    const measuredMs = t.partsMs + t.headMs;
    const predictedMs = predictedShare * fullMs;
    return {
      levels: [...t.levels],
      partsMs: t.partsMs,
      headMs: t.headMs,
      measuredMs,
      partsMacs: cost.partsMacs,
      headMacs: cost.headMacs,
      predictedShare,
      predictedMs,
      ratio: predictedMs > 0 ? measuredMs / predictedMs : Number.NaN,
      sessionRuns: cost.sessionRuns,
    };
  });
}

/**
 * The per-session-run fixed time: a least-squares line of ms on MACs through every part timed alone
 * (each single-level selection gives its level part and, with a head, its head part). Undefined with
 * fewer than two distinct MAC counts. Heads with a merge graph are left out (a lone head part there
 * is two runs).
 */
export function sessionRunOverhead(
  meta: Pick<BundleMeta, 'levels' | 'head'>,
  timings: readonly SelectionTiming[],
): SessionRunOverhead | undefined {
  const points: SessionRunOverhead['points'] = [];
  for (const t of timings) {
    if (t.levels.length !== 1) continue;
    const [name] = t.levels;
    const level = meta.levels.find((l) => l.name === name);
    if (level) points.push({ part: `level-${name}`, macs: level.macs, ms: t.partsMs });
    const head = meta.head?.merge ? undefined : meta.head?.parts.find((p) => p.level === name);
    if (head) points.push({ part: `head-${name}`, macs: head.macs, ms: t.headMs });
  }
  const fit = fitSubsetTimes(points.map((p) => ({ predictedShare: p.macs, medianMs: p.ms })));
  return fit ? { fixedMs: fit.fixedMs, msPerMac: fit.proportionalMs, points } : undefined;
}

/**
 * Per selection (matched by its levels), the least over the rounds of each median: on shared cores other
 * work only ever adds time. Every round must time the same selections.
 */
export function fastestOfRounds(rounds: readonly (readonly SelectionTiming[])[]): SelectionTiming[] {
  if (rounds.length === 0) throw new Error('fastestOfRounds: no rounds');
  const key = (t: SelectionTiming): string => t.levels.join('+');
  return rounds[0].map((first) => {
    const same = rounds.map((round) => {
      const t = round.find((x) => key(x) === key(first));
      if (!t) throw new Error(`fastestOfRounds: a round did not time ${key(first)}`);
      return t;
    });
    return {
      levels: [...first.levels],
      partsMs: Math.min(...same.map((t) => t.partsMs)),
      headMs: Math.min(...same.map((t) => t.headMs)),
      trunkMs: Math.min(...same.map((t) => t.trunkMs)),
    };
  });
}
