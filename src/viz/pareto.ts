/**
 * Quality–cost Pareto plot: every method as a point (cost on x, task metric on y, ± std when given), and
 * the fixed level subsets' frontier drawn through them. The frontier is the set of fixed subsets no other
 * fixed subset beats on both axes, joined by straight lines (linear interpolation in cost); with
 * `envelope: 'hull'` it is the upper concave hull instead, which is what mixing two fixed subsets at random
 * per image achieves in expectation.
 */
import { RlpkdError } from '../errors';
import { PLOT_FONT, type PlotSpec } from './render';

/** One method's result. */
export interface ParetoPoint {
  method: string;
  /** Cost (e.g. the share of the all-level distillation work). */
  cost: number;
  /** Task metric (e.g. AP) or loss. */
  metric: number;
  /** Standard deviation of the metric over seeds. */
  std?: number;
  /** A fixed level subset (the frontier is drawn through these). */
  fixed?: boolean;
}

/** What the axes mean. */
export interface ParetoOptions {
  /** Larger metric is better (AP, mIoU); false for a loss. Default true. */
  higherIsBetter?: boolean;
  /** 'pareto' (non-dominated fixed subsets, default) or 'hull' (their upper concave hull). */
  envelope?: 'pareto' | 'hull';
}

/** The frontier's points, by increasing cost. */
export function paretoFrontier(points: readonly ParetoPoint[], options: ParetoOptions = {}): ParetoPoint[] {
  const sign = options.higherIsBetter === false ? -1 : 1;
  const fixed = points.filter((p) => p.fixed);
  // Cheapest first; at equal cost the best first, so a later point is kept only if it improves the metric.
  const sorted = [...fixed].sort((a, b) => a.cost - b.cost || sign * (b.metric - a.metric));
  const front: ParetoPoint[] = [];
  for (const p of sorted) {
    const last = front[front.length - 1];
    if (!last || sign * (p.metric - last.metric) > 0) front.push(p);
  }
  if (options.envelope !== 'hull') return front;
  // Upper concave hull (in sign·metric) of the non-dominated points: drop a point on or under the chord
  // between its neighbours.
  const hull: ParetoPoint[] = [];
  for (const p of front) {
    while (hull.length >= 2) {
      const a = hull[hull.length - 2];
      const b = hull[hull.length - 1];
      const cross =
        (b.cost - a.cost) * sign * (p.metric - a.metric) - sign * (b.metric - a.metric) * (p.cost - a.cost);
      if (cross >= 0) hull.pop();
      else break;
    }
    hull.push(p);
  }
  return hull;
}

/**
 * The frontier's metric at `cost`: linear between frontier points, the best frontier value beyond the
 * most expensive one (a costlier budget can still use it), null below the cheapest.
 */
export function frontierAt(frontier: readonly ParetoPoint[], cost: number): number | null {
  if (frontier.length === 0 || cost < frontier[0].cost) return null;
  for (let i = 1; i < frontier.length; i++) {
    const a = frontier[i - 1];
    const b = frontier[i];
    if (cost <= b.cost) return a.metric + ((b.metric - a.metric) * (cost - a.cost)) / (b.cost - a.cost);
  }
  return frontier[frontier.length - 1].metric;
}

/** Checks points read from a file: names, finite numbers, a non-negative std. */
export function validateParetoPoints(points: readonly ParetoPoint[], source: string): void {
  if (points.length === 0)
    throw new RlpkdError(`${source} lists no points`, { hint: 'add one row per method' });
  points.forEach((p, i) => {
    const where = `${source}: point ${i + 1}${p.method ? ` ('${p.method}')` : ''}`;
    if (typeof p.method !== 'string' || p.method === '') throw new RlpkdError(`${where} has no method name`);
    for (const k of ['cost', 'metric'] as const) {
      if (typeof p[k] !== 'number' || !Number.isFinite(p[k]))
        throw new RlpkdError(`${where}: ${k} must be a finite number, got ${String(p[k])}`);
    }
    if (p.std !== undefined && !(typeof p.std === 'number' && p.std >= 0 && Number.isFinite(p.std)))
      throw new RlpkdError(`${where}: std must be a finite number ≥ 0, got ${String(p.std)}`);
  });
}

/** Labels of the Pareto plot. */
export interface ParetoPlotOptions extends ParetoOptions {
  title?: string;
  /** Axis titles. */
  metricName?: string;
  costName?: string;
}

/** Marker shapes of the non-fixed methods, in legend order (repeating past the last). */
const METHOD_SHAPES = ['diamond', 'triangle-up', 'square', 'circle', 'cross', 'triangle-down', 'wedge'];

/**
 * Vega-lite spec: fixed subsets as grey dots, their frontier as a dashed line with the frontier subsets
 * named, other methods as open coloured markers, one shape each (± std bars), with a legend. Methods at
 * the same point (a NAS method's choice is a fixed subset, often the same one for several methods) get
 * growing marker sizes, so every one stays visible around the others and the grey dot.
 */
export function paretoSpec(points: readonly ParetoPoint[], options: ParetoPlotOptions = {}): PlotSpec {
  const front = paretoFrontier(points, options);
  const withBars = points.map((p) => ({ ...p, lo: p.metric - (p.std ?? 0), hi: p.metric + (p.std ?? 0) }));
  const same = (a: ParetoPoint, b: ParetoPoint) =>
    Math.abs(a.cost - b.cost) <= 1e-9 * Math.max(1, Math.abs(a.cost)) &&
    Math.abs(a.metric - b.metric) <= 1e-9 * Math.max(1, Math.abs(a.metric));
  const methods = withBars
    .filter((r) => !r.fixed)
    .map((r, i, all) => ({ ...r, size: 130 + 170 * all.slice(0, i).filter((q) => same(q, r)).length }));
  const fixed = withBars.filter((r) => r.fixed);
  const costs = points.map((p) => p.cost);
  const [cMin, cMax] = [Math.min(...costs), Math.max(...costs)];
  // Name the frontier subsets only (the others are dominated), alternately above and below the line so
  // neighbours close in cost do not overprint, and right-aligned near the right edge to stay inside.
  const labels = front.map((p, i) => ({
    method: p.method,
    cost: p.cost,
    metric: p.metric,
    right: p.cost > cMin + 0.8 * (cMax - cMin),
    below: i % 2 === 1,
  }));
  const x = {
    field: 'cost',
    type: 'quantitative' as const,
    title: options.costName ?? 'cost',
    scale: { zero: false },
  };
  const y = {
    field: 'metric',
    type: 'quantitative' as const,
    title: `${options.metricName ?? 'metric'} (${options.higherIsBetter === false ? 'lower' : 'higher'} is better)`,
    scale: { zero: false },
  };
  const label = (right: boolean, below: boolean) => ({
    data: { values: labels.filter((l) => l.right === right && l.below === below) },
    mark: {
      type: 'text' as const,
      align: right ? ('right' as const) : ('left' as const),
      dx: right ? -7 : 7,
      dy: below ? 13 : -8,
      fontSize: 11,
      color: '#444',
    },
    encoding: { x, y, text: { field: 'method', type: 'nominal' as const } },
  });
  const envelope = options.envelope === 'hull' ? 'their upper hull' : 'their Pareto frontier';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: options.title ?? 'Quality vs cost',
      subtitle: `grey dots: fixed level subsets; dashed line: ${envelope} (linear in cost)`,
      subtitleFontSize: 12,
      subtitleFont: PLOT_FONT,
    },
    width: 560,
    height: 360,
    layer: [
      {
        data: { values: front },
        mark: { type: 'line', strokeDash: [6, 4], strokeWidth: 2, color: '#555' },
        encoding: { x, y },
      },
      {
        data: { values: withBars.filter((r) => r.std !== undefined) },
        mark: { type: 'rule', strokeWidth: 1.5, color: '#888' },
        encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
      },
      {
        data: { values: fixed },
        mark: { type: 'point', filled: true, size: 50, color: '#9a9a9a' },
        encoding: { x, y },
      },
      label(false, false),
      label(false, true),
      label(true, false),
      label(true, true),
      {
        data: { values: methods },
        mark: { type: 'point', filled: false, strokeWidth: 2.5, opacity: 1 },
        encoding: {
          x,
          y,
          color: { field: 'method', type: 'nominal', title: 'method', sort: methods.map((m) => m.method) },
          shape: {
            field: 'method',
            type: 'nominal',
            title: 'method',
            sort: methods.map((m) => m.method),
            scale: { range: METHOD_SHAPES },
          },
          size: { field: 'size', type: 'quantitative', scale: null, legend: null },
        },
      },
    ],
  };
}
