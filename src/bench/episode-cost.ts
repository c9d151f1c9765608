/**
 * What a level-selection episode costs against a distillation step, with the student's updates masked
 * (the all-levels graph, the level mask in the loss) and pruned (per-subset gradient graphs), on a run
 * config's own graphs and images (issue 13: saved cost as saved time; RL training worth its cost).
 *
 * Both distillers start from the same student; each round times, for each, one distillation step on a
 * training batch (every level), then for each asked subset one episode's student work on
 * `rl.environment.num_parallel_envs` images: the measurement the state needs (distances and level
 * features, `evaluate`) and the trial update on the subset with its after-measurement (`trial`). The two
 * variants alternate inside every round (and which goes first alternates between rounds), so a change in
 * machine load falls on both alike. Policy
 * decisions and teacher features are outside the timings (features are computed once per batch first).
 */
import type { RunConfig } from '../config/schema';
import { createStudentDistiller } from '../distill/create-distiller';
import { prepareDistillation } from '../distill/setup';
import type { StudentDistiller, TaughtBatch } from '../distill/student-distiller';
import { subsetWorkShares } from '../distill/subset-shares';
import { RlpkdError } from '../errors';
import type { LogSink } from '../logging/logger';
import { median } from './stats';

/** The two update routes compared. */
export const UPDATE_ROUTES = ['masked', 'pruned'] as const;
export type UpdateRoute = (typeof UPDATE_ROUTES)[number];

/** What to time. */
export interface EpisodeCostOptions {
  config: RunConfig;
  log: LogSink;
  /** Level subsets (names, e.g. ['P4', 'P5']); default every single level and all levels. */
  subsets?: string[][];
  /** Rounds (default 5); the first is a warm-up, not counted. */
  rounds?: number;
  /** onnxruntime intra-op threads (default: one per core). */
  threads?: number;
}

/** Median and minimum ms of one timed thing per route. */
export type RouteTimes = Record<UpdateRoute, { medianMs: number; minMs: number }>;

/** One subset's episode. */
export interface EpisodeCostRow {
  /** Levels joined by '+'. */
  name: string;
  /** The cost model's predicted share of the all-levels step. */
  predictedShare: number;
  /** The trial update and its after-measurement. */
  trial: RouteTimes;
  /** Measurement + trial: an episode's student work. */
  episode: RouteTimes;
  /** episode median / step median, per route. */
  episodePerStep: Record<UpdateRoute, number>;
  /** episode min / step min, per route (the least disturbed by other load). */
  episodePerStepMin: Record<UpdateRoute, number>;
}

/** The whole comparison. */
export interface EpisodeCostResult {
  /** One distillation step on `batch` images, every level. */
  step: RouteTimes;
  /** The state's measurement of the episode images (`evaluate` with features). */
  measure: RouteTimes;
  rows: EpisodeCostRow[];
  batch: number;
  episodeImages: number;
  rounds: number;
}

function summarize(xs: Record<UpdateRoute, number[]>): RouteTimes {
  const one = (v: number[]) => ({ medianMs: median(v), minMs: Math.min(...v) });
  return { masked: one(xs.masked), pruned: one(xs.pruned) };
}

const timed = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

/** Times both routes (see the module doc). */
export async function benchEpisodeCost(options: EpisodeCostOptions): Promise<EpisodeCostResult> {
  const rounds = options.rounds ?? 5;
  if (!Number.isInteger(rounds) || rounds < 2)
    throw new RlpkdError(`bench episodes: rounds must be an integer ≥ 2, got ${rounds}`);
  const setup = await prepareDistillation(options.config, { log: options.log });
  const names = setup.levelNames;
  const subsets = options.subsets ?? [...names.map((n) => [n]), [...names]];
  for (const s of subsets) {
    const bad = s.filter((n) => !names.includes(n));
    if (bad.length > 0 || s.length === 0) {
      throw new RlpkdError(`bench episodes: '${s.join('+')}' is not a subset of the distilled levels`, {
        hint: `levels: ${names.join(', ')}`,
      });
    }
  }
  const share = subsetWorkShares(setup);
  const L = names.length;
  const first = await setup.trainLoader.epoch(0).next();
  if (first.done) throw new RlpkdError('bench episodes: the training split yields no batch');
  const batchImages = first.value;
  const N = batchImages.images.dims[0];
  const E = Math.min(options.config.rl.environment.num_parallel_envs, N);
  const distillers = {} as Record<UpdateRoute, StudentDistiller>;
  try {
    for (const route of UPDATE_ROUTES) {
      const config = { ...setup.config, distill: { ...setup.config.distill, updates: route } };
      distillers[route] = await createStudentDistiller({ ...setup, config }, options.log, {
        ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
      });
    }
    const batch: TaughtBatch = await distillers.masked.prepare(batchImages);
    const per = batch.images.data.length / N;
    const episodeBatch: TaughtBatch = {
      images: { data: batch.images.data.subarray(0, E * per), dims: [E, ...batch.images.dims.slice(1)] },
    };
    const episode = await distillers.masked.prepare(episodeBatch);
    const allMask = new Float32Array(N * L).fill(1);
    const weights = new Float32Array(L).fill(1 / L);
    const masks = subsets.map((s) => {
      const m = new Float32Array(E * L);
      for (let e = 0; e < E; e++) for (const n of s) m[e * L + names.indexOf(n)] = 1;
      return m;
    });
    const empty = (): Record<UpdateRoute, number[]> => ({ masked: [], pruned: [] });
    const step = empty();
    const measure = empty();
    const trials = subsets.map(empty);
    for (let round = 0; round < rounds; round++) {
      // Which route goes first alternates too, so neither always follows the other's work.
      const order = round % 2 === 0 ? UPDATE_ROUTES : [...UPDATE_ROUTES].reverse();
      for (const route of order) {
        const d = distillers[route];
        const s = await timed(() => d.step(batch, allMask, weights));
        const m = await timed(() => d.evaluate(episode, { features: true }));
        const t = [];
        for (const mask of masks) t.push(await timed(() => d.trial(episode, mask, weights)));
        if (round === 0) continue; // warm-up: sessions open, subset graphs built
        step[route].push(s);
        measure[route].push(m);
        t.forEach((ms, i) => trials[i][route].push(ms));
      }
    }
    const stepTimes = summarize(step);
    const measureTimes = summarize(measure);
    const rows = subsets.map((s, i): EpisodeCostRow => {
      const trial = summarize(trials[i]);
      const whole = empty();
      for (const route of UPDATE_ROUTES)
        whole[route] = trials[i][route].map((ms, k) => ms + measure[route][k]);
      const ep = summarize(whole);
      return {
        name: s.join('+'),
        predictedShare: share(s),
        trial,
        episode: ep,
        episodePerStep: {
          masked: ep.masked.medianMs / stepTimes.masked.medianMs,
          pruned: ep.pruned.medianMs / stepTimes.pruned.medianMs,
        },
        episodePerStepMin: {
          masked: ep.masked.minMs / stepTimes.masked.minMs,
          pruned: ep.pruned.minMs / stepTimes.pruned.minMs,
        },
      };
    });
    return { step: stepTimes, measure: measureTimes, rows, batch: N, episodeImages: E, rounds: rounds - 1 };
  } finally {
    for (const d of Object.values(distillers)) await d.release();
  }
}
