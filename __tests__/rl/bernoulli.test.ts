import {
  bernoulliEntropy,
  bernoulliLogProb,
  constrainedDecision,
  DecisionKind,
  decisionKinds,
} from '../../src/rl/bernoulli';

const COSTS = [4 / 7.5, 2 / 7.5, 1 / 7.5, 0.5 / 7.5];

describe('Bernoulli on logits', () => {
  it('log-probs and entropies equal the textbook formulas in float64', () => {
    for (const z of [-30, -5, -0.7, 0, 0.3, 2, 12]) {
      const p = 1 / (1 + Math.exp(-z));
      expect(bernoulliLogProb(z, 1)).toBeCloseTo(Math.log(p), 12);
      expect(bernoulliLogProb(z, 0)).toBeCloseTo(Math.log1p(-p), z > 5 ? 9 : 12);
      const h = p > 0 && p < 1 ? -p * Math.log(p) - (1 - p) * Math.log1p(-p) : 0;
      expect(bernoulliEntropy(z)).toBeCloseTo(h, 10);
    }
    // Stable far in the tails where sigmoid rounds to 0 or 1.
    expect(bernoulliLogProb(-800, 1)).toBeCloseTo(-800, 9);
    expect(Number.isFinite(bernoulliLogProb(800, 0))).toBe(true);
  });

  it('forced decisions have probability 1: log-prob 0, entropy 0; impossible actions throw', () => {
    expect(constrainedDecision(3.2, 1, DecisionKind.ForcedOn)).toEqual({
      logProb: 0,
      entropy: 0,
      probOne: 1,
    });
    expect(constrainedDecision(3.2, 0, DecisionKind.ForcedOff)).toEqual({
      logProb: 0,
      entropy: 0,
      probOne: 0,
    });
    expect(() => constrainedDecision(0, 1, DecisionKind.ForcedOff)).toThrow(/forced to 0 by the budget/);
    expect(() => constrainedDecision(0, 0, DecisionKind.ForcedOn)).toThrow(/forced to 1 by minLevels/);
  });
});

describe('decision constraints', () => {
  const c = { costs: COSTS, minLevels: 1 };
  const { Free: F, ForcedOn: ON, ForcedOff: OFF } = DecisionKind;

  it('masks levels the remaining budget cannot pay for', () => {
    // budget 0.3: P2 (0.533) unaffordable; P3 (0.267) affordable; after taking P3 only 0.033 is left.
    expect(Array.from(decisionKinds([0, 1, 0, 0], 0.3, c))).toEqual([OFF, F, OFF, OFF]);
  });

  it('forces the last affordable level when nothing was selected (minLevels 1)', () => {
    expect(Array.from(decisionKinds([0, 0, 0, 1], 0.3, c))).toEqual([OFF, F, F, ON]);
    expect(Array.from(decisionKinds([0, 0, 0, 1], 1, c))).toEqual([F, F, F, ON]);
    // Nothing is forced once the minimum is met.
    expect(Array.from(decisionKinds([1, 0, 0, 0], 1, c))).toEqual([F, F, F, F]);
  });

  it('minLevels wins over a budget that cannot pay for any level (last level forced)', () => {
    expect(Array.from(decisionKinds([0, 0, 0, 1], 0.01, c))).toEqual([OFF, OFF, OFF, ON]);
  });

  it('forces as many levels as minLevels needs', () => {
    expect(Array.from(decisionKinds([0, 0, 1, 1], 1, { costs: COSTS, minLevels: 2 }))).toEqual([
      F,
      F,
      ON,
      ON,
    ]);
    expect(Array.from(decisionKinds([1, 1, 1, 1], 1, { costs: COSTS, minLevels: 4 }))).toEqual([
      ON,
      ON,
      ON,
      ON,
    ]);
    expect(Array.from(decisionKinds([0, 0, 0, 0], 1, { costs: COSTS, minLevels: 0 }))).toEqual([F, F, F, F]);
  });
});
