import { StepTimings } from '../../src/distill/step-timings';
import { subsetWorkShares } from '../../src/distill/subset-shares';
import { selectionCost } from '../../src/analysis/selection-cost';
import { matchLevels } from '../../src/distill/level-matching';
import { tinyFpn } from './fixtures';

describe('StepTimings', () => {
  it('means steps and episodes per summary, subsets over the run, shares against all levels', () => {
    const predicted = (levels: readonly string[]) => levels.length / 4;
    const t = new StepTimings(['P2', 'P3', 'P4', 'P5'], predicted);
    t.recordStep(100);
    t.recordGroups([{ levels: 'all', images: 8, ms: 80 }]);
    t.recordStep(50);
    t.recordGroups([
      { levels: ['P4', 'P5'], images: 2, ms: 10 },
      { levels: 'all', images: 2, ms: 24 },
    ]);
    t.recordEpisodes(300, 2);
    expect(t.summary()).toEqual({
      'time/distill_step_ms': 75,
      'time/episode_ms': 150,
      'time/episode_per_step': 2,
      // all levels: 104 ms over 10 images
      'time/subset/P2+P3+P4+P5/ms_per_image': 10.4,
      'time/subset/P2+P3+P4+P5/measured_share': 1,
      'time/subset/P2+P3+P4+P5/predicted_share': 1,
      'time/subset/P4+P5/ms_per_image': 5,
      'time/subset/P4+P5/measured_share': 5 / 10.4,
      'time/subset/P4+P5/predicted_share': 0.5,
    });
    // The next epoch: only episodes, weighed against the last known step time; subsets kept.
    t.recordEpisodes(30, 1);
    const next = t.summary();
    expect(next['time/distill_step_ms']).toBeUndefined();
    expect(next['time/episode_per_step']).toBeCloseTo(30 / 75, 12);
    expect(next['time/subset/P4+P5/ms_per_image']).toBe(5);
  });

  it("predicts a run's subset shares: 3 × the pruned MACs + 3 × the loss elements, over all levels", () => {
    const student = tinyFpn({ seed: 2 });
    const size = { height: 32, width: 32 };
    const pairs = matchLevels(student, student, size);
    const share = subsetWorkShares({ student, size, pairs });
    // By hand from selectionCost and the level shapes (C·H·W per image).
    const work = (names: string[]) =>
      3 * selectionCost(student, size, names).macs +
      3 *
        pairs
          .filter((p) => names.includes(p.name))
          .reduce((a, p) => a + p.teacher.channels * p.student.height * p.student.width, 0);
    const all = ['P2', 'P3', 'P4', 'P5'];
    expect(share(all)).toBeCloseTo(1, 12);
    for (const s of [['P3'], ['P4', 'P5'], ['P2', 'P5']])
      expect(share(s)).toBeCloseTo(work(s) / work(all), 12);
    expect(share(['P5'])).toBeLessThan(share(['P2']));
  });
});
