import { cornerBoxIou, decodeFcos, nmsPerClass, type Detection, type HeadLevel } from '../../src/heads';

const logit = (p: number): number => Math.log(p / (1 - p));
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

describe('FCOS decoding and per-class NMS', () => {
  it('computes IoU in continuous coordinates', () => {
    expect(cornerBoxIou([0, 0, 10, 10], [1, 0, 11, 10])).toBeCloseTo(90 / 110, 12);
    expect(cornerBoxIou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
  });

  it('suppresses same-class boxes above IoU 0.6, best first, ties in input order (hand-computed)', () => {
    const d = (box: Detection['box'], score: number, label: number): Detection => ({ box, score, label });
    const dets = [
      d([0, 0, 10, 17], 0.6, 0), // IoU 100/170 ≈ 0.588 with the best: kept
      d([0, 0, 10, 10], 0.9, 0),
      d([1, 0, 11, 10], 0.8, 0), // IoU 90/110 ≈ 0.82: suppressed
      d([1, 0, 11, 10], 0.7, 1), // another class: kept
      d([0, 0, 10, 16], 0.6, 0), // IoU 100/160 = 0.625: suppressed
      d([30, 30, 40, 40], 0.6, 0), // tie with the first: after it
    ];
    expect(nmsPerClass(dets, 0.6)).toEqual([dets[1], dets[3], dets[0], dets[5]]);
  });

  it('decodes boxes around locations, scores √(p·centerness), thresholds, clips, keeps at most 100', () => {
    const levels: HeadLevel[] = [{ name: 'p3', channels: 1, stride: 8, height: 2, width: 2 }];
    const [A, K] = [4, 2];
    // Image 0: location 0 (4,4) class 1 at p 0.9, centerness 0.8, distances 4 → [0,0,8,8];
    // location 3 (12,12) class 0 at p σ(0.5), centerness 0.5, distances 20,2,2,2 → x1 = −8 clipped to 0;
    // location 2 class 0 at p 0.04: under the 0.05 threshold. Image 1: nothing over the threshold.
    const cls = new Float32Array(2 * A * K).fill(-10);
    const ctr = new Float32Array(2 * A);
    const box = new Float32Array(2 * A * 4).fill(4);
    cls[0 * K + 1] = logit(0.9);
    ctr[0] = logit(0.8);
    cls[3 * K + 0] = 0.5;
    box.set([20, 2, 2, 2], 3 * 4);
    cls[2 * K + 0] = logit(0.04);
    ctr[2] = 5;
    const out = decodeFcos(
      { cls, box, centerness: ctr },
      { levels, numClasses: K, imageHeight: 16, imageWidth: 16 },
    );
    expect(out).toHaveLength(2);
    expect(out[1]).toEqual([]);
    expect(out[0].map((d) => [d.label, d.box])).toEqual([
      [1, [0, 0, 8, 8]],
      [0, [0, 10, 14, 14]],
    ]);
    expect(out[0][0].score).toBeCloseTo(Math.sqrt(0.72), 6);
    expect(out[0][1].score).toBeCloseTo(Math.sqrt(sigmoid(0.5) * 0.5), 6);
  });

  it('keeps the 100 best of 150 separate candidates', () => {
    const levels: HeadLevel[] = [{ name: 'p3', channels: 1, stride: 8, height: 10, width: 15 }];
    const A = 150;
    const cls = Float32Array.from({ length: A }, (_, a) => logit(0.1 + (0.8 * a) / A));
    const out = decodeFcos(
      { cls, box: new Float32Array(A * 4).fill(2), centerness: new Float32Array(A).fill(10) },
      { levels, numClasses: 1, imageHeight: 80, imageWidth: 120 },
    )[0];
    expect(out).toHaveLength(100);
    expect(out[99].score).toBeCloseTo(Math.sqrt((0.1 + (0.8 * 50) / A) * sigmoid(10)), 6);
    expect(out[0].box).toEqual([114, 74, 118, 78]);
  });
});
