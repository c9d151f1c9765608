/** Curve data from metrics records and GradNorm histories, against hand-made records. */
import type { MetricsRecord } from '../../src/logging/metrics';
import { weightsFromHistory, weightsFromMetrics } from '../../src/viz/gradnorm-weights';
import { lossCurvePoints, rlCurvePoints } from '../../src/viz/training-curves';

const records: MetricsRecord[] = [
  { step: 0, phase: 1, 'heldout/start/loss': 40 },
  { step: 0, phase: 1, 'distill/loss': 9, 'distill/level_loss/P2': 5, 'distill/level_loss/P3': 4 },
  { step: 2, phase: 1, 'heldout/pretrain/loss': 30, 'heldout/pretrain/level_loss/P2': 20 },
  {
    step: 3,
    phase: 2,
    'rl/reward': 0.5,
    'rl/quality_reward': 0.1,
    'ppo/approx_kl': 0.01,
    'ppo/entropy': null,
  },
  { step: 5, phase: 3, 'distill/loss': 7, 'gradnorm/weight/P2': 0.6, 'gradnorm/weight/P3': 0.4 },
];

describe('curve data', () => {
  it('loss curves: training loss per phase, per level, held-out per epoch', () => {
    expect(lossCurvePoints(records)).toEqual([
      { panel: 'training distillation loss (per step)', series: 'phase 1', step: 0, value: 9 },
      { panel: 'training distillation loss (per step)', series: 'phase 3', step: 5, value: 7 },
      { panel: 'training loss per level (per step)', series: 'P2', step: 0, value: 5 },
      { panel: 'training loss per level (per step)', series: 'P3', step: 0, value: 4 },
      { panel: 'held-out all-level loss (per epoch)', series: 'held-out', step: 0, value: 40 },
      { panel: 'held-out all-level loss (per epoch)', series: 'held-out', step: 2, value: 30 },
      { panel: 'held-out loss per level (per epoch)', series: 'P2', step: 2, value: 20 },
    ]);
  });

  it('reward curves: rewards and PPO statistics, null values left out', () => {
    expect(rlCurvePoints(records)).toEqual([
      { panel: 'reward (per PPO iteration)', series: 'reward', step: 3, value: 0.5 },
      { panel: 'reward (per PPO iteration)', series: 'quality term', step: 3, value: 0.1 },
      { panel: 'PPO approx. KL', series: 'approx. KL', step: 3, value: 0.01 },
    ]);
  });

  it('GradNorm weights from a checkpoint history and from logged metrics', () => {
    const h = weightsFromHistory(
      ['P2', 'P3'],
      [
        { step: 0, weights: [0.5, 0.5] },
        { step: 1, weights: [0.55, 0.45] },
      ],
    );
    expect(h.axis).toBe('update');
    expect(h.points).toEqual([
      { step: 0, level: 'P2', weight: 0.5 },
      { step: 0, level: 'P3', weight: 0.5 },
      { step: 1, level: 'P2', weight: 0.55 },
      { step: 1, level: 'P3', weight: 0.45 },
    ]);
    const m = weightsFromMetrics(records);
    expect(m).toEqual({
      axis: 'step',
      levelNames: ['P2', 'P3'],
      points: [
        { step: 5, level: 'P2', weight: 0.6 },
        { step: 5, level: 'P3', weight: 0.4 },
      ],
    });
  });
});
