/**
 * What the level selection does by image content: for each object-size bin, how often each level is
 * selected, and the rank correlation between an image's object size and the finest level selected for it.
 *
 * Object size of an image: the mean area of its non-crowd boxes as a fraction of the image's area (both in
 * the original image's pixels). Bin: the record's own bin (synthetic `scales` scenes), else computed from
 * its boxes with the same thresholds (src/data/synthetic-scales.ts); `unlabelled` without boxes or size.
 * Finest level selected: the index of the finest selected level in the level order (0 = finest, P2 on a
 * P2..P5 pyramid). Correlation: Spearman's ρ (Pearson correlation of the ranks, ties given their average
 * rank), so a policy that moves to coarser levels as objects grow gives ρ > 0.
 *
 * With the images' budgets and the level costs, each bin also reports how many of its images could afford
 * each level at all (budget ≥ the level's cost): a level's selection share can only exceed that where
 * `min_levels` forces a level on. Budgets are drawn per image, so a bin's shares partly follow the draws.
 */
import { imageSizeBin, objectSizeBin } from '../data/synthetic-scales';
import type { ImageRecord } from '../data/types';

/** Bins in report order. */
export const SIZE_BINS = ['small', 'medium', 'large', 'mixed', 'unlabelled'] as const;
export type SizeBinName = (typeof SIZE_BINS)[number];

/** Selection frequency per level among the images of one bin. */
export interface BinSelection {
  bin: SizeBinName;
  images: number;
  /** Level name → share of the bin's images that selected it. */
  levels: Record<string, number>;
  /** Level name → share of the bin's images whose budget covers the level's cost (when budgets are known). */
  affordable?: Record<string, number>;
}

/** A correlation and, when it is undefined (null), why. */
export interface SizeLevelCorrelation {
  method: 'spearman';
  x: string;
  y: string;
  /** Images with both an object size and a selected level. */
  images: number;
  value: number | null;
  reason?: string;
}

/** The policy's behaviour by image content. */
export interface PolicyBySize {
  byBin: BinSelection[];
  correlation: SizeLevelCorrelation;
}

/** Mean non-crowd box area over the image area, or null without boxes or a known image size. */
export function meanObjectAreaFraction(record: ImageRecord): number | null {
  const boxes = (record.boxes ?? []).filter((b) => !b.iscrowd && b.area > 0);
  if (boxes.length === 0 || !record.width || !record.height) return null;
  return boxes.reduce((s, b) => s + b.area, 0) / boxes.length / (record.width * record.height);
}

/** The record's size bin (see module doc). */
export function recordSizeBin(record: ImageRecord): SizeBinName {
  if (record.sizeBin) return record.sizeBin;
  const boxes = (record.boxes ?? []).filter((b) => !b.iscrowd && b.area > 0);
  if (boxes.length === 0 || !record.width || !record.height) return 'unlabelled';
  return imageSizeBin(boxes.map((b) => objectSizeBin(b.area, record.width! * record.height!)));
}

/** The record of each held-out file in `split` (undefined where the split has none). */
export function heldOutRecords(
  files: readonly string[],
  split: { records: readonly ImageRecord[] },
): (ImageRecord | undefined)[] {
  const byFile = new Map(split.records.map((r) => [r.file, r]));
  return files.map((f) => byFile.get(f));
}

/** Average ranks (1-based) of `v`, ties sharing the mean of their positions. */
export function averageRanks(v: readonly number[]): number[] {
  const order = v.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(v.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

/** Spearman's ρ of paired samples, or null with the reason when it is undefined. */
export function spearman(
  x: readonly number[],
  y: readonly number[],
): { value: number | null; reason?: string } {
  if (x.length < 2)
    return { value: null, reason: `${x.length} image(s) with an object size and a selection` };
  const rx = averageRanks(x);
  const ry = averageRanks(y);
  const mean = (a: number[]) => a.reduce((s, t) => s + t, 0) / a.length;
  const mx = mean(rx);
  const my = mean(ry);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < rx.length; i++) {
    sxy += (rx[i]! - mx) * (ry[i]! - my);
    sxx += (rx[i]! - mx) ** 2;
    syy += (ry[i]! - my) ** 2;
  }
  if (syy === 0) return { value: null, reason: 'every image has the same finest selected level' };
  if (sxx === 0) return { value: null, reason: 'every image has the same object size' };
  return { value: sxy / Math.sqrt(sxx * syy) };
}

/**
 * The selection by size bin and the size–level correlation of held-out images: `selections[i]` are the
 * level names selected for `records[i]`; `levelNames` is the level order, finest first.
 */
export function policyBySize(
  selections: readonly (readonly string[])[],
  records: readonly ImageRecord[],
  levelNames: readonly string[],
  budgets?: { budgets: readonly number[]; costs: readonly number[] },
): PolicyBySize {
  const byBin: BinSelection[] = [];
  for (const bin of SIZE_BINS) {
    const idx = records.map((r, i) => (recordSizeBin(r) === bin ? i : -1)).filter((i) => i >= 0);
    if (idx.length === 0) continue;
    const share = (f: (i: number) => boolean) => idx.filter(f).length / idx.length;
    const levels = Object.fromEntries(levelNames.map((l) => [l, share((i) => selections[i]!.includes(l))]));
    const affordable = budgets
      ? Object.fromEntries(
          levelNames.map((l, k) => [l, share((i) => budgets.budgets[i]! >= budgets.costs[k]!)]),
        )
      : undefined;
    byBin.push({ bin, images: idx.length, levels, ...(affordable ? { affordable } : {}) });
  }
  const xs: number[] = [];
  const ys: number[] = [];
  records.forEach((r, i) => {
    const size = meanObjectAreaFraction(r);
    const finest = levelNames.findIndex((l) => selections[i]!.includes(l));
    if (size === null || finest < 0) return;
    xs.push(size);
    ys.push(finest);
  });
  const rho = spearman(xs, ys);
  return {
    byBin,
    correlation: {
      method: 'spearman',
      x: 'mean object area / image area',
      y: `index of the finest selected level (0 = ${levelNames[0] ?? 'finest'})`,
      images: xs.length,
      ...rho,
    },
  };
}
