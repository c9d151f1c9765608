import { LevelFidelityAccumulator } from '../../src/eval/level-fidelity';
import { Rng } from '../../src/util/rng';

/** Plain float64 reference: MSE over all elements, cosine per image averaged. */
function reference(s: number[], t: number[], n: number): { mse: number; cosine: number } {
  const per = s.length / n;
  let sq = 0;
  let cos = 0;
  for (let i = 0; i < n; i++) {
    const a = s.slice(i * per, (i + 1) * per);
    const b = t.slice(i * per, (i + 1) * per);
    sq += a.reduce((acc, x, j) => acc + (x - b[j]!) ** 2, 0);
    const dot = a.reduce((acc, x, j) => acc + x * b[j]!, 0);
    const na = Math.hypot(...a);
    const nb = Math.hypot(...b);
    cos += na > 0 && nb > 0 ? dot / (na * nb) : 0;
  }
  return { mse: sq / s.length, cosine: cos / n };
}

describe('LevelFidelityAccumulator', () => {
  it('gives hand-computed MSE and cosine', () => {
    const a = new LevelFidelityAccumulator('P3');
    a.add([1, 0], [0, 1], 1); // orthogonal: cos 0, mse (1 + 1) / 2
    a.add([1, 2], [2, 4], 1); // parallel: cos 1, squared errors 1 + 4
    expect(a.result().mse).toBeCloseTo((2 + 5) / 4, 12);
    expect(a.result().cosine).toBeCloseTo(0.5, 12);
    const z = new LevelFidelityAccumulator('P2');
    z.add([0, 0], [1, 1], 1); // a zero map counts as cosine 0
    expect(z.result()).toEqual({ mse: 1, cosine: 0 });
  });

  it('matches a float64 reference whatever the batch split', () => {
    const rng = new Rng('fidelity');
    const n = 6;
    const per = 5 * 3 * 3;
    const s = Array.from({ length: n * per }, () => rng.normal());
    const t = Array.from({ length: n * per }, (_, i) => 0.7 * s[i]! + 0.5 * rng.normal());
    const ref = reference(s, t, n);
    const a = new LevelFidelityAccumulator('P4');
    a.add(Float32Array.from(s.slice(0, 2 * per)), Float32Array.from(t.slice(0, 2 * per)), 2);
    a.add(Float32Array.from(s.slice(2 * per)), Float32Array.from(t.slice(2 * per)), 4);
    const r = a.result();
    // float32 storage of the inputs is the only difference from the reference
    expect(Math.abs(r.mse - ref.mse) / ref.mse).toBeLessThan(1e-6);
    expect(Math.abs(r.cosine - ref.cosine)).toBeLessThan(1e-6);
    expect(r.cosine).toBeGreaterThan(0.5);
  });

  it('refuses maps of different sizes and reports no images', () => {
    const a = new LevelFidelityAccumulator('P5');
    expect(() => a.add([1, 2, 3], [1, 2], 1)).toThrow(/level P5.*3 values.*2/);
    expect(() => a.result()).toThrow(/no images/);
  });
});
