/**
 * The PPO plumbing against independent references: minibatch assembly (advantage normalization over the
 * steps with a free decision, per-step weights, the padded one-episode case) and the update's statistics
 * (k3 KL, clip fraction) against float64 re-implementations written here; the whole PPO loss's gradient
 * (policy graph included) against float64 central differences of the loss graph.
 */
import { DecisionKind } from '../../src/rl/bernoulli';
import { allocateEpisodes, type EpisodeBatch } from '../../src/rl/episode-batch';
import { PolicyNetwork, type PolicyConfig } from '../../src/rl/policy';
import { PolicyOptimizer, type PpoCoefficients } from '../../src/rl/policy-optimizer';
import { PPOTrainer, ratioStats, type MinibatchInfo } from '../../src/rl/ppo';
import { PPO_IO } from '../../src/rl/ppo-loss-graph';
import { artifactModel } from '../../src/training/artifacts';
import { Rng } from '../../src/util/rng';
import { referenceLoss } from '../helpers/grad-check';
import { fromHost } from '../helpers/reference';

type Mode = 'sequential' | 'independent';
const L = 4;
const D = 5;
const COSTS = [0.5, 0.25, 0.15, 0.1];

function config(mode: Mode): PolicyConfig {
  return { mode, stateDim: D, numLevels: L, hiddenSize: 16, costs: COSTS };
}

/**
 * M random episodes in `mode`'s layout. Decision kinds are drawn at random with some steps entirely
 * forced (no free decision), so the free-step logic has something to exclude.
 */
function randomEpisodes(mode: Mode, M: number, seed: number): EpisodeBatch {
  const rng = new Rng(seed);
  const S = mode === 'sequential' ? L : 1;
  const A = mode === 'sequential' ? 1 : L;
  const b = allocateEpisodes(M, { steps: S, decisions: A, stateDim: D });
  b.states.forEach((_, i) => (b.states[i] = rng.normal()));
  for (let i = 0; i < M * L; i++) {
    const u = rng.next();
    b.kinds[i] = u < 0.6 ? DecisionKind.Free : u < 0.8 ? DecisionKind.ForcedOn : DecisionKind.ForcedOff;
    b.actions[i] =
      b.kinds[i] === DecisionKind.ForcedOn
        ? 1
        : b.kinds[i] === DecisionKind.ForcedOff
          ? 0
          : rng.next() < 0.5
            ? 1
            : 0;
    b.logits[i] = rng.normal(0, 1.5);
  }
  // Every third episode's first step has no free decision at all.
  for (let m = 1; m < M; m += 3) {
    for (let a = 0; a < A; a++) {
      b.kinds[m * S * A + a] = DecisionKind.ForcedOff;
      b.actions[m * S * A + a] = 0;
    }
  }
  for (let i = 0; i < M * S; i++) {
    b.values[i] = rng.normal();
    b.advantages[i] = rng.normal(0.7, 2); // off-centre so normalization changes them
    b.returns[i] = rng.normal();
    b.logProbs[i] = -rng.next();
  }
  b.budgets.fill(Infinity);
  return b;
}

/** The minibatch feeds, re-derived in float64 from their definition (SB3: per-minibatch normalization). */
function referenceFeeds(b: EpisodeBatch, rows: number[], normalize: boolean) {
  const S = b.steps;
  const A = b.decisions;
  const isFree: number[] = [];
  const adv: number[] = [];
  for (const r of rows) {
    for (let s = 0; s < S; s++) {
      let f = 0;
      for (let a = 0; a < A; a++) if (b.kinds[(r * S + s) * A + a] === DecisionKind.Free) f = 1;
      isFree.push(f);
      adv.push(b.advantages[r * S + s]);
    }
  }
  const n = isFree.reduce((x, y) => x + y, 0);
  const freeAdv = adv.filter((_, j) => isFree[j]);
  const mean = freeAdv.reduce((x, y) => x + y, 0) / n;
  const std = Math.sqrt(freeAdv.reduce((x, y) => x + (y - mean) ** 2, 0) / (n - 1));
  const advantages = adv.map((a, j) => (!normalize || n < 2 ? a : isFree[j] ? (a - mean) / (std + 1e-8) : 0));
  // One episode is fed twice with half the weight each (the one-row workaround).
  const copies = rows.length === 1 ? 2 : 1;
  const weight = isFree.map((f) => f / n / copies);
  const rep = <T>(xs: T[]): T[] => (copies === 2 ? [...xs, ...xs] : xs);
  const take = (x: ArrayLike<number>, w: number) =>
    rows.flatMap((r) => Array.from(x).slice(r * w, (r + 1) * w));
  const actions = take(b.actions, S * A);
  return {
    rows: rows.length * copies,
    states: rep(take(b.states, S * D)),
    actions: rep(actions),
    free: rep(take(b.kinds, S * A).map((k) => (k === DecisionKind.Free ? 1 : 0))),
    oldLogits: rep(take(b.logits, S * A)),
    oldValues: rep(take(b.values, S)),
    returns: rep(take(b.returns, S)),
    advantages: rep(advantages),
    weight: rep(weight),
    prev: rep(
      rows.flatMap((_, i) =>
        actions.slice(i * L, (i + 1) * L).map((_, t, row) => (t === 0 ? 0 : row[t - 1])),
      ),
    ),
  };
}

const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));
const arr = (t: { data: unknown }) => Array.from(t.data as ArrayLike<number>);

describe.each<Mode>(['sequential', 'independent'])('PPO minibatch assembly (%s)', (mode) => {
  const coef: PpoCoefficients = { clipRange: 0.2, entCoef: 0.01, vfCoef: 0.5 };

  it.each([
    ['several episodes, normalized', [3, 0, 4, 6], true],
    ['several episodes, raw advantages', [1, 5], false],
    ['one episode (padded to two rows)', [2], true],
  ] as const)('%s equals a float64 re-derivation', async (_what, rows, normalize) => {
    const policy = await PolicyNetwork.create(config(mode), { seed: 2 });
    const opt = await PolicyOptimizer.create(policy, { optimizer: { type: 'sgd', lr: 0.1 } });
    const b = randomEpisodes(mode, 7, 11);
    const mb = opt.feeds(b, [...rows], { ...coef, normalizeAdvantage: normalize });
    const ref = referenceFeeds(b, [...rows], normalize);
    expect(mb.episodes).toBe(rows.length);
    expect(mb.feeds.states.dims[0]).toBe(ref.rows);
    expect(arr(mb.feeds.states)).toEqual(f32(ref.states));
    expect(arr(mb.feeds[PPO_IO.actions])).toEqual(ref.actions);
    expect(arr(mb.feeds[PPO_IO.free])).toEqual(ref.free);
    expect(arr(mb.feeds[PPO_IO.oldLogits])).toEqual(f32(ref.oldLogits));
    expect(arr(mb.feeds[PPO_IO.oldValues])).toEqual(f32(ref.oldValues));
    expect(arr(mb.feeds[PPO_IO.returns])).toEqual(f32(ref.returns));
    const adv = arr(mb.feeds[PPO_IO.advantages]);
    ref.advantages.forEach((v, j) =>
      expect(Math.abs(adv[j] - v)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(v))),
    );
    const w = arr(mb.feeds[PPO_IO.policyWeight]);
    ref.weight.forEach((v, j) => expect(Math.abs(w[j] - v)).toBeLessThanOrEqual(1e-7));
    // The weights sum to 1 over the (padded) minibatch: the loss is the mean over free steps.
    expect(Math.abs(w.reduce((x, y) => x + y, 0) - 1)).toBeLessThan(1e-6);
    // The fixture exercises what it claims: excluded steps exist, and normalization moved the values.
    if (rows.length > 1) expect(ref.weight.some((x) => x === 0)).toBe(true);
    if (normalize) expect(adv.some((a, j) => a !== 0 && Math.abs(a - ref.advantages[j]) < 1e-6)).toBe(true);
    if (mode === 'sequential') expect(arr(mb.feeds.prev_actions)).toEqual(ref.prev);
    await opt.release();
    await policy.release();
  });
});

/** k3 KL and clip fraction of the free steps, in float64, written from their definitions. */
function referenceRatioStats(logRatio: ArrayLike<number>, free: ArrayLike<number>, eps: number) {
  const idx = Array.from(free, (f, i) => (f ? i : -1)).filter((i) => i >= 0);
  if (!idx.length) return { kl: 0, clip: 0 };
  const kl = idx.reduce((s, i) => s + (Math.exp(logRatio[i]) - 1 - logRatio[i]), 0) / idx.length;
  const clip = idx.filter((i) => Math.abs(Math.exp(logRatio[i]) - 1) > eps).length / idx.length;
  return { kl, clip };
}

describe('PPO update statistics', () => {
  it('ratioStats equals the float64 definitions, excluding forced steps', () => {
    const rng = new Rng(4);
    const logRatio = Float32Array.from({ length: 200 }, () => rng.normal(0, 0.3));
    const free = Uint8Array.from({ length: 200 }, () => (rng.next() < 0.7 ? 1 : 0));
    const got = ratioStats(logRatio, free, 0.2);
    const ref = referenceRatioStats(logRatio, free, 0.2);
    expect(Math.abs(got.approxKl - ref.kl)).toBeLessThan(1e-12);
    expect(got.clipFraction).toBe(ref.clip);
    expect(ref.clip).toBeGreaterThan(0);
    // A large ratio on a forced step must not count.
    const forced = Float32Array.from(logRatio);
    free.forEach((f, i) => (forced[i] = f ? forced[i] : 5));
    expect(ratioStats(forced, free, 0.2)).toEqual(got);
    expect(ratioStats(logRatio, new Uint8Array(200), 0.2)).toEqual({ approxKl: 0, clipFraction: 0 });
  });

  it("trainStep's reported KL and clip fraction are the means of the minibatches' float64 values", async () => {
    const policy = await PolicyNetwork.create(config('sequential'), { seed: 6 });
    const ppo = new PPOTrainer(policy, { batchSize: 8, nEpochs: 3, learningRate: 0.05, seed: 6 });
    const b = randomEpisodes('sequential', 12, 21);
    // Old logits consistent with the policy, so the ratios start at 1 and move with the updates.
    b.logits.set((await policy.runSequence(b.states, b.actions, b.count)).logits);
    const seen: MinibatchInfo[] = [];
    const stats = await ppo.trainStep(b, { onMinibatch: (i) => seen.push(i) });
    const refs = seen.map((s) => referenceRatioStats(s.logRatio, s.freeSteps, 0.2));
    refs.forEach((r, k) => {
      expect(Math.abs(seen[k].approxKl - r.kl)).toBeLessThan(1e-12);
      expect(seen[k].clipFraction).toBe(r.clip);
    });
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    expect(Math.abs(stats.approxKl - mean(refs.map((r) => r.kl)))).toBeLessThan(1e-12);
    expect(Math.abs(stats.clipFraction - mean(refs.map((r) => r.clip)))).toBeLessThan(1e-12);
    expect(stats.nUpdates).toBe(seen.length);
    expect(refs.some((r) => r.clip > 0)).toBe(true); // the updates moved the ratios past the clip
    await ppo.release();
    await policy.release();
  });
});

describe.each<Mode>(['sequential', 'independent'])('the whole PPO loss (%s)', (mode) => {
  it("trainStep's gradients match float64 central differences of the loss graph", async () => {
    const policy = await PolicyNetwork.create(config(mode), { seed: 9 });
    const opt = await PolicyOptimizer.create(policy, {
      optimizer: { type: 'sgd', lr: 0.1 },
      clipValue: true,
    });
    const b = randomEpisodes(mode, 6, 31);
    const mb = opt.feeds(b, [0, 2, 3, 5], {
      clipRange: 0.2,
      clipRangeVf: 0.3,
      entCoef: 0.05,
      vfCoef: 0.5,
      lossScale: 0.8,
    });
    await opt.lazyResetGrad();
    await opt.trainStep(mb);
    const grads = await opt.getGradients();
    const params = policy.getParameters();
    const evalModel = artifactModel(opt.artifacts, 'eval');
    const base = {
      ...mb.feeds,
      ...Object.fromEntries(params.map((p) => [p.name, { data: p.data, dims: p.dims }])),
    };
    const rng = new Rng(3);
    let worst = 0;
    for (const g of grads) {
      const value = fromHost({ data: params.find((p) => p.name === g.name)!.data, dims: g.dims });
      for (let k = 0; k < 3; k++) {
        const i = rng.int(value.data.length);
        const h = 1e-6 * Math.max(1, Math.abs(value.data[i]));
        const at = (delta: number): number => {
          const data = Float64Array.from(value.data);
          data[i] += delta;
          return referenceLoss(evalModel, PPO_IO.loss, { ...base, [g.name]: { ...value, data } });
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - g.data[i]) / Math.max(Math.abs(fd), 1e-3));
      }
    }
    console.log(
      `PPO loss gradient (${mode}) vs float64 central differences: worst relative error ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-4);
    await opt.release();
    await policy.release();
  });
});
