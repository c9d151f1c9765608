/**
 * Loss and reward curves from a run's metrics.jsonl: the student's distillation loss per step (phases 1
 * and 3), the held-out all-level loss at every epoch end, the policy's rewards and used cost (phases 2/3),
 * the PPO statistics and, with phase 4, the meta-learning rewards. Each quantity gets its own panel (its
 * own y scale) in a small-multiples figure.
 */
import type { MetricsRecord } from '../logging/metrics';
import type { PlotSpec } from './render';

/** One point of a curve: panel title, series name (the legend entry), x and y. */
export interface CurvePoint {
  panel: string;
  series: string;
  step: number;
  value: number;
}

/** A panel: its title and the metrics keys drawn in it (series name → key or key pattern). */
interface PanelRule {
  panel: string;
  /** Series name for a key, or undefined when the key is not in this panel. */
  series: (key: string, record: MetricsRecord) => string | undefined;
}

const HELDOUT = /^heldout\/([^/]+)\/loss$/;
const PER_LEVEL = /^distill\/level_loss\/(.+)$/;
const HELDOUT_LEVEL = /^heldout\/([^/]+)\/level_loss\/(.+)$/;

function exact(map: Record<string, string>): PanelRule['series'] {
  return (key) => map[key];
}

/** Panels of the loss figure. */
const LOSS_PANELS: PanelRule[] = [
  {
    panel: 'training distillation loss (per step)',
    series: (key, r) => (key === 'distill/loss' ? `phase ${String(r.phase ?? '?')}` : undefined),
  },
  { panel: 'training loss per level (per step)', series: (key) => PER_LEVEL.exec(key)?.[1] },
  {
    panel: 'held-out all-level loss (per epoch)',
    series: (key) => (HELDOUT.test(key) ? 'held-out' : undefined),
  },
  {
    panel: 'held-out loss per level (per epoch)',
    series: (key) => {
      const m = HELDOUT_LEVEL.exec(key);
      return m ? m[2] : undefined;
    },
  },
];

/** Panels of the reward/PPO figure. */
const RL_PANELS: PanelRule[] = [
  {
    panel: 'reward (per PPO iteration)',
    series: exact({
      'rl/reward': 'reward',
      'rl/quality_reward': 'quality term',
      'rl/efficiency_reward': 'efficiency term',
    }),
  },
  { panel: 'used cost (1 = every level)', series: exact({ 'rl/used_cost': 'used cost' }) },
  { panel: 'PPO policy loss', series: exact({ 'ppo/policy_loss': 'policy loss' }) },
  { panel: 'PPO value loss', series: exact({ 'ppo/value_loss': 'value loss' }) },
  { panel: 'PPO entropy', series: exact({ 'ppo/entropy': 'entropy' }) },
  { panel: 'PPO approx. KL', series: exact({ 'ppo/approx_kl': 'approx. KL' }) },
  { panel: 'PPO clip fraction', series: exact({ 'ppo/clip_fraction': 'clip fraction' }) },
  { panel: 'explained variance', series: exact({ 'ppo/explained_variance': 'explained variance' }) },
  {
    panel: 'meta-learning reward (phase 4)',
    series: exact({
      'meta/pre_adapt_reward': 'before adaptation',
      'meta/post_adapt_reward': 'after adaptation',
    }),
  },
];

function collect(records: readonly MetricsRecord[], rules: readonly PanelRule[]): CurvePoint[] {
  const out: CurvePoint[] = [];
  // Panel order first, then records in step order, so the facets come out in the rules' order.
  for (const rule of rules) {
    for (const r of records) {
      for (const [key, v] of Object.entries(r)) {
        if (typeof v !== 'number' || !Number.isFinite(v)) continue;
        const series = rule.series(key, r);
        if (series !== undefined) out.push({ panel: rule.panel, series, step: r.step, value: v });
      }
    }
  }
  return out;
}

/** Loss curves: training loss per phase and per level, held-out loss per epoch (all levels and per level). */
export function lossCurvePoints(records: readonly MetricsRecord[]): CurvePoint[] {
  return collect(records, LOSS_PANELS);
}

/** Reward and PPO curves: rewards and their terms, used cost, PPO statistics, meta-learning rewards. */
export function rlCurvePoints(records: readonly MetricsRecord[]): CurvePoint[] {
  return collect(records, RL_PANELS);
}

/** Options of curvesSpec. */
export interface CurvesSpecOptions {
  title: string;
  /** Panels per row (default 2). */
  columns?: number;
  /** One x range for every panel (default false: each panel spans its own steps). */
  sharedX?: boolean;
}

/**
 * Small multiples: one panel per quantity with its own y scale; a panel with several series has its own
 * colour legend under it, a panel with one series needs none (its title names it).
 */
export function curvesSpec(points: readonly CurvePoint[], options: CurvesSpecOptions): PlotSpec {
  const panels = [...new Set(points.map((p) => p.panel))];
  const steps = points.map((p) => p.step);
  const domain = [Math.min(...steps), Math.max(...steps)];
  const units = panels.map((panel) => {
    const values = points.filter((p) => p.panel === panel);
    const series = [...new Set(values.map((p) => p.series))];
    const legend =
      series.length > 1 ? { orient: 'bottom' as const, direction: 'horizontal' as const, title: null } : null;
    return {
      title: { text: panel, fontSize: 13 },
      width: 300,
      height: 160,
      data: { values },
      layer: [
        { mark: { type: 'line' as const, strokeWidth: 1.5, clip: true } },
        // Epoch-end values are sparse: mark each point so a two-point curve still reads as data.
        { mark: { type: 'point' as const, filled: true, size: 16, clip: true } },
      ],
      encoding: {
        x: {
          field: 'step',
          type: 'quantitative' as const,
          title: 'global step',
          axis: { tickMinStep: 1, format: 'd' },
          ...(options.sharedX ? { scale: { domain } } : {}),
        },
        y: { field: 'value', type: 'quantitative' as const, title: null, scale: { zero: false } },
        color: { field: 'series', type: 'nominal' as const, sort: series, legend },
      },
    };
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title,
    columns: Math.min(options.columns ?? 2, panels.length),
    concat: units,
    resolve: { scale: { color: 'independent', y: 'independent', x: 'independent' } },
    config: { concat: { spacing: 28 } },
  };
}
