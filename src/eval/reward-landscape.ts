/**
 * The reward landscape of the level-selection MDP on the held-out images: for every image and every
 * non-empty level subset, the reward the environment would pay for that choice — one trial update of the
 * checkpoint's student on that image alone, the yardstick measured before and after, the update rolled back
 * (exactly phase 2's trial) — so
 *   reward(image, S) = (L_before − L_after(S)) / L_before + λ·(1 − cost(S))
 * (or, with rl.reward.quality 'share', the first term as a share of the all-level subset's gain).
 * It answers what the policy's own reward says about it, without the noise of training: the deterministic
 * policy's mean reward on its held-out choices beside a random selection at the same mean cost (the exact
 * expectation under the ablation's maximum-entropy distribution, random-selection.ts), the best single fixed
 * subset, the best subset per object-size bin (an in-sample oracle that knows the bin) and the best subset
 * per image (the ceiling). A policy can only beat the best fixed subset by as much as the per-bin and
 * per-image oracles are above it; when they are not, there is nothing per-image to learn on this data.
 *
 * Budgets: the policy's choices respect the budgets it was evaluated with; the other rows ignore budgets
 * (as the ablation's fixed and random methods do). Trials are single-image updates: with
 * rl.environment.num_parallel_envs > 1 the environment's batched update mixes the images' subsets, so
 * there the landscape is the single-image approximation.
 */
import type { Distiller, ImageBatch } from '../rl/distiller';
import { RlpkdError } from '../errors';
import { qualityTerm, type RewardQuality } from '../rl/reward-quality';
import type { ImageBatchSource } from '../rl/distillation-env';
import { randomSubsetDistribution } from '../distill/random-selection';

/** One row of the method comparison. */
export interface LandscapeMethod {
  /** 'policy', 'random', 'fixed <subset>', 'best per bin', 'best per image'. */
  name: string;
  /** Mean cost share of the subsets it picks. */
  meanCost: number;
  /** Mean quality term. */
  quality: number;
  /** Mean reward (quality + λ·(1 − cost)). */
  reward: number;
}

/** The landscape and the comparison (see module doc). */
export interface RewardLandscape {
  lambda: number;
  /** Every non-empty subset (names joined by '+', level order) with its cost share. */
  subsets: { name: string; cost: number }[];
  /** Per held-out image: its bin, the yardstick before, and the quality term per subset (subset order). */
  images: { bin: string; lossBefore: number; quality: number[] }[];
  /** Per bin: images, mean quality per subset, and the subset of the highest mean reward. */
  byBin: { bin: string; images: number; quality: number[]; best: string }[];
  /** The comparison rows, policy first when there is one. */
  methods: LandscapeMethod[];
}

/** What rewardLandscape needs. */
export interface RewardLandscapeInput {
  /** The checkpoint's student as the environment drives it. */
  distiller: Distiller;
  /** The held-out images one at a time (with their labels for the task yardstick). */
  images: ImageBatchSource;
  /** How many images to measure. */
  count: number;
  /** Level names in the distiller's order, and their cost shares. */
  levelNames: readonly string[];
  costs: readonly number[];
  /** Level weights of the distillation loss (the environment's). */
  weights: Float32Array;
  lambda: number;
  /** The reward's quality term (rl.reward.quality; default 'relative'). */
  quality?: RewardQuality;
  /** Object-size bin per image. */
  bins: readonly string[];
  /** The deterministic policy's subset per image (level names), when the run has a policy. */
  policy?: readonly (readonly string[])[];
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Measures the landscape (see module doc); costs one trial update per image and non-empty subset. */
export async function rewardLandscape(input: RewardLandscapeInput): Promise<RewardLandscape> {
  const L = input.levelNames.length;
  if (input.costs.length !== L) throw new RlpkdError('reward landscape: one cost per level expected');
  if (input.bins.length < input.count || (input.policy && input.policy.length < input.count))
    throw new RlpkdError('reward landscape: fewer bins or policy choices than images');
  const masks: number[] = [];
  for (let m = 1; m < 1 << L; m++) masks.push(m);
  const subsets = masks.map((m) => {
    const levels = input.levelNames.filter((_, l) => m & (1 << l));
    return {
      name: levels.join('+'),
      cost: levels.reduce((a, n) => a + input.costs[input.levelNames.indexOf(n)], 0),
    };
  });
  const images: RewardLandscape['images'] = [];
  for (let i = 0; i < input.count; i++) {
    const batch: ImageBatch = await input.distiller.prepare(await input.images.next(1));
    const before = await input.distiller.evaluate(batch);
    const lossBefore = before.yardstick ? before.yardstick[0] : before.distances.reduce((a, b) => a + b, 0);
    const afters: number[] = [];
    for (const m of masks) {
      const mask = new Float32Array(L);
      for (let l = 0; l < L; l++) if (m & (1 << l)) mask[l] = 1;
      const t = await input.distiller.trial(batch, mask, input.weights);
      afters.push(t.afterYardstick ? t.afterYardstick[0] : t.after.reduce((a, b) => a + b, 0));
    }
    // The last mask selects every level: the 'share' quality's reference.
    const quality = afters.map((after) =>
      qualityTerm(input.quality ?? 'relative', lossBefore, after, afters[afters.length - 1]),
    );
    images.push({ bin: input.bins[i], lossBefore, quality });
  }
  return summarizeLandscape(images, subsets, input.lambda, input.policy?.slice(0, input.count));
}

/**
 * The per-bin table and the method comparison of measured qualities (pure; exported for tests):
 * `policy[i]` are the level names chosen for image i, in any order.
 */
export function summarizeLandscape(
  images: RewardLandscape['images'],
  subsets: RewardLandscape['subsets'],
  lambda: number,
  policy?: readonly (readonly string[])[],
): RewardLandscape {
  if (images.length === 0) throw new RlpkdError('reward landscape: no images');
  const S = subsets.length;
  const reward = (q: number, s: number) => q + lambda * (1 - subsets[s].cost);
  const argmax = (f: (s: number) => number) => {
    let best = 0;
    for (let s = 1; s < S; s++) if (f(s) > f(best)) best = s;
    return best;
  };
  const row = (name: string, picks: number[]): LandscapeMethod => ({
    name,
    meanCost: mean(picks.map((s) => subsets[s].cost)),
    quality: mean(picks.map((s, i) => images[i].quality[s])),
    reward: mean(picks.map((s, i) => reward(images[i].quality[s], s))),
  });
  const bins = [...new Set(images.map((im) => im.bin))];
  const byBin = bins.map((bin) => {
    const members = images.filter((im) => im.bin === bin);
    const quality = subsets.map((_, s) => mean(members.map((im) => im.quality[s])));
    return { bin, images: members.length, quality, best: subsets[argmax((s) => reward(quality[s], s))].name };
  });
  const methods: LandscapeMethod[] = [];
  if (policy) {
    const picks = policy.map((levels) => {
      const key = subsets.findIndex((x) => {
        const names = x.name.split('+');
        return names.length === levels.length && names.every((n) => levels.includes(n));
      });
      if (key < 0)
        throw new RlpkdError(`reward landscape: the policy chose no known subset ('${levels.join('+')}')`);
      return key;
    });
    const p = row('policy', picks);
    methods.push(p);
    // The ablation's random method at the policy's mean cost, as an exact expectation over its distribution.
    const levelNames = subsets.filter((x) => !x.name.includes('+')).map((x) => x.name);
    const levelCosts = levelNames.map((n) => subsets.find((x) => x.name === n)!.cost);
    const dist = randomSubsetDistribution(levelCosts, p.meanCost);
    const index = dist.subsets.map((ls) =>
      subsets.findIndex((x) => x.name === ls.map((l) => levelNames[l]).join('+')),
    );
    const expect = (f: (s: number) => number) => dist.probs.reduce((a, pr, k) => a + pr * f(index[k]), 0);
    methods.push({
      name: 'random',
      meanCost: dist.meanCost,
      quality: mean(images.map((im) => expect((s) => im.quality[s]))),
      reward: mean(images.map((im) => expect((s) => reward(im.quality[s], s)))),
    });
  }
  const fixed = argmax((s) => mean(images.map((im) => reward(im.quality[s], s))));
  methods.push(
    row(
      `fixed ${subsets[fixed].name}`,
      images.map(() => fixed),
    ),
  );
  const bestOfBin = new Map(byBin.map((b) => [b.bin, subsets.findIndex((x) => x.name === b.best)]));
  methods.push(
    row(
      'best per bin',
      images.map((im) => bestOfBin.get(im.bin)!),
    ),
  );
  methods.push(
    row(
      'best per image',
      images.map((im) => argmax((s) => reward(im.quality[s], s))),
    ),
  );
  return { lambda, subsets, images, byBin, methods };
}

/** The landscape as text: quality by bin and subset, then the comparison. */
export function formatRewardLandscape(r: RewardLandscape): string {
  const f = (x: number) => (x >= 0 ? ' ' : '') + x.toFixed(4);
  const lines = [
    `reward landscape (one trial update per held-out image and subset; reward = quality + ${r.lambda}·(1 − cost)):`,
    `  mean quality term by object-size bin (images)`,
    `  ${'subset'.padEnd(12)} ${'cost'.padStart(6)} ${r.byBin.map((b) => `${b.bin}(${b.images})`.padStart(12)).join('')}`,
  ];
  r.subsets.forEach((s, k) => {
    lines.push(
      `  ${s.name.padEnd(12)} ${s.cost.toFixed(3).padStart(6)} ${r.byBin.map((b) => f(b.quality[k]).padStart(12)).join('')}`,
    );
  });
  lines.push(`  best subset by mean reward: ${r.byBin.map((b) => `${b.bin} ${b.best}`).join(', ')}`);
  lines.push(
    `  ${'selection'.padEnd(22)} ${'cost'.padStart(6)} ${'quality'.padStart(9)} ${'reward'.padStart(9)}`,
  );
  for (const m of r.methods)
    lines.push(
      `  ${m.name.padEnd(22)} ${m.meanCost.toFixed(3).padStart(6)} ${f(m.quality).padStart(9)} ${f(m.reward).padStart(9)}`,
    );
  return lines.join('\n') + '\n';
}
