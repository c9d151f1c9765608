/**
 * Policy heatmap: which pyramid levels the (deterministic) policy distils on each held-out image, levels
 * as rows and images as columns. Images are ordered by a pluggable key: the number of levels chosen, their
 * cost, the image's object size (when the data has boxes), or their original order.
 */
import { RlpkdError } from '../errors';
import type { PlotSpec } from './render';

/** What a sort key sees of one held-out image. */
export interface HeatmapImage {
  /** Position in the held-out set. */
  index: number;
  /** Selected level names. */
  levels: readonly string[];
  /** Σ cost of the selected levels (undefined when the run did not record the level costs). */
  cost?: number;
  /** Object size of the image (undefined or null when the data has no boxes for it). */
  objectSize?: number | null;
}

/** How to order the images: a label for the axis and a key (ascending; ties keep held-out order). */
export interface HeatmapSort {
  label: string;
  /** Short name for the key strip's axis (default: label). */
  short?: string;
  key: (image: HeatmapImage) => number;
}

/** The built-in orders. */
export const HEATMAP_SORTS = {
  levels: { label: 'number of levels chosen', short: 'levels', key: (i: HeatmapImage) => i.levels.length },
  cost: { label: 'cost of the levels chosen', short: 'cost', key: (i: HeatmapImage) => i.cost ?? Number.NaN },
  'object-size': {
    label: 'object size (√box area, px)',
    short: 'size (px)',
    key: (i: HeatmapImage) => i.objectSize ?? Number.NaN,
  },
  none: { label: 'held-out order', key: (i: HeatmapImage) => i.index },
} satisfies Record<string, HeatmapSort>;

/** Name of a built-in order. */
export type HeatmapSortName = keyof typeof HEATMAP_SORTS;

/** One cell of the heatmap. */
export interface HeatmapCell {
  /** Column (0 = first image after sorting). */
  column: number;
  /** The image's position in the held-out set. */
  image: number;
  level: string;
  distilled: boolean;
}

/** The heatmap's data. */
export interface HeatmapData {
  levelNames: string[];
  /** Held-out indices in column order. */
  order: number[];
  /** The sort key of each column (NaN where the image has none). */
  keys: number[];
  cells: HeatmapCell[];
  sortLabel: string;
  /** Short name of the sort key. */
  sortShort: string;
}

/** Inputs of the heatmap. */
export interface HeatmapInput {
  levelNames: readonly string[];
  /** Selected level names per held-out image. */
  selections: readonly (readonly string[])[];
  /** Cost per level (level order), for the 'cost' order. */
  costs?: readonly number[];
  /** Object size per held-out image, for the 'object-size' order. */
  objectSizes?: readonly (number | null)[];
}

/**
 * Sorts the images (stable; images without a key go last) and lays out one cell per level and image.
 * A named order that needs data the run lacks (costs, object sizes) is an error naming what is missing.
 */
export function policyHeatmapData(
  input: HeatmapInput,
  sort: HeatmapSort | HeatmapSortName = defaultHeatmapSort(input),
): HeatmapData {
  const { levelNames, selections } = input;
  if (typeof sort === 'string') {
    if (sort === 'cost' && !input.costs) {
      throw new RlpkdError('the heatmap cannot sort by cost: the run recorded no level costs', {
        hint: 'sort by levels (the number of levels chosen) instead',
      });
    }
    if (sort === 'object-size' && !input.objectSizes?.some((s) => s !== null && s !== undefined)) {
      throw new RlpkdError('the heatmap cannot sort by object size: the held-out data has no boxes', {
        hint: 'sort by levels or cost instead',
      });
    }
  }
  const how: HeatmapSort = typeof sort === 'string' ? HEATMAP_SORTS[sort] : sort;
  for (const sel of selections) {
    for (const n of sel) {
      if (!levelNames.includes(n)) {
        throw new RlpkdError(
          `the selection names level '${n}', which is not one of ${levelNames.join(', ')}`,
        );
      }
    }
  }
  const images: HeatmapImage[] = selections.map((levels, index) => ({
    index,
    levels,
    ...(input.costs ? { cost: levels.reduce((a, n) => a + input.costs![levelNames.indexOf(n)], 0) } : {}),
    ...(input.objectSizes ? { objectSize: input.objectSizes[index] ?? null } : {}),
  }));
  const keyed = images.map((img) => ({ img, key: how.key(img) }));
  const rank = (k: number) => (Number.isNaN(k) ? Number.POSITIVE_INFINITY : k);
  keyed.sort((a, b) => rank(a.key) - rank(b.key) || a.img.index - b.img.index);
  const cells: HeatmapCell[] = [];
  keyed.forEach(({ img }, column) => {
    for (const level of levelNames) {
      cells.push({ column, image: img.index, level, distilled: img.levels.includes(level) });
    }
  });
  return {
    levelNames: [...levelNames],
    order: keyed.map((k) => k.img.index),
    keys: keyed.map((k) => k.key),
    cells,
    sortLabel: how.label,
    sortShort: how.short ?? how.label,
  };
}

/** The default order: object size when the data has boxes, else the cost chosen, else the level count. */
export function defaultHeatmapSort(input: Pick<HeatmapInput, 'costs' | 'objectSizes'>): HeatmapSortName {
  if (input.objectSizes?.some((s) => s !== null && s !== undefined)) return 'object-size';
  return input.costs ? 'cost' : 'levels';
}

/**
 * Vega-lite spec of the heatmap: rows are levels (finest first), columns are images; above it, a strip of
 * bars shows each column's sort key (left out for the held-out order, or with `keyStrip: false`).
 */
export function policyHeatmapSpec(
  data: HeatmapData,
  options: { title?: string; keyStrip?: boolean } = {},
): PlotSpec {
  const M = data.order.length;
  const step = Math.max(4, Math.min(24, Math.floor(720 / Math.max(1, M))));
  // Label at most ~20 columns so the numbers stay readable.
  const every = Math.max(1, Math.ceil(M / 20));
  const ticks = data.order.map((_, c) => c).filter((c) => c % every === 0);
  const x = { field: 'column', type: 'ordinal' as const };
  const heatmap = {
    data: { values: data.cells.map((c) => ({ ...c, state: c.distilled ? 'distilled' : 'skipped' })) },
    mark: { type: 'rect' as const, stroke: 'white', strokeWidth: step >= 8 ? 1 : 0 },
    width: { step },
    height: { step: 32 },
    encoding: {
      x: {
        ...x,
        title: `held-out images, sorted by ${data.sortLabel}`,
        axis: { values: ticks, labelAngle: 0 },
      },
      y: { field: 'level', type: 'ordinal' as const, sort: data.levelNames, title: 'pyramid level' },
      color: {
        field: 'state',
        type: 'nominal' as const,
        title: 'level',
        scale: { domain: ['distilled', 'skipped'], range: ['#1f5fa8', '#e8e8e8'] },
      },
      tooltip: [
        { field: 'image', type: 'quantitative' as const, title: 'held-out image' },
        { field: 'level', type: 'nominal' as const },
        { field: 'state', type: 'nominal' as const },
      ],
    },
  };
  const title = options.title ?? `Levels distilled per held-out image (${M} images)`;
  const strip = (options.keyStrip ?? data.sortLabel !== HEATMAP_SORTS.none.label) && M > 0;
  if (!strip) return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, ...heatmap };
  const keys = data.keys.flatMap((key, column) => (Number.isFinite(key) ? [{ column, key }] : []));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    vconcat: [
      {
        data: { values: keys },
        mark: { type: 'bar', color: '#8a8a8a' },
        width: { step },
        height: 70,
        encoding: {
          x: { ...x, axis: null, scale: { domain: data.order.map((_, c) => c) } },
          y: {
            field: 'key',
            type: 'quantitative',
            title: data.sortShort,
            axis: { tickCount: 3 },
          },
        },
      },
      heatmap,
    ],
    spacing: 6,
    resolve: { scale: { x: 'shared' } },
  };
}
