import { annealedTemperature, ArchitectureAdam, gumbelGates, sigmoid } from '../../src/nas/gates';
import { Rng } from '../../src/util/rng';

describe('NAS gates', () => {
  it('hard Gumbel gates are on with probability σ(α) (Gumbel-max), never all off', () => {
    const rng = new Rng(7);
    const alpha = [1.5, -1, 0];
    const on = [0, 0, 0];
    const n = 20000;
    let allOffForced = 0;
    for (let i = 0; i < n; i++) {
      const g = gumbelGates(alpha, 1, rng);
      expect(g.hard.some((h) => h === 1)).toBe(true);
      if (g.soft.every((s) => s <= 0.5)) allOffForced++;
      else g.hard.forEach((h, l) => (on[l] += h));
    }
    // Among samples not forced on: P(on) = σ(α) · (renormalized by P(not all off)).
    const notAllOff = 1 - alpha.reduce((a, x) => a * (1 - sigmoid(x)), 1);
    alpha.forEach((a, l) => expect(on[l] / n).toBeCloseTo(sigmoid(a), 1));
    expect(allOffForced / n).toBeCloseTo(1 - notAllOff, 2);
  });

  it('the straight-through derivative is s(1 − s)/τ of the relaxed sample', () => {
    const g = gumbelGates([0.3, -0.2], 4, new Rng(1));
    g.soft.forEach((s, l) => expect(g.derivative[l]).toBeCloseTo((s * (1 - s)) / 4, 14));
  });

  it('anneals the temperature linearly from 10 to 0.1', () => {
    expect(annealedTemperature(0, 5)).toBe(10);
    expect(annealedTemperature(4, 5)).toBeCloseTo(0.1, 12);
    expect(annealedTemperature(2, 5)).toBeCloseTo(5.05, 12);
  });

  it('Adam: the first steps by hand (bias-corrected moments, L2 decay in the gradient)', () => {
    const x = [1, -2];
    const adam = new ArchitectureAdam(2, { lr: 0.1, betas: [0.5, 0.999], weightDecay: 0.01, eps: 0 });
    adam.step(x, [0.3, -0.5]);
    // Step 1: m̂ = g', v̂ = g'², so x −= lr·sign(g') with g' = g + 0.01·x.
    expect(x[0]).toBeCloseTo(0.9, 14);
    expect(x[1]).toBeCloseTo(-1.9, 14);
    adam.step(x, [0.1, 0.2]);
    const g1 = [0.3 + 0.01, -0.5 - 0.02];
    const g2 = [0.1 + 0.01 * 0.9, 0.2 - 0.01 * 1.9];
    const expected = [0.9, -1.9].map((v, i) => {
      const m = (0.5 * 0.5 * g1[i] + 0.5 * g2[i]) / (1 - 0.25);
      const s = (0.999 * 0.001 * g1[i] ** 2 + 0.001 * g2[i] ** 2) / (1 - 0.999 ** 2);
      return v - (0.1 * m) / Math.sqrt(s);
    });
    expect(x[0]).toBeCloseTo(expected[0], 12);
    expect(x[1]).toBeCloseTo(expected[1], 12);
  });
});
