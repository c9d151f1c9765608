import { computeGae, explainedVariance } from '../../src/rl/gae';

describe('computeGae', () => {
  // One env, 5 steps, the first episode ends after step 2; the rollout ends mid-episode (bootstrap).
  const base = {
    numSteps: 5,
    numEnvs: 1,
    rewards: [1, 0, 2, 0.5, 1],
    values: [0.5, 0.4, 0.3, 0.2, 0.6],
    dones: [0, 0, 1, 0, 0],
    lastValues: [0.7],
    gamma: 0.9,
    lambda: 0.8,
  };

  it('matches hand-computed advantages and returns with an episode end in the middle', () => {
    // Worked by hand (γλ = 0.72):
    // t4: δ = 1 + 0.9·0.7 − 0.6 = 1.03                     A = 1.03
    // t3: δ = 0.5 + 0.9·0.6 − 0.2 = 0.84                   A = 0.84 + 0.72·1.03 = 1.5816
    // t2: done → δ = 2 − 0.3 = 1.7                         A = 1.7   (nothing flows back across the end)
    // t1: δ = 0 + 0.9·0.3 − 0.4 = −0.13                    A = −0.13 + 0.72·1.7 = 1.094
    // t0: δ = 1 + 0.9·0.4 − 0.5 = 0.86                     A = 0.86 + 0.72·1.094 = 1.64768
    const { advantages, returns } = computeGae(base);
    const expA = [1.64768, 1.094, 1.7, 1.5816, 1.03];
    const expR = [2.14768, 1.494, 2.0, 1.7816, 1.63];
    expA.forEach((v, i) => expect(advantages[i]).toBeCloseTo(v, 12));
    expR.forEach((v, i) => expect(returns[i]).toBeCloseTo(v, 12));
  });

  it('bootstraps the value of the terminal state on truncation only', () => {
    const { advantages } = computeGae({
      ...base,
      truncated: [0, 0, 1, 0, 0],
      terminalValues: [0, 0, 0.25, 0, 0],
    });
    // t2: δ = 2 + 0.9·0.25 − 0.3 = 1.925; t1: −0.13 + 0.72·1.925 = 1.256; t0: 0.86 + 0.72·1.256 = 1.76432
    [1.76432, 1.256, 1.925, 1.5816, 1.03].forEach((v, i) => expect(advantages[i]).toBeCloseTo(v, 12));
  });

  it('treats environment columns independently (time-major layout)', () => {
    const r = computeGae({
      numSteps: 3,
      numEnvs: 2,
      // env 0: one 3-step episode ending at t2; env 1: one-step episodes.
      rewards: [0, 10, 0, 20, 1, 30],
      values: [0, 1, 0, 2, 0, 3],
      dones: [0, 1, 0, 1, 1, 1],
      lastValues: [99, 99],
      gamma: 0.5,
      lambda: 1,
    });
    // env 1: A = r − V at each step; last value unused because done.
    expect([r.advantages[1], r.advantages[3], r.advantages[5]]).toEqual([9, 18, 27]);
    // env 0 (λ = 1): A_t = discounted return − V_t: returns 0.25, 0.5, 1.
    expect(r.returns[0]).toBeCloseTo(0.25, 12);
    expect(r.returns[2]).toBeCloseTo(0.5, 12);
    expect(r.returns[4]).toBeCloseTo(1, 12);
  });

  it('rejects arrays of the wrong length', () => {
    expect(() => computeGae({ ...base, rewards: [1, 2] })).toThrow(/rewards has 2 entries, expected 5×1/);
  });
});

describe('explainedVariance', () => {
  it('is 1 for perfect predictions, 0 for a constant at the mean, NaN for constant targets', () => {
    expect(explainedVariance([1, 2, 3], [1, 2, 3])).toBe(1);
    expect(explainedVariance([2, 2, 2], [1, 2, 3])).toBeCloseTo(0, 12);
    expect(explainedVariance([1, 2, 3], [5, 5, 5])).toBeNaN();
  });
});
