/**
 * The scorer and the chance-level prior on hand-made batches: detections are mapped from the model input
 * back to the original image before COCO matching, and the prior's predictions equal hand-computed ones.
 */
import type { Batch } from '../../src/data/batch-loader';
import type { BoxAnnotation } from '../../src/data/types';
import { LabelPrior, TaskScorer } from '../../src/teach';

/** A batch of `n` 32×32 inputs whose originals are 200×100, with the given records' boxes. */
function batch(boxes: BoxAnnotation[][], extra: Partial<Batch> = {}): Batch {
  const n = boxes.length;
  return {
    epoch: 0,
    index: 0,
    images: { data: new Float32Array(n * 3 * 32 * 32), dims: [n, 3, 32, 32] },
    records: boxes.map((b, i) => ({ id: `${i}`, file: `/x/${i}.png`, boxes: b })),
    flipped: boxes.map(() => false),
    hashes: boxes.map(() => ''),
    originalSizes: boxes.map(() => ({ width: 200, height: 100 })),
    ...extra,
  };
}

const box = (bbox: [number, number, number, number], label: number): BoxAnnotation => ({
  bbox,
  categoryId: label + 1,
  label,
  iscrowd: false,
  area: bbox[2] * bbox[3],
});

describe('TaskScorer', () => {
  it('maps detections from the input back to original pixels before matching', () => {
    // Original box [50, 20, 100, 40] (x, y, w, h) on 200×100 is [8, 6.4, 16, 12.8] on the 32×32 input.
    const b = batch([[box([50, 20, 100, 40], 0)]]);
    const right = new TaskScorer('detection', 2);
    right.add(b, { task: 'detection', detections: [[{ box: [8, 6.4, 24, 19.2], score: 0.9, label: 0 }]] });
    expect(right.result().value).toBeCloseTo(1, 12);
    // The same box read as original pixels (not mapped) misses: IoU with the truth is tiny.
    const unmapped = new TaskScorer('detection', 2);
    unmapped.add(b, { task: 'detection', detections: [[{ box: [50, 20, 150, 60], score: 0.9, label: 0 }]] });
    expect(unmapped.result().values.AP50).toBe(0);
    // Wrong class: no match either; the class without ground truth is left out of the mean (COCOeval).
    const wrong = new TaskScorer('detection', 2);
    wrong.add(b, { task: 'detection', detections: [[{ box: [8, 6.4, 24, 19.2], score: 0.9, label: 1 }]] });
    expect(wrong.result().value).toBe(0);
  });

  it('classification: top-1 and top-k from logits', () => {
    const s = new TaskScorer('classification', 3);
    const b = batch([[], []], { labels: Int32Array.from([2, 0]) });
    s.add(b, { task: 'classification', logits: Float32Array.from([0, 1, 2, 0, 2, 1]) });
    // Image 0: best is 2 (right); image 1: ranking 1, 2, 0 → top-1 wrong, top-3 right.
    expect(s.result().values).toEqual({ top1: 0.5, top3: 1 });
  });
});

describe('LabelPrior (chance level)', () => {
  it('detection: each class mean box relative to the image, scored by its share of the boxes', () => {
    const p = new LabelPrior('detection', 3);
    // The prior reads the batch's boxes (model-input pixels).
    const boxes = [[box([0, 0, 16, 16], 0), box([16, 16, 16, 16], 0)], [box([8, 0, 8, 32], 2)]];
    p.add(batch([[], []], { boxes }));
    const d = p.predict(batch([[]]));
    expect(d.task).toBe('detection');
    if (d.task !== 'detection') return;
    expect(d.detections[0]).toEqual([
      { box: [8, 8, 24, 24], score: 2 / 3, label: 0 },
      { box: [8, 0, 16, 32], score: 1 / 3, label: 2 },
    ]);
  });

  it('segmentation: the majority pixel class everywhere (ignored pixels not counted)', () => {
    const p = new LabelPrior('segmentation', 3);
    const masks = new Uint8Array(2 * 32 * 32).fill(255);
    masks.fill(1, 0, 300);
    masks.fill(2, 300, 500);
    p.add(batch([[], []], { masks }));
    const s = p.predict(batch([[]]));
    expect(s.task === 'segmentation' && [...new Set(s.labelMaps[0])]).toEqual([1]);
  });

  it('classification: classes ranked by frequency, ties to the lower index', () => {
    const p = new LabelPrior('classification', 4);
    p.add(batch([[], [], [], []], { labels: Int32Array.from([3, 1, 3, 1]) }));
    const s = new TaskScorer('classification', 4);
    const b = batch([[], []], { labels: Int32Array.from([1, 3]) });
    s.add(b, p.predict(b));
    // Class 1 and 3 tie (2 each): class 1 ranks first; top-4 always hits.
    expect(s.result().values).toEqual({ top1: 0.5, top4: 1 });
  });
});
