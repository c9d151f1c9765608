import { createLrSchedule } from '../../src/training/lr-schedules';

describe('learning-rate schedules', () => {
  it('constant', () => {
    const s = createLrSchedule({ type: 'constant' }, 0.01);
    expect([1, 2, 1000].map(s)).toEqual([0.01, 0.01, 0.01]);
  });

  it('cosine with linear warmup: hand-computed points', () => {
    const s = createLrSchedule({ type: 'cosine', warmupSteps: 4, totalSteps: 12, minLr: 0.1 }, 1);
    expect(s(1)).toBeCloseTo(0.25, 12);
    expect(s(4)).toBeCloseTo(1, 12);
    // halfway through the 8 cosine steps: min + (1 − min)·0.5·(1 + cos(π/2))
    expect(s(8)).toBeCloseTo(0.1 + 0.9 * 0.5, 12);
    expect(s(6)).toBeCloseTo(0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(s(12)).toBeCloseTo(0.1, 12);
    expect(s(50)).toBeCloseTo(0.1, 12);
  });

  it('cosine without warmup starts just below the base rate and decreases monotonically', () => {
    const s = createLrSchedule({ type: 'cosine', totalSteps: 10 }, 2);
    const values = Array.from({ length: 10 }, (_, i) => s(i + 1));
    values.slice(1).forEach((v, i) => expect(v).toBeLessThan(values[i]));
    expect(values[9]).toBeCloseTo(0, 12);
  });

  it('step: PyTorch StepLR (step t uses gamma^floor((t−1)/stepSize))', () => {
    const s = createLrSchedule({ type: 'step', stepSize: 3, gamma: 0.5 }, 0.8);
    expect([1, 3, 4, 6, 7].map(s)).toEqual([0.8, 0.8, 0.4, 0.4, 0.2]);
  });

  it('rejects bad fields with a message naming them', () => {
    expect(() => createLrSchedule({ type: 'cosine', totalSteps: 5, warmupSteps: 5 }, 1)).toThrow(
      /warmupSteps/,
    );
    expect(() => createLrSchedule({ type: 'step', stepSize: 0 }, 1)).toThrow(/stepSize/);
  });
});
