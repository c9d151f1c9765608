/** Top-k accuracy against hand-counted cases, ties and the ignore index included. */
import { TopKAccuracy } from '../../src/metrics';

describe('TopKAccuracy', () => {
  it('ranks equal scores by class index (first maximum wins top-1)', () => {
    const acc = new TopKAccuracy(4, { ks: [1, 2, 4] });
    acc.add(
      [
        [0.1, 0.5, 0.2, 0.2], // label 1: the maximum -> top-1
        [0.3, 0.3, 0.1, 0.0], // label 1: tied with class 0, which ranks first -> top-2
        [0.3, 0.3, 0.1, 0.0], // label 0: first of the tie -> top-1
        [1, 2, 3, 4], // label 0: three classes above it -> top-4 only
      ].flat(),
      [1, 1, 0, 0],
    );
    expect(acc.result()).toEqual({ accuracy: { 1: 2 / 4, 2: 3 / 4, 4: 1 }, samples: 4, ignored: 0 });
  });

  it('defaults to top-1 / top-5, accumulates over batches and skips the ignore index', () => {
    const acc = new TopKAccuracy(6, { ignoreIndex: -100 });
    acc.add(new Float32Array([6, 5, 4, 3, 2, 1]), [5]); // rank 6: misses top-5
    acc.add(new Float32Array([6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 9]), [4, -100]);
    expect(acc.result()).toEqual({ accuracy: { 1: 0, 5: 1 / 2 }, samples: 2, ignored: 1 });
    expect(new TopKAccuracy(3).result().accuracy).toEqual({ 1: null, 5: null });
  });

  it('refuses bad labels, NaN scores and misshapen logits', () => {
    const acc = new TopKAccuracy(2);
    expect(() => acc.add([0, 1], [2])).toThrow(/label 2 of sample 0 is outside 0..1/);
    expect(() => acc.add([0, Number.NaN], [0])).toThrow(/NaN/);
    expect(() => acc.add([0, 1, 2], [0])).toThrow(/3 logits for 1 labels/);
  });
});
