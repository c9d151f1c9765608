import { benchEpisodeCost } from '../../src/bench/episode-cost';
import { silentLog } from '../../src/logging/logger';
import { tempDir, tinyConfig, writeTinyModels } from '../distill/run-fixtures';

describe('benchEpisodeCost', () => {
  jest.setTimeout(120000);

  it('times masked and pruned episodes on a run config, both routes alternating, warm-up dropped', async () => {
    const dir = tempDir('episode-cost');
    const config = tinyConfig(dir, writeTinyModels(dir));
    const r = await benchEpisodeCost({ config, log: silentLog, rounds: 2, subsets: [['P5'], ['P2', 'P5']] });
    expect(r.batch).toBe(4);
    expect(r.episodeImages).toBe(4);
    expect(r.rounds).toBe(1);
    expect(r.rows.map((row) => row.name)).toEqual(['P5', 'P2+P5']);
    for (const row of r.rows) {
      for (const route of ['masked', 'pruned'] as const) {
        expect(row.trial[route].medianMs).toBeGreaterThan(0);
        // One counted round: the episode is that round's measurement plus its trial.
        expect(row.episode[route].medianMs).toBeCloseTo(
          row.trial[route].medianMs + r.measure[route].medianMs,
          9,
        );
        expect(row.episodePerStep[route]).toBeCloseTo(
          row.episode[route].medianMs / r.step[route].medianMs,
          12,
        );
      }
      expect(row.predictedShare).toBeGreaterThan(0);
      expect(row.predictedShare).toBeLessThan(1);
    }
    expect(r.rows[0].predictedShare).toBeLessThan(r.rows[1].predictedShare);
    await expect(benchEpisodeCost({ config, log: silentLog, subsets: [['P9']] })).rejects.toThrow(
      /'P9' is not a subset of the distilled levels/,
    );
  });
});
