/** Boxes on the square model input back to the original image (per-axis scale of fit: 'fill'). */
import { boxToOriginal, cocoBoxIou } from '../../src/metrics';

describe('boxToOriginal', () => {
  it('scales each axis by original / input size', () => {
    // 640×480 resized to 96×96: x scales by 20/3, y by 5.
    expect(boxToOriginal([12, 48, 24, 9.6], { width: 96, height: 96 }, { width: 640, height: 480 })).toEqual([
      80, 240, 160, 48,
    ]);
  });

  it('leaves IoU unchanged but not areas, which decide the COCO area range', () => {
    const input = { width: 100, height: 100 };
    const original = { width: 400, height: 100 };
    const a = boxToOriginal([0, 0, 10, 10], input, original);
    expect(a[2] * a[3]).toBe(400); // a 10×10 box on the input is 40×10 = 400 px² in the image
    expect(cocoBoxIou(a, boxToOriginal([5, 0, 10, 10], input, original), false)).toBeCloseTo(1 / 3, 15);
  });

  it('refuses empty sizes', () => {
    expect(() => boxToOriginal([0, 0, 1, 1], { width: 0, height: 96 }, { width: 10, height: 10 })).toThrow(
      /input size 0×96/,
    );
  });
});
