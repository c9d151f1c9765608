/**
 * Figures the gradient ablation (Table 5) reads from a run's metrics.jsonl:
 * - the stability figure: for each level l, the ratio r_l(t) = L_l(t) / L_l(t₀) over the logged steps t of
 *   a phase, where L_l(t) is `distill/selected_level_loss/<l>` (the level's mean distance over the images
 *   of the batch that selected it: GradNorm's training rate, logged at every selection) and t₀ the first
 *   logged step of the phase that selected l; its spread is the sample standard deviation of r_l(t) over
 *   those steps. The run's figure is the mean of the spreads over the levels with at least two steps.
 * - the clipping norm c of the clipping variants when the config sets none: the median of the student's
 *   unclipped gradient norm (`distill/grad_norm`) over the logged phase-3 steps of the baseline variant
 *   (uniform, no clipping, no GradNorm: the same updates from the same checkpoint), so clipping acts on
 *   about the larger half of the gradients those updates produce; and the share of a run's logged steps
 *   whose unclipped norm exceeds c (how often clipping acted).
 */
import type { MetricsRecord } from '../logging/metrics';
import { RlpkdError } from '../errors';

/** The stability figure of one run (see module doc). */
export interface LevelLossSpread {
  /** Std over steps of L_l(t)/L_l(t₀) per level; null for a level selected at fewer than two logged steps. */
  perLevel: Record<string, number | null>;
  /** Mean of the per-level spreads (null when no level has one). */
  mean: number | null;
  /** Logged steps of the phase. */
  steps: number;
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function sampleStd(xs: readonly number[]): number {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** The stability figure of `phase`'s records (see module doc). */
export function levelLossSpread(
  records: readonly MetricsRecord[],
  levels: readonly string[],
  phase: number,
): LevelLossSpread {
  const rows = records.filter((r) => r.phase === phase);
  const perLevel: Record<string, number | null> = {};
  const spreads: number[] = [];
  const steps = rows.filter((r) => finite(r['distill/grad_norm'])).length;
  for (const level of levels) {
    const losses = rows.map((r) => r[`distill/selected_level_loss/${level}`]).filter(finite);
    if (losses.length < 2 || losses[0] === 0) {
      perLevel[level] = null;
      continue;
    }
    const s = sampleStd(losses.map((x) => x / losses[0]));
    perLevel[level] = s;
    spreads.push(s);
  }
  return {
    perLevel,
    mean: spreads.length ? spreads.reduce((a, b) => a + b, 0) / spreads.length : null,
    steps,
  };
}

/** The share of `phase`'s logged steps whose unclipped gradient norm exceeds `clip` (null: no steps). */
export function clippedShare(records: readonly MetricsRecord[], phase: number, clip: number): number | null {
  const norms = records
    .filter((r) => r.phase === phase)
    .map((r) => r['distill/grad_norm'])
    .filter(finite);
  return norms.length ? norms.filter((n) => n > clip).length / norms.length : null;
}

/** The median unclipped student gradient norm over `phase`'s logged steps (see module doc). */
export function medianGradNorm(records: readonly MetricsRecord[], phase: number, source: string): number {
  const norms = records
    .filter((r) => r.phase === phase)
    .map((r) => r['distill/grad_norm'])
    .filter(finite)
    .sort((a, b) => a - b);
  if (norms.length === 0 || norms[norms.length - 1] <= 0) {
    throw new RlpkdError(`${source} logged no student gradient norm in phase ${phase}`, {
      hint: 'set distill.grad_clip in the config to give the clipping variants their norm',
    });
  }
  const k = norms.length >> 1;
  return norms.length % 2 ? norms[k] : (norms[k - 1] + norms[k]) / 2;
}
