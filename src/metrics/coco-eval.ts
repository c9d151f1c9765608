/**
 * COCO bbox evaluation, a port of pycocotools' COCOeval (evaluate → accumulate → summarize) written to give
 * the same 12 numbers. What exactness takes, beyond the textbook algorithm:
 * - each ground truth's `ignore` is its `iscrowd` (a user `ignore` field is overwritten, as COCOeval does);
 *   area ranges use the annotation's `area` field with both ends inclusive;
 * - per (image, category) detections are sorted by score with ties kept in input order (numpy's stable
 *   mergesort) and cut to 100 before matching; per image the first 1 / 10 / 100 of them count for maxDets;
 * - across images, results are concatenated in image-id order and sorted stably again;
 * - a detection matches the not-yet-matched ground truth with the highest IoU ≥ threshold (ties go to the
 *   later one, regular before ignored); crowd regions absorb any number of detections;
 * - precision is made monotone and read at the 101 recall thresholds with numpy's `searchsorted(side='left')`;
 *   thresholds beyond the last recall reached give 0; settings without ground truth are -1 and left out of
 *   the means.
 * - one quirk kept on purpose: COCOeval records a match by the ground truth's id and treats id 0 as "no
 *   match", so a detection matched to an annotation with id 0 counts as a false positive (while the
 *   annotation is still used up). Datasets whose annotation ids start at 0 get the same numbers here.
 * Detections on images the ground truth does not list are an error (pycocotools' loadRes asserts this);
 * annotations and detections of categories or images outside the ground truth's lists are left out, as in
 * COCOeval, and counted in `skipped`.
 */
import { RlpkdError } from '../errors';
import { cocoBoxIou, type XywhBox } from './box-iou';
import {
  COCO_AREA_RANGES,
  COCO_IOU_THRESHOLDS,
  COCO_MAX_DETS,
  COCO_RECALL_THRESHOLDS,
  COCO_STAT_NAMES,
  COCO_STATS,
  type CocoStatDefinition,
  type CocoStatName,
} from './coco-params';

/** A ground-truth object as COCO instances files store it (only the fields the evaluation reads). */
export interface CocoGtAnnotation {
  readonly id: number;
  readonly image_id: number;
  readonly category_id: number;
  readonly bbox: XywhBox;
  /** Object area (segment area in COCO files); defaults to the box's w·h when absent. */
  readonly area?: number;
  readonly iscrowd?: number | boolean;
}

/** The parts of a COCO instances file the evaluation needs. */
export interface CocoGroundTruth {
  readonly images: readonly { readonly id: number }[];
  readonly annotations: readonly CocoGtAnnotation[];
  readonly categories: readonly { readonly id: number; readonly name?: string }[];
}

/** One detection in COCO results format. */
export interface CocoDetection {
  readonly image_id: number;
  readonly category_id: number;
  readonly bbox: XywhBox;
  readonly score: number;
}

/** AP of one category (over IoU .50:.95, all areas, 100 detections). */
export interface CocoCategoryResult {
  readonly id: number;
  readonly name: string;
  /** -1 when the category has no non-crowd ground truth. */
  readonly ap: number;
  /** Non-crowd ground-truth objects of this category. */
  readonly groundTruth: number;
  readonly detections: number;
}

/** Everything COCOeval's accumulate() and summarize() produce for bbox. */
export interface CocoEvalResult {
  /** AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl; -1 where undefined. */
  readonly stats: number[];
  readonly statNames: readonly CocoStatName[];
  readonly perCategory: CocoCategoryResult[];
  /** Interpolated precision, [T=10][R=101][K][A=4][M=3] row-major; -1 where a setting has no ground truth. */
  readonly precision: Float64Array;
  /** Recall reached, [T][K][A][M] row-major. */
  readonly recall: Float64Array;
  readonly imageIds: number[];
  readonly categoryIds: number[];
  /** Annotations / detections left out because their image or category is not in the ground truth's lists. */
  readonly skipped: { readonly groundTruth: number; readonly detections: number };
}

/** A ground truth reduced to what matching reads. */
interface Gt {
  readonly id: number;
  readonly box: XywhBox;
  readonly area: number;
  readonly crowd: boolean;
}

/** A detection reduced to what matching reads. */
interface Dt {
  readonly box: XywhBox;
  readonly area: number;
  readonly score: number;
}

/** COCOeval.evaluateImg's output for one (image, category, area range), maxDet = 100. */
interface ImageEval {
  readonly scores: Float64Array;
  /** [T][D]: matched to a ground truth with a non-zero id. */
  readonly matched: Uint8Array;
  /** [T][D]: matched to an ignored ground truth, or unmatched and outside the area range. */
  readonly ignored: Uint8Array;
  /** Ground truths not ignored (inside the area range and not crowd). */
  readonly regularGt: number;
}

const T = COCO_IOU_THRESHOLDS.length;
const R = COCO_RECALL_THRESHOLDS.length;
const A = COCO_AREA_RANGES.length;
const M = COCO_MAX_DETS.length;
const MAX_DET = COCO_MAX_DETS[M - 1]!;
/** numpy.spacing(1), the epsilon in COCOeval's precision denominator. */
const EPS = 2.220446049250313e-16;

/** Evaluates bbox detections against COCO ground truth exactly as pycocotools' COCOeval does. */
export function evaluateCoco(gt: CocoGroundTruth, detections: readonly CocoDetection[]): CocoEvalResult {
  const imageIds = [...new Set(gt.images.map((im) => checkId(im.id, 'ground truth image id')))].sort(
    (a, b) => a - b,
  );
  const categoryIds = [...new Set(gt.categories.map((c) => checkId(c.id, 'ground truth category id')))].sort(
    (a, b) => a - b,
  );
  const names = new Map(gt.categories.map((c) => [c.id, c.name ?? String(c.id)]));
  const groups = groupByImageAndCategory(gt, detections, imageIds, categoryIds);
  const K = categoryIds.length;
  const I = imageIds.length;

  // evaluate(): per category, area range and image (COCOeval's evalImgs order).
  const evals: (ImageEval | null)[] = new Array<ImageEval | null>(K * A * I).fill(null);
  categoryIds.forEach((cat, k) => {
    imageIds.forEach((img, i) => {
      const group = groups.pairs.get(pairKey(img, cat));
      if (!group) return;
      const dts = sortByScore(group.dts).slice(0, MAX_DET);
      const ious = dts.map((d) => group.gts.map((g) => cocoBoxIou(d.box, g.box, g.crowd)));
      COCO_AREA_RANGES.forEach((range, a) => {
        evals[(k * A + a) * I + i] = evaluateImage(group.gts, dts, ious, range.min, range.max);
      });
    });
  });

  const { precision, recall } = accumulate(evals, K, I);
  const stats = summarize(precision, recall, K);
  const perCategory = categoryIds.map((id, k) => ({
    id,
    name: names.get(id) ?? String(id),
    ap: meanDefined(precisionValues(precision, K, { k, a: 0, m: M - 1 })),
    groundTruth: groups.regularGtPerCategory.get(id) ?? 0,
    detections: groups.dtPerCategory.get(id) ?? 0,
  }));
  return {
    stats,
    statNames: COCO_STAT_NAMES,
    perCategory,
    precision,
    recall,
    imageIds,
    categoryIds,
    skipped: groups.skipped,
  };
}

function checkId(id: number, what: string): number {
  if (!Number.isSafeInteger(id)) {
    throw new RlpkdError(`${what} ${String(id)} is not an integer`, {
      hint: 'COCO ids are integers (images[].id, categories[].id, annotations[].image_id/category_id)',
    });
  }
  return id;
}

function checkBox(box: XywhBox, what: string): XywhBox {
  if (box.length !== 4 || !box.every(Number.isFinite) || box[2] < 0 || box[3] < 0) {
    throw new RlpkdError(`${what} has bbox ${JSON.stringify(box)}`, {
      hint: 'a COCO bbox is [x, y, width, height] with finite numbers and width, height ≥ 0',
    });
  }
  return box;
}

const pairKey = (img: number, cat: number): string => `${img}/${cat}`;

interface Groups {
  pairs: Map<string, { gts: Gt[]; dts: Dt[] }>;
  regularGtPerCategory: Map<number, number>;
  dtPerCategory: Map<number, number>;
  skipped: { groundTruth: number; detections: number };
}

/** COCOeval._prepare: annotations and detections per (image, category), in input order. */
function groupByImageAndCategory(
  gt: CocoGroundTruth,
  detections: readonly CocoDetection[],
  imageIds: readonly number[],
  categoryIds: readonly number[],
): Groups {
  const images = new Set(imageIds);
  const categories = new Set(categoryIds);
  const pairs = new Map<string, { gts: Gt[]; dts: Dt[] }>();
  const regularGtPerCategory = new Map<number, number>();
  const dtPerCategory = new Map<number, number>();
  const skipped = { groundTruth: 0, detections: 0 };
  const pair = (img: number, cat: number): { gts: Gt[]; dts: Dt[] } => {
    const key = pairKey(img, cat);
    let p = pairs.get(key);
    if (!p) pairs.set(key, (p = { gts: [], dts: [] }));
    return p;
  };
  const seenIds = new Set<number>();
  gt.annotations.forEach((a, n) => {
    const what = `ground truth annotations[${n}]`;
    checkId(a.id, `${what} id`);
    if (seenIds.has(a.id)) {
      throw new RlpkdError(`${what} repeats annotation id ${a.id}`, {
        hint: 'annotation ids must be unique (COCOeval would silently evaluate one of them twice)',
      });
    }
    seenIds.add(a.id);
    const box = checkBox(a.bbox, what);
    if (!images.has(checkId(a.image_id, `${what} image_id`)) || !categories.has(a.category_id)) {
      skipped.groundTruth++;
      return;
    }
    const crowd = a.iscrowd === true || a.iscrowd === 1;
    const area = a.area ?? box[2] * box[3];
    if (!Number.isFinite(area))
      throw new RlpkdError(`${what} has area ${String(a.area)}`, { hint: 'area is a number' });
    pair(a.image_id, a.category_id).gts.push({ id: a.id, box, area, crowd });
    if (!crowd) regularGtPerCategory.set(a.category_id, (regularGtPerCategory.get(a.category_id) ?? 0) + 1);
  });
  detections.forEach((d, n) => {
    const what = `detection [${n}]`;
    const box = checkBox(d.bbox, what);
    if (!Number.isFinite(d.score)) {
      throw new RlpkdError(`${what} has score ${String(d.score)}`, {
        hint: 'every detection needs a finite score',
      });
    }
    if (!images.has(checkId(d.image_id, `${what} image_id`))) {
      throw new RlpkdError(`${what} is on image ${d.image_id}, which the ground truth does not list`, {
        hint: 'results must use the image ids of the ground-truth file (pycocotools refuses such results too)',
      });
    }
    if (!categories.has(d.category_id)) {
      skipped.detections++;
      return;
    }
    pair(d.image_id, d.category_id).dts.push({ box, area: box[2] * box[3], score: d.score });
    dtPerCategory.set(d.category_id, (dtPerCategory.get(d.category_id) ?? 0) + 1);
  });
  return { pairs, regularGtPerCategory, dtPerCategory, skipped };
}

/** Highest score first; equal scores keep input order (Array.prototype.sort is stable). */
function sortByScore(dts: readonly Dt[]): Dt[] {
  return [...dts].sort((p, q) => q.score - p.score);
}

/** COCOeval.evaluateImg for one (image, category, area range); `dts` sorted and cut, `ious` [D][G]. */
function evaluateImage(
  gts: readonly Gt[],
  dts: readonly Dt[],
  ious: readonly (readonly number[])[],
  minArea: number,
  maxArea: number,
): ImageEval {
  const outside = (area: number): boolean => area < minArea || area > maxArea;
  const gtIgnoreOf = gts.map((g) => (g.crowd || outside(g.area) ? 1 : 0));
  // Regular ground truths first, ignored last, each group in input order (a stable sort on the flag).
  const order = [...gts.keys()].sort((p, q) => gtIgnoreOf[p]! - gtIgnoreOf[q]!);
  const G = gts.length;
  const D = dts.length;
  const gtIgnore = order.map((g) => gtIgnoreOf[g]!);
  const gtUsed = new Uint8Array(T * G);
  const matchedId = new Float64Array(T * D);
  const ignored = new Uint8Array(T * D);
  if (D > 0 && G > 0) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        let best = Math.min(COCO_IOU_THRESHOLDS[t]!, 1 - 1e-10);
        let m = -1;
        for (let j = 0; j < G; j++) {
          const g = order[j]!;
          if (gtUsed[t * G + j] && !gts[g]!.crowd) continue;
          // Once matched to a regular ground truth, an ignored one cannot take the detection away.
          if (m > -1 && gtIgnore[m] === 0 && gtIgnore[j] === 1) break;
          const iou = ious[d]![g]!;
          if (iou < best) continue;
          best = iou;
          m = j;
        }
        if (m === -1) continue;
        ignored[t * D + d] = gtIgnore[m]!;
        matchedId[t * D + d] = gts[order[m]!]!.id;
        gtUsed[t * G + m] = 1;
      }
    }
  }
  const matched = new Uint8Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < D; d++) {
      const i = t * D + d;
      matched[i] = matchedId[i] !== 0 ? 1 : 0;
      if (!matched[i] && outside(dts[d]!.area)) ignored[i] = 1;
    }
  }
  return {
    scores: Float64Array.from(dts, (d) => d.score),
    matched,
    ignored,
    regularGt: gtIgnore.filter((f) => f === 0).length,
  };
}

/** COCOeval.accumulate: precision at the recall thresholds and final recall, per (T, K, A, M). */
function accumulate(
  evals: readonly (ImageEval | null)[],
  K: number,
  I: number,
): { precision: Float64Array; recall: Float64Array } {
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const E: ImageEval[] = [];
      for (let i = 0; i < I; i++) {
        const e = evals[(k * A + a) * I + i];
        if (e) E.push(e);
      }
      if (E.length === 0) continue;
      const regularGt = E.reduce((s, e) => s + e.regularGt, 0);
      for (let m = 0; m < M; m++) {
        if (regularGt === 0) continue;
        // Each image's first maxDet detections, images in id order, then one stable sort by score.
        const entries: { e: ImageEval; d: number; D: number }[] = [];
        for (const e of E) {
          const D = e.scores.length;
          for (let d = 0; d < Math.min(COCO_MAX_DETS[m]!, D); d++) entries.push({ e, d, D });
        }
        entries.sort((p, q) => q.e.scores[q.d]! - p.e.scores[p.d]!);
        const nd = entries.length;
        const rc = new Float64Array(nd);
        const pr = new Float64Array(nd);
        for (let t = 0; t < T; t++) {
          let tp = 0;
          let fp = 0;
          entries.forEach(({ e, d, D }, j) => {
            if (!e.ignored[t * D + d]) {
              if (e.matched[t * D + d]) tp++;
              else fp++;
            }
            rc[j] = tp / regularGt;
            pr[j] = tp / (fp + tp + EPS);
          });
          recall[((t * K + k) * A + a) * M + m] = nd > 0 ? rc[nd - 1]! : 0;
          for (let j = nd - 1; j > 0; j--) if (pr[j]! > pr[j - 1]!) pr[j - 1] = pr[j]!;
          for (let r = 0; r < R; r++) {
            const j = searchsortedLeft(rc, COCO_RECALL_THRESHOLDS[r]!);
            // Beyond the last recall reached, COCOeval leaves 0 for this and every higher threshold.
            const q = j < nd ? pr[j]! : 0;
            precision[(((t * R + r) * K + k) * A + a) * M + m] = q;
          }
        }
      }
    }
  }
  return { precision, recall };
}

/** numpy.searchsorted(sorted, value, side='left'): the first index whose element is ≥ value. */
export function searchsortedLeft(sorted: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Selects precision values over all recall thresholds for the given slices (undefined = all). */
function precisionValues(
  precision: Float64Array,
  K: number,
  at: { t?: number; k?: number; a: number; m: number },
): number[] {
  const out: number[] = [];
  for (let t = 0; t < T; t++) {
    if (at.t !== undefined && t !== at.t) continue;
    for (let r = 0; r < R; r++) {
      for (let k = 0; k < K; k++) {
        if (at.k !== undefined && k !== at.k) continue;
        out.push(precision[(((t * R + r) * K + k) * A + at.a) * M + at.m]!);
      }
    }
  }
  return out;
}

function recallValues(recall: Float64Array, K: number, a: number, m: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < T; t++) for (let k = 0; k < K; k++) out.push(recall[((t * K + k) * A + a) * M + m]!);
  return out;
}

/** Mean of the values > -1, or -1 when there are none (COCOeval's `_summarize`). */
function meanDefined(values: readonly number[]): number {
  let sum = 0;
  let n = 0;
  for (const v of values) {
    if (v > -1) {
      sum += v;
      n++;
    }
  }
  return n === 0 ? -1 : sum / n;
}

/**
 * COCOeval.summarize for bbox: the 12 numbers. Like COCOeval, AP50 / AP75 pick their threshold by float
 * equality, which holds because the thresholds are computed as numpy computes them.
 */
function summarize(precision: Float64Array, recall: Float64Array, K: number): number[] {
  return COCO_STATS.map((stat: CocoStatDefinition) => {
    const a = COCO_AREA_RANGES.findIndex((r) => r.label === stat.area);
    const m = COCO_MAX_DETS.indexOf(stat.maxDets);
    if (stat.kind === 'AR') return meanDefined(recallValues(recall, K, a, m));
    const t = stat.iouThreshold === undefined ? {} : { t: COCO_IOU_THRESHOLDS.indexOf(stat.iouThreshold) };
    return meanDefined(precisionValues(precision, K, { a, m, ...t }));
  });
}
