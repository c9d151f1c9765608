/**
 * Where a run's time goes, as metrics (issue 13: saved cost must show on the clock, and a phase-2 episode
 * is weighed against a distillation step): wall time of the distillation steps, of the student's graph
 * runs per selected level subset (ms per image, beside the cost model's predicted share of the
 * all-levels step), and of the level-selection episodes. Figures accumulate between summaries; each
 * summary is the mean since the previous one (an epoch), except the per-subset figures, which are means
 * over the whole run so far (a subset may be seen a few times per epoch only). Per-image figures mix the
 * group sizes the run had: a group of one image (a phase-2 trial with one environment) carries a graph
 * run's fixed costs alone, so on small graphs its measured share exceeds the prediction; `rlpkd bench
 * subsets` measures every subset at one batch size.
 */

/** One group of a step: its levels ('all' for the all-levels graph), images and graph milliseconds. */
export interface TimedGroup {
  levels: readonly string[] | 'all';
  images: number;
  ms: number;
}

interface Sum {
  ms: number;
  count: number;
}

/** Accumulates the timings of a run (see the module doc). */
export class StepTimings {
  private steps: Sum = { ms: 0, count: 0 };
  private episodes: Sum = { ms: 0, count: 0 };
  /** Mean ms of the distillation steps of the latest summary that had any (the episode's yardstick). */
  private stepMean: number | undefined;
  /** Subset name → graph ms and images over the run. */
  private readonly subsets = new Map<string, Sum>();

  /**
   * @param levelNames every distilled level, finest first (the all-levels subset's name joins them)
   * @param predictedShare the cost model's predicted share of the all-levels step for a subset of levels
   */
  constructor(
    private readonly levelNames: readonly string[],
    private readonly predictedShare: (levels: readonly string[]) => number,
  ) {}

  /** One distillation step of `ms` wall time (teacher features and update included). */
  recordStep(ms: number): void {
    this.steps.ms += ms;
    this.steps.count += 1;
  }

  /** The graph runs of one student update (a kept step or a trial's), by level subset. */
  recordGroups(groups: readonly TimedGroup[]): void {
    for (const g of groups) {
      const name = (g.levels === 'all' ? this.levelNames : g.levels).join('+');
      const s = this.subsets.get(name) ?? { ms: 0, count: 0 };
      s.ms += g.ms;
      s.count += g.images;
      this.subsets.set(name, s);
    }
  }

  /** `count` episodes that took `ms` together (their trial updates included). */
  recordEpisodes(ms: number, count: number): void {
    this.episodes.ms += ms;
    this.episodes.count += count;
  }

  /**
   * The metrics since the last summary: `time/distill_step_ms`, `time/episode_ms`,
   * `time/episode_per_step` (an episode's time in distillation steps), and per subset over the run
   * `time/subset/<levels>/ms_per_image`, `.../measured_share` (against the all-levels subset's ms per
   * image, once measured) and `.../predicted_share`.
   */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    if (this.steps.count > 0) {
      this.stepMean = this.steps.ms / this.steps.count;
      out['time/distill_step_ms'] = this.stepMean;
    }
    if (this.episodes.count > 0) {
      const episode = this.episodes.ms / this.episodes.count;
      out['time/episode_ms'] = episode;
      if (this.stepMean !== undefined) out['time/episode_per_step'] = episode / this.stepMean;
    }
    const all = this.subsets.get(this.levelNames.join('+'));
    const allPerImage = all && all.count > 0 ? all.ms / all.count : undefined;
    for (const [name, s] of this.subsets) {
      const perImage = s.ms / s.count;
      out[`time/subset/${name}/ms_per_image`] = perImage;
      if (allPerImage !== undefined) out[`time/subset/${name}/measured_share`] = perImage / allPerImage;
      out[`time/subset/${name}/predicted_share`] = this.predictedShare(name.split('+'));
    }
    this.steps = { ms: 0, count: 0 };
    this.episodes = { ms: 0, count: 0 };
    return out;
  }
}
