/** `rlpkd metrics coco|seg`: task metrics on files from anywhere, a thin layer over src/metrics. */
import type { Command } from 'commander';
import {
  COCO_STATS,
  SEG_IGNORE_INDEX,
  evaluateCocoFiles,
  evaluateSegmentationFolders,
  type CocoEvalResult,
  type CocoStatDefinition,
  type SegmentationResult,
} from '../../metrics';
import { printJson } from '../run-cli';
import { integer, positiveInt } from '../option-parsers';
import { table } from './inspect';

interface CocoOptions {
  gt: string;
  dt: string;
  json?: boolean;
}

interface SegOptions {
  gt: string;
  pred: string;
  numClasses: number;
  reduceZeroLabel?: boolean;
  ignoreIndex: number;
  json?: boolean;
}

/** `rlpkd metrics coco --gt G --dt D` and `rlpkd metrics seg --gt DIR --pred DIR --num-classes N`. */
export function registerMetrics(program: Command): void {
  const metrics = program
    .command('metrics')
    .description(
      'task metrics on files: COCOeval-exact bbox AP/AR, mmseg-convention mIoU and pixel accuracy',
    );

  metrics
    .command('coco')
    .description('bbox AP/AR exactly as pycocotools COCOeval computes them (12 stats, per-category AP)')
    .requiredOption('--gt <file>', 'COCO instances JSON (images, annotations, categories)')
    .requiredOption('--dt <file>', 'COCO results JSON: a list of {image_id, category_id, bbox, score}')
    .option('--json', 'print one JSON object (stats in COCOeval order, per-category AP)')
    .action((opts: CocoOptions) => {
      const r = evaluateCocoFiles(opts.gt, opts.dt);
      if (opts.json) printJson(cocoJson(r));
      else process.stdout.write(formatCoco(r));
    });

  metrics
    .command('seg')
    .description('semantic segmentation: dataset-level per-class IoU, mIoU, mAcc, pixel accuracy (aAcc)')
    .requiredOption('--gt <dir>', 'folder of ground-truth label PNGs (class index per pixel)')
    .requiredOption('--pred <dir>', 'folder of predicted label PNGs with the same relative names')
    .requiredOption('--num-classes <n>', 'number of classes', positiveInt)
    .option('--reduce-zero-label', 'ADE20K convention for the ground truth: 0 is ignored, v becomes v - 1')
    .option('--ignore-index <v>', 'ground-truth value to skip', integer(0), SEG_IGNORE_INDEX)
    .option('--json', 'print one JSON object')
    .action(async (opts: SegOptions) => {
      const r = await evaluateSegmentationFolders({
        gtDir: opts.gt,
        predDir: opts.pred,
        numClasses: opts.numClasses,
        reduceZeroLabel: opts.reduceZeroLabel ?? false,
        ignoreIndex: opts.ignoreIndex,
      });
      if (opts.json) printJson(r);
      else process.stdout.write(formatSeg(r));
    });
}

/** The --json object: `stats` in COCOeval's order, the same numbers by name, per-category AP. */
function cocoJson(r: CocoEvalResult): object {
  return {
    stats: r.stats,
    statNames: r.statNames,
    summary: Object.fromEntries(r.statNames.map((n, i) => [n, r.stats[i]])),
    perCategory: r.perCategory,
    images: r.imageIds.length,
    categories: r.categoryIds.length,
    skipped: r.skipped,
  };
}

/** '.50:.95' for the mean over thresholds, '.75' for one. */
const iouLabel = (d: CocoStatDefinition): string =>
  d.iouThreshold === undefined ? '.50:.95' : d.iouThreshold.toFixed(2).slice(1);

const num = (x: number | null, digits: number): string => (x === null || x < 0 ? 'n/a' : x.toFixed(digits));

function formatCoco(r: CocoEvalResult): string {
  const withGt = r.perCategory.filter((c) => c.ap > -1).length;
  const detections = r.perCategory.reduce((s, c) => s + c.detections, 0);
  const out = [
    `COCO bbox: ${r.imageIds.length} images, ${r.categoryIds.length} categories (${withGt} with ground truth), ` +
      `${detections} detections`,
    table(
      [
        ['metric', 'value', 'IoU', 'area', 'maxDets'],
        ...COCO_STATS.map((d, i) => [d.name, num(r.stats[i]!, 3), iouLabel(d), d.area, String(d.maxDets)]),
      ],
      new Set([1, 4]),
    ),
    '',
    'per category (AP @ IoU .50:.95, all areas, 100 detections)',
    table(
      [
        ['id', 'name', 'AP', 'ground truth', 'detections'],
        ...r.perCategory.map((c) => [
          String(c.id),
          c.name,
          num(c.ap, 3),
          String(c.groundTruth),
          String(c.detections),
        ]),
      ],
      new Set([0, 2, 3, 4]),
    ),
  ];
  if (r.skipped.detections > 0 || r.skipped.groundTruth > 0) {
    out.push(
      `note: left out ${r.skipped.detections} detections and ${r.skipped.groundTruth} annotations whose ` +
        'category or image the ground truth does not list (as COCOeval does)',
    );
  }
  out.push('n/a: no ground truth in that setting (COCOeval reports -1)');
  return `${out.join('\n')}\n`;
}

function formatSeg(r: SegmentationResult & { unmatchedPredictions: number }): string {
  const pct = (x: number | null): string => (x === null ? 'n/a' : (100 * x).toFixed(2));
  const out = [
    `segmentation: ${r.images} images, ${r.pixels} labelled pixels, ${r.numClasses} classes`,
    `  mIoU ${pct(r.mIoU)}  mAcc ${pct(r.mAcc)}  aAcc ${pct(r.aAcc)}  (%)`,
    '',
    'per class (%; n/a: the class is in neither ground truth nor prediction, left out of the means)',
    table(
      [
        ['class', 'IoU', 'Acc', 'gt pixels', 'predicted'],
        ...r.perClass.map((c, i) => [
          String(i),
          pct(c.iou),
          pct(c.acc),
          String(c.labelPixels),
          String(c.predictedPixels),
        ]),
      ],
      new Set([0, 1, 2, 3, 4]),
    ),
  ];
  if (r.unmatchedPredictions > 0) {
    out.push(`note: ${r.unmatchedPredictions} predictions have no ground-truth mask and were not counted`);
  }
  return `${out.join('\n')}\n`;
}
