import { drawRandomSubsets, randomSubsetDistribution } from '../../src/distill/random-selection';

// Hand reference: two levels with costs 0.8 and 0.2 give subsets {P2} 0.8, {P3} 0.2, {P2,P3} 1.0.
const costs = [0.8, 0.2];

describe('randomSubsetDistribution', () => {
  it('hits the target mean cost with the max-entropy (exponential-family) form', () => {
    for (const target of [0.3, 0.5, 0.6, 0.9]) {
      const d = randomSubsetDistribution(costs, target);
      expect(d.subsets).toEqual([[0], [1], [0, 1]]);
      expect(d.costs[0]).toBeCloseTo(0.8, 12);
      expect(d.costs[2]).toBeCloseTo(1.0, 12);
      expect(d.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      const mean = d.probs.reduce((a, p, i) => a + p * d.costs[i], 0);
      expect(mean).toBeCloseTo(target, 9);
      // log P(S) + β·cost(S) is the same constant for every subset.
      const k = d.probs.map((p, i) => Math.log(p) + d.beta * d.costs[i]);
      for (const x of k) expect(x).toBeCloseTo(k[0], 9);
    }
  });

  it('is uniform over subsets when the target is their mean cost (β = 0)', () => {
    const d = randomSubsetDistribution(costs, (0.8 + 0.2 + 1.0) / 3);
    expect(Math.abs(d.beta)).toBeLessThan(1e-9);
    for (const p of d.probs) expect(p).toBeCloseTo(1 / 3, 9);
  });

  it('clamps to the cheapest subset and to every level at the ends of the range', () => {
    expect(randomSubsetDistribution(costs, 0.1).probs).toEqual([0, 1, 0]);
    expect(randomSubsetDistribution(costs, 1).probs).toEqual([0, 0, 1]);
  });
});

describe('drawRandomSubsets', () => {
  it('draws with the distribution (seeded, reproducible)', () => {
    const d = randomSubsetDistribution([0.5, 0.3, 0.15, 0.05], 0.2);
    const a = drawRandomSubsets(d, 20000, 'seed');
    expect(drawRandomSubsets(d, 20000, 'seed')).toEqual(a);
    const cost =
      a.reduce((s, sub) => s + sub.reduce((t, l) => t + [0.5, 0.3, 0.15, 0.05][l], 0), 0) / a.length;
    // Standard error of the mean cost over 20000 draws is below 0.002 here.
    expect(Math.abs(cost - 0.2)).toBeLessThan(0.01);
    const counts = d.subsets.map((s) => a.filter((x) => x === s).length / a.length);
    counts.forEach((c, i) => expect(Math.abs(c - d.probs[i])).toBeLessThan(0.015));
  });
});
