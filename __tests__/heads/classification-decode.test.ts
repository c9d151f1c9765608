/** topClasses against hand-computed softmax values. */
import { topClasses } from '../../src/heads/classification-decode';

describe('topClasses', () => {
  it('gives the k best classes with softmax probabilities, best first', () => {
    // softmax([0, ln 2, ln 3, 0]) = [1, 2, 3, 1] / 7
    const r = topClasses([0, Math.log(2), Math.log(3), 0], 3);
    expect(r.map((c) => c.label)).toEqual([2, 1, 0]);
    expect(r[0].score).toBeCloseTo(3 / 7, 12);
    expect(r[1].score).toBeCloseTo(2 / 7, 12);
    expect(r[2].score).toBeCloseTo(1 / 7, 12); // tie with class 3: the lower index first
  });

  it('stays finite for large logits and caps k at the class count', () => {
    const r = topClasses(Float32Array.of(1000, 999), 5);
    expect(r).toHaveLength(2);
    expect(r[0].score).toBeCloseTo(1 / (1 + Math.exp(-1)), 12);
  });
});
