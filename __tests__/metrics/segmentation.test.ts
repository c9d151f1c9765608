/** mmsegmentation-convention mIoU / aAcc / mAcc against hand-computed confusion matrices. */
import { SegmentationConfusion } from '../../src/metrics';

describe('SegmentationConfusion', () => {
  // Image 1: (gt, pred) = (0,0) (0,1) (1,1) (1,1) (255 ignored) (2,0); image 2: (2,2) (2,0).
  // Class 0: I 1, gt 2, pred 3, union 4. Class 1: I 2, gt 2, pred 3, union 3. Class 2: I 1, gt 3, pred 1, union 3.
  const fill = (c: SegmentationConfusion): void => {
    c.add([0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 255, 2]);
    c.add(new Uint8Array([2, 0]), new Uint8Array([2, 2]));
  };

  it('sums the confusion matrix over the dataset before dividing', () => {
    const c = new SegmentationConfusion(3);
    fill(c);
    const r = c.result();
    expect(r.perClass.map((p) => p.iou)).toEqual([1 / 4, 2 / 3, 1 / 3]);
    expect(r.perClass.map((p) => p.acc)).toEqual([1 / 2, 1, 1 / 3]);
    expect(r.mIoU).toBeCloseTo((1 / 4 + 2 / 3 + 1 / 3) / 3, 15);
    expect(r.mAcc).toBeCloseTo((1 / 2 + 1 + 1 / 3) / 3, 15);
    expect(r.aAcc).toBe(4 / 7);
    expect([r.pixels, r.images]).toEqual([7, 2]);
    expect(c.count(2, 0)).toBe(2);
  });

  it('leaves classes with zero union out of mIoU; a class only predicted has IoU 0 and no accuracy', () => {
    const c = new SegmentationConfusion(5);
    fill(c);
    c.add([3], [0]); // class 3 only predicted; class 4 never seen
    const r = c.result();
    expect(r.perClass[4]).toMatchObject({ iou: null, acc: null, union: 0 });
    expect(r.perClass[3]).toMatchObject({ iou: 0, acc: null, union: 1 });
    // Class 0 now: I 1, gt 3, pred 3, union 5.
    expect(r.mIoU).toBeCloseTo((1 / 5 + 2 / 3 + 1 / 3 + 0) / 4, 15);
    expect(r.aAcc).toBe(4 / 8);
  });

  it('reduce-zero-label shifts the ground truth only (0 and 255 ignored)', () => {
    const c = new SegmentationConfusion(2, { reduceZeroLabel: true });
    c.add([1, 0, 0, 1], [0, 1, 2, 255]); // gt -> [ign, 0, 1, ign]; pred unchanged
    const r = c.result();
    expect(r.perClass.map((p) => p.iou)).toEqual([1 / 2, 0]);
    expect(r.mIoU).toBe(1 / 4);
    expect(r.aAcc).toBe(1 / 2);
    expect(r.pixels).toBe(2);
  });

  it('honours another ignore index and reports nothing defined for an all-ignored dataset', () => {
    const c = new SegmentationConfusion(2, { ignoreIndex: 0 });
    c.add([1, 1], [0, 0]);
    expect(c.result()).toMatchObject({ mIoU: null, aAcc: null, mAcc: null, pixels: 0, images: 1 });
  });

  it('refuses out-of-range labels and predictions and mismatched sizes with a hint', () => {
    const c = new SegmentationConfusion(3);
    expect(() => c.add([0], [3], 'a.png')).toThrow(/a.png: ground-truth label 3 is outside 0..2/);
    expect(() => c.add([7], [1], 'a.png')).toThrow(/predicted class 7/);
    expect(() => c.add([0, 1], [1], 'a.png')).toThrow(/2 pixels, the ground truth 1/);
    expect(() => new SegmentationConfusion(0)).toThrow(/positive whole number/);
  });
});
