/**
 * GradNorm weight evolution: one line per pyramid level over GradNorm updates, from the weight history a
 * checkpoint keeps (or, for runs without one, the `gradnorm/weight/<level>` values of metrics.jsonl).
 */
import type { MetricsRecord } from '../logging/metrics';
import type { PlotSpec } from './render';

/** One point of a level's weight curve. */
export interface WeightPoint {
  step: number;
  level: string;
  weight: number;
}

/** The weight curves and what their x axis counts. */
export interface WeightCurves {
  points: WeightPoint[];
  levelNames: string[];
  /** 'update' (GradNorm updates, from a checkpoint's history) or 'step' (global steps, from metrics). */
  axis: 'update' | 'step';
}

/** Curves from a GradNorm history (entry i: the weights after update `step`; entry 0 the start). */
export function weightsFromHistory(
  levelNames: readonly string[],
  history: readonly { step: number; weights: readonly number[] }[],
): WeightCurves {
  const points = history.flatMap((h) =>
    levelNames.map((level, l) => ({ step: h.step, level, weight: h.weights[l] })),
  );
  return { points, levelNames: [...levelNames], axis: 'update' };
}

const WEIGHT_KEY = 'gradnorm/weight/';

/** Curves from metrics records: every record with `gradnorm/weight/<level>` values (null values skipped). */
export function weightsFromMetrics(records: readonly MetricsRecord[]): WeightCurves {
  const levelNames: string[] = [];
  const points: WeightPoint[] = [];
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) {
      if (!k.startsWith(WEIGHT_KEY) || typeof v !== 'number') continue;
      const level = k.slice(WEIGHT_KEY.length);
      if (!levelNames.includes(level)) levelNames.push(level);
      points.push({ step: r.step, level, weight: v });
    }
  }
  return { points, levelNames, axis: 'step' };
}

const WIDTH = 560;
const DASHES = [
  [1, 0],
  [10, 4],
  [4, 3],
  [10, 3, 2, 3],
  [2, 2],
  [14, 6],
];

/** Vega-lite spec: a line per level, and the uniform weight 1/L as a dashed reference. */
export function gradnormWeightsSpec(curves: WeightCurves, options: { title?: string } = {}): PlotSpec {
  const L = curves.levelNames.length;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title ?? 'GradNorm level weights',
    width: WIDTH,
    height: 300,
    layer: [
      {
        data: { values: curves.points },
        // Dashes per level: levels whose weights coincide stay visible through each other's gaps.
        mark: { type: 'line', strokeWidth: 2.5 },
        encoding: {
          x: {
            field: 'step',
            type: 'quantitative',
            title: curves.axis === 'update' ? 'GradNorm update' : 'global step',
          },
          y: { field: 'weight', type: 'quantitative', title: 'weight (levels sum to 1)' },
          color: { field: 'level', type: 'nominal', sort: curves.levelNames, title: 'level' },
          strokeDash: {
            field: 'level',
            type: 'nominal',
            sort: curves.levelNames,
            title: 'level',
            scale: { range: DASHES },
            legend: { symbolSize: 500, symbolStrokeWidth: 2.5 },
          },
        },
      },
      {
        data: { values: [{ uniform: 1 / Math.max(1, L), label: `uniform 1/${L}` }] },
        layer: [
          {
            mark: { type: 'rule', strokeDash: [6, 4], color: '#777' },
            encoding: { y: { field: 'uniform', type: 'quantitative' } },
          },
          {
            mark: { type: 'text', align: 'right', dx: -4, dy: 12, color: '#555', fontSize: 12 },
            encoding: {
              y: { field: 'uniform', type: 'quantitative' },
              x: { value: WIDTH },
              text: { field: 'label' },
            },
          },
        ],
      },
    ],
  };
}
