/**
 * COCOeval's default bbox parameters (pycocotools `Params.setDetParams`). The thresholds are computed the way
 * numpy's `linspace` computes them (`i · step + start`, the last one set to `stop`), so every float equals the
 * reference bit for bit; that matters because IoUs and recalls are compared against them with `<` and `>=`.
 */

/** `numpy.linspace(start, stop, num)` with endpoint=True, float for float. */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

/** IoU thresholds .50:.05:.95 (10 values). */
export const COCO_IOU_THRESHOLDS: readonly number[] = linspace(
  0.5,
  0.95,
  Math.round((0.95 - 0.5) / 0.05) + 1,
);

/** Recall thresholds 0:.01:1 (101 values) of the interpolated precision. */
export const COCO_RECALL_THRESHOLDS: readonly number[] = linspace(0, 1, Math.round((1 - 0) / 0.01) + 1);

/** Detections kept per image for the three recall columns; the largest also caps matching. */
export const COCO_MAX_DETS: readonly number[] = [1, 10, 100];

/** An object-area range [min, max], both ends inclusive, by the annotation's `area`. */
export interface CocoAreaRange {
  readonly label: 'all' | 'small' | 'medium' | 'large';
  readonly min: number;
  readonly max: number;
}

/** all / small (< 32²) / medium / large (> 96²); an area exactly on a boundary counts in both neighbours. */
export const COCO_AREA_RANGES: readonly CocoAreaRange[] = [
  { label: 'all', min: 0, max: 1e5 ** 2 },
  { label: 'small', min: 0, max: 32 ** 2 },
  { label: 'medium', min: 32 ** 2, max: 96 ** 2 },
  { label: 'large', min: 96 ** 2, max: 1e5 ** 2 },
];

/** What one summary number averages: precision (AP) or recall (AR) at an IoU threshold (all when absent). */
export interface CocoStatDefinition {
  readonly name: string;
  readonly kind: 'AP' | 'AR';
  readonly iouThreshold?: number;
  readonly area: CocoAreaRange['label'];
  readonly maxDets: number;
}

/** The 12 summary numbers, in COCOeval.summarize()'s order (bbox). */
export const COCO_STATS = [
  { name: 'AP', kind: 'AP', area: 'all', maxDets: 100 },
  { name: 'AP50', kind: 'AP', iouThreshold: 0.5, area: 'all', maxDets: 100 },
  { name: 'AP75', kind: 'AP', iouThreshold: 0.75, area: 'all', maxDets: 100 },
  { name: 'APs', kind: 'AP', area: 'small', maxDets: 100 },
  { name: 'APm', kind: 'AP', area: 'medium', maxDets: 100 },
  { name: 'APl', kind: 'AP', area: 'large', maxDets: 100 },
  { name: 'AR1', kind: 'AR', area: 'all', maxDets: 1 },
  { name: 'AR10', kind: 'AR', area: 'all', maxDets: 10 },
  { name: 'AR100', kind: 'AR', area: 'all', maxDets: 100 },
  { name: 'ARs', kind: 'AR', area: 'small', maxDets: 100 },
  { name: 'ARm', kind: 'AR', area: 'medium', maxDets: 100 },
  { name: 'ARl', kind: 'AR', area: 'large', maxDets: 100 },
] as const satisfies readonly CocoStatDefinition[];

/** One of the 12 summary numbers' names. */
export type CocoStatName = (typeof COCO_STATS)[number]['name'];

/** The names of the 12 summary numbers, in order. */
export const COCO_STAT_NAMES: readonly CocoStatName[] = COCO_STATS.map((s) => s.name);
