/** Hand-computed COCOeval corner cases, one per rule the port has to get right. */
import {
  COCO_IOU_THRESHOLDS,
  COCO_RECALL_THRESHOLDS,
  cocoBoxIou,
  evaluateCoco,
  linspace,
  searchsortedLeft,
  type CocoDetection,
  type CocoGtAnnotation,
  type XywhBox,
} from '../../src/metrics';
import { RlpkdError } from '../../src/errors';

type Stats = Record<string, number>;

/** Ground truth on images `images` (default [1]), categories `cats` (default [1]). */
function run(
  gts: Partial<CocoGtAnnotation>[],
  dts: Partial<CocoDetection>[],
  opts: { images?: number[]; cats?: number[] } = {},
): { stats: Stats; result: ReturnType<typeof evaluateCoco> } {
  const annotations = gts.map((g, i) => ({
    id: i + 1,
    image_id: 1,
    category_id: 1,
    bbox: [0, 0, 10, 10] as XywhBox,
    iscrowd: 0,
    ...g,
  }));
  const detections = dts.map((d) => ({
    image_id: 1,
    category_id: 1,
    bbox: [0, 0, 10, 10] as XywhBox,
    score: 1,
    ...d,
  }));
  const result = evaluateCoco(
    {
      images: (opts.images ?? [1]).map((id) => ({ id })),
      annotations,
      categories: (opts.cats ?? [1]).map((id) => ({ id, name: `c${id}` })),
    },
    detections,
  );
  return { stats: Object.fromEntries(result.statNames.map((n, i) => [n, result.stats[i]!])), result };
}

/** Boxes of side 10 on a grid, 20 apart (no two overlap). */
const gridBox = (i: number): XywhBox => [(i % 20) * 20, Math.floor(i / 20) * 20, 10, 10];
const close = (x: number): number => expect.closeTo(x, 12) as number;

describe('cocoBoxIou (pycocotools bbIou)', () => {
  it('is intersection over union, with the detection area as union against a crowd box', () => {
    expect(cocoBoxIou([0, 0, 10, 10], [5, 0, 10, 10], false)).toBe(50 / 150);
    expect(cocoBoxIou([0, 0, 10, 10], [5, 0, 10, 10], true)).toBe(0.5);
    expect(cocoBoxIou([60, 60, 10, 10], [50, 50, 40, 40], true)).toBe(1);
    expect(cocoBoxIou([60, 60, 10, 10], [50, 50, 40, 40], false)).toBe(100 / 1600);
  });

  it('gives 0 for boxes that only touch (continuous coordinates, no +1)', () => {
    expect(cocoBoxIou([0, 0, 10, 10], [10, 0, 10, 10], false)).toBe(0);
    expect(cocoBoxIou([0, 0, 10, 10], [0, 10, 10, 10], true)).toBe(0);
  });
});

describe('COCOeval parameters', () => {
  it('reproduces numpy.linspace, including its 0.8999999999999999', () => {
    expect(COCO_IOU_THRESHOLDS).toHaveLength(10);
    expect(COCO_IOU_THRESHOLDS[8]).toBe(0.8999999999999999);
    expect(COCO_IOU_THRESHOLDS[5]).toBe(0.75);
    expect(COCO_RECALL_THRESHOLDS).toHaveLength(101);
    expect(COCO_RECALL_THRESHOLDS[50]).toBe(0.5);
    expect(linspace(0, 1, 1)).toEqual([0]);
  });

  it('searchsortedLeft returns the first index whose value is >= the key', () => {
    const rc = [0.5, 0.5, 1];
    expect(searchsortedLeft(rc, 0)).toBe(0);
    expect(searchsortedLeft(rc, 0.5)).toBe(0);
    expect(searchsortedLeft(rc, 0.51)).toBe(2);
    expect(searchsortedLeft(rc, 1.01)).toBe(3);
    expect(searchsortedLeft([], 0)).toBe(0);
  });
});

describe('evaluateCoco (hand-computed cases)', () => {
  it('scores one perfect detection 1 and leaves the empty area ranges at -1', () => {
    const { stats } = run([{}], [{ score: 0.9 }]);
    expect(stats).toEqual({
      AP: close(1),
      AP50: close(1),
      AP75: close(1),
      APs: close(1),
      APm: -1,
      APl: -1,
      AR1: 1,
      AR10: 1,
      AR100: 1,
      ARs: 1,
      ARm: -1,
      ARl: -1,
    });
  });

  it('reads precision on the 101-point grid with searchsorted(side=left)', () => {
    // 2 gts; TP, FP, TP: rc = [.5, .5, 1], pr = [1, .5, 2/3] -> monotone [1, 2/3, 2/3].
    // r = 0 .. 0.50 (51 thresholds) read pr[0] = 1, r = .51 .. 1 (50) read pr[2] = 2/3.
    const { stats } = run(
      [{ bbox: gridBox(0) }, { bbox: gridBox(1) }],
      [
        { bbox: gridBox(0), score: 0.9 },
        { bbox: gridBox(5), score: 0.8 },
        { bbox: gridBox(1), score: 0.7 },
      ],
    );
    expect(stats.AP).toBeCloseTo((51 + (50 * 2) / 3) / 101, 12);
    expect(stats.AR100).toBe(1);
  });

  it('matches an IoU exactly on a threshold (0.5 matches at .50 only)', () => {
    const { stats } = run([{ bbox: [0, 0, 20, 10], area: 200 }], [{ bbox: [0, 0, 10, 10] }]);
    expect(stats.AP50).toBeCloseTo(1, 12);
    expect(stats.AP75).toBe(0);
    expect(stats.AP).toBeCloseTo(0.1, 12);
    expect(stats.AR100).toBeCloseTo(0.1, 12);
  });

  it('lets crowd regions absorb any number of detections without false positives', () => {
    const gts = [{ bbox: gridBox(0) }, { bbox: [50, 50, 40, 40] as XywhBox, area: 1600, iscrowd: 1 }];
    const dts = [
      { bbox: [60, 60, 10, 10] as XywhBox, score: 0.9 },
      { bbox: [55, 55, 10, 10] as XywhBox, score: 0.8 },
      { bbox: gridBox(0), score: 0.7 },
    ];
    expect(run(gts, dts).stats.AP).toBeCloseTo(1, 12);
    // The same region as a regular object: two false positives ahead of the true one, and a missed object.
    const regular = run([gts[0]!, { ...gts[1]!, iscrowd: 0 }], dts).stats;
    expect(regular.AR100).toBe(0.5);
    expect(regular.AP50).toBeCloseTo(51 / 3 / 101, 12);
  });

  it("overwrites a ground truth's own ignore flag with iscrowd", () => {
    const gt = { bbox: gridBox(0), ignore: 1 } as Partial<CocoGtAnnotation>;
    expect(run([gt], []).stats.AR100).toBe(0);
    expect(run([gt], []).stats.AP).toBe(0);
  });

  it("bins by the annotation's area, both range ends inclusive", () => {
    // Box 50x50 (w*h in 'medium') with a segment area of 500 ('small').
    const byArea = run([{ bbox: [0, 0, 50, 50], area: 500 }], [{ bbox: [0, 0, 50, 50] }]).stats;
    expect([byArea.APs, byArea.APm, byArea.ARm]).toEqual([close(1), -1, -1]);
    // area exactly 32²: small and medium both.
    const edge = run([{ bbox: [0, 0, 32, 32], area: 1024 }], [{ bbox: [0, 0, 32, 32] }]).stats;
    expect([edge.APs, edge.APm, edge.APl]).toEqual([close(1), close(1), -1]);
  });

  it('ignores unmatched detections outside the area range but counts them in "all"', () => {
    // Small gt found at score .5; a medium-sized false positive at .9 ranks first.
    const { stats } = run(
      [{ bbox: gridBox(0), area: 100 }],
      [
        { bbox: gridBox(0), score: 0.5 },
        { bbox: [200, 200, 50, 50], score: 0.9 },
      ],
    );
    expect(stats.AP).toBeCloseTo(0.5, 12);
    expect(stats.APs).toBeCloseTo(1, 12);
  });

  it('counts detections on empty images as false positives; images without anything change nothing', () => {
    const { stats } = run(
      [{ image_id: 5, bbox: gridBox(0) }],
      [
        { image_id: 5, bbox: gridBox(0), score: 0.5 },
        { image_id: 2, bbox: gridBox(0), score: 0.9 },
      ],
      { images: [5, 2, 9] },
    );
    expect(stats.AP).toBeCloseTo(0.5, 12);
  });

  it('keeps tied scores in input order within an image', () => {
    const tp = { bbox: gridBox(0), score: 0.5 };
    const fp = { bbox: gridBox(7), score: 0.5 };
    // FP then TP: pr [0, .5] -> AP .5; TP then FP: pr [1, .5] at recall 1 from the first -> AP 1.
    expect(run([{ bbox: gridBox(0) }], [fp, tp]).stats.AP).toBeCloseTo(0.5, 12);
    expect(run([{ bbox: gridBox(0) }], [tp, fp]).stats.AP).toBeCloseTo(1, 12);
  });

  it('breaks score ties across images by image id, not by input order', () => {
    const gts = [{ image_id: 2, bbox: gridBox(0) }];
    const tp = { image_id: 2, bbox: gridBox(0), score: 0.5 };
    // The FP sits on image 1 (before image 2) or on image 3 (after it); input order is TP first both times.
    expect(run(gts, [tp, { image_id: 1, score: 0.5 }], { images: [2, 1] }).stats.AP).toBeCloseTo(0.5, 12);
    expect(run(gts, [tp, { image_id: 3, score: 0.5 }], { images: [3, 2] }).stats.AP).toBeCloseTo(1, 12);
  });

  it('gives a tied IoU to the later ground truth, which changes what the next detection can match', () => {
    // d1 has IoU 19/21 = .905 with both and takes the second (thresholds .50-.90); d2 (IoU .82 with the
    // first, .67 with the second) then matches the first up to .80: recall 1 at 7 thresholds, 1/2 at .85 and
    // .90, 0 at .95. (Giving d1 the first box would yield (4 + 5 / 2) / 10 = .65.)
    const { stats } = run(
      [{ bbox: [70, 0, 20, 20] }, { bbox: [72, 0, 20, 20] }],
      [
        { bbox: [71, 0, 20, 20], score: 0.9 },
        { bbox: [68, 0, 20, 20], score: 0.4 },
      ],
    );
    expect(stats.AR100).toBeCloseTo((7 + 2 * 0.5) / 10, 12);
  });

  it('applies maxDets per image: 1, 10, 100 of 105 exact detections', () => {
    const n = 105;
    const gts = Array.from({ length: n }, (_, i) => ({ bbox: gridBox(i) }));
    const dts = Array.from({ length: n }, (_, i) => ({ bbox: gridBox(i), score: 1 - i / 1000 }));
    const { stats } = run(gts, dts);
    expect([stats.AR1, stats.AR10, stats.AR100]).toEqual([close(1 / n), close(10 / n), close(100 / n)]);
    // Precision 1 up to recall 100/105 = .952: thresholds 0 .. .95 (96 of 101).
    expect(stats.AP).toBeCloseTo(96 / 101, 12);
  });

  it('averages only over categories with ground truth (non-contiguous ids)', () => {
    const { result } = run(
      [
        { category_id: 17, bbox: gridBox(0) },
        { category_id: 40, bbox: gridBox(1), iscrowd: 1 },
      ],
      [
        { category_id: 17, bbox: gridBox(0), score: 0.9 },
        { category_id: 3, bbox: gridBox(2), score: 0.9 },
        { category_id: 99, bbox: gridBox(3), score: 0.9 },
      ],
      { cats: [40, 3, 17] },
    );
    expect(result.categoryIds).toEqual([3, 17, 40]);
    expect(result.perCategory.map((c) => [c.id, c.ap, c.groundTruth, c.detections])).toEqual([
      [3, -1, 0, 1],
      [17, close(1), 1, 1],
      [40, -1, 0, 0],
    ]);
    expect(result.stats[0]).toBeCloseTo(1, 12);
    expect(result.skipped).toEqual({ groundTruth: 0, detections: 1 });
  });

  it('treats a match with annotation id 0 as no match, as COCOeval does', () => {
    expect(run([{ id: 0 }], [{}]).stats.AP).toBe(0);
    expect(run([{ id: 1 }], [{}]).stats.AP).toBeCloseTo(1, 12);
  });

  it('gives 0 without detections and -1 without categories', () => {
    expect(run([{}], []).stats.AP).toBe(0);
    expect(run([], [], { cats: [] }).result.stats).toEqual(new Array(12).fill(-1));
  });

  it('refuses detections on unknown images, repeated annotation ids and malformed boxes', () => {
    expect(() => run([{}], [{ image_id: 4 }])).toThrow(/image 4, which the ground truth does not list/);
    expect(() => run([{ id: 3 }, { id: 3 }], [])).toThrow(/repeats annotation id 3/);
    expect(() => run([{}], [{ bbox: [0, 0, -1, 5] }])).toThrow(RlpkdError);
    expect(() => run([{}], [{ score: Number.NaN }])).toThrow(/score NaN/);
  });
});
