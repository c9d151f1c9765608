import { createSession } from '../../src/runtime';
import { initPolicyParameters, type PolicyArchitecture } from '../../src/rl/policy-graph';
import { buildPpoLossModel, PPO_IO } from '../../src/rl/ppo-loss-graph';
import { Rng } from '../../src/util/rng';
import { refLstm, refMlp } from './reference-policy';

const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Float64 PPO loss (SB3 conventions) from per-decision logits. */
function refLoss(o: {
  logits: number[][];
  oldLogits: number[][];
  values: number[][];
  oldValues: number[][];
  actions: number[][];
  free: number[][];
  adv: number[][];
  ret: number[][];
  weight: number[][];
  S: number;
  A: number;
  eps: number;
  epsVf?: number;
  ent: number;
  vf: number;
  scale: number;
}): { loss: number; pg: number; vl: number; h: number; logRatio: number[][] } {
  let pg = 0;
  let h = 0;
  let vl = 0;
  const logRatio: number[][] = [];
  o.logits.forEach((z, m) => {
    logRatio.push([]);
    for (let s = 0; s < o.S; s++) {
      let lr = 0;
      let hs = 0;
      for (let a = 0; a < o.A; a++) {
        const k = s * o.A + a;
        if (!o.free[m][k]) continue;
        const lp = (zz: number): number => -softplus(o.actions[m][k] ? -zz : zz);
        lr += lp(z[k]) - lp(o.oldLogits[m][k]);
        hs += softplus(z[k]) - z[k] * sigmoid(z[k]);
      }
      logRatio[m].push(lr);
      const r = Math.exp(lr);
      const clipped = Math.min(Math.max(r, 1 - o.eps), 1 + o.eps);
      pg -= o.weight[m][s] * Math.min(o.adv[m][s] * r, o.adv[m][s] * clipped);
      h += o.weight[m][s] * hs;
      let v = o.values[m][s];
      if (o.epsVf !== undefined)
        v = o.oldValues[m][s] + Math.min(Math.max(v - o.oldValues[m][s], -o.epsVf), o.epsVf);
      vl += (o.ret[m][s] - v) ** 2;
    }
  });
  vl /= o.logits.length * o.S;
  return { loss: o.scale * (pg - o.ent * h + o.vf * vl), pg, vl, h, logRatio };
}

async function check(arch: PolicyArchitecture, clipValue: boolean): Promise<void> {
  const rng = new Rng(5);
  const params = initPolicyParameters(arch, rng.fork('init'));
  for (const p of params) if (p.name === 'actor.weight') p.data.forEach((v, i) => (p.data[i] = v * 100));
  const L = arch.numLevels;
  const D = arch.stateDim;
  const seq = arch.mode === 'sequential';
  const S = seq ? L : 1;
  const A = seq ? 1 : L;
  const M = 5;
  const states = Float32Array.from({ length: M * S * D }, () => rng.normal());
  const actions = Float32Array.from({ length: M * L }, () => (rng.next() < 0.5 ? 1 : 0));
  const free = Float32Array.from({ length: M * L }, () => (rng.next() < 0.75 ? 1 : 0));
  const oldLogits = Float32Array.from({ length: M * L }, () => rng.normal(0, 1.5));
  const oldValues = Float32Array.from({ length: M * S }, () => rng.normal());
  const adv = Float32Array.from({ length: M * S }, () => rng.normal());
  const ret = Float32Array.from({ length: M * S }, () => rng.normal());
  const weight = Float32Array.from({ length: M * S }, () => rng.next() / (M * S));
  const H = arch.hiddenSize;
  const prev = new Float32Array(M * L);
  for (let m = 0; m < M; m++) for (let t = 1; t < L; t++) prev[m * L + t] = actions[m * L + t - 1];
  const scalar = (x: number) => ({ data: Float32Array.of(x), dims: [] as number[] });
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
    states: { data: states, dims: [M, S, D] },
    [PPO_IO.actions]: { data: actions, dims: [M, L] },
    [PPO_IO.free]: { data: free, dims: [M, L] },
    [PPO_IO.oldLogits]: { data: oldLogits, dims: [M, L] },
    [PPO_IO.oldValues]: { data: oldValues, dims: [M, S] },
    [PPO_IO.advantages]: { data: adv, dims: [M, S] },
    [PPO_IO.returns]: { data: ret, dims: [M, S] },
    [PPO_IO.policyWeight]: { data: weight, dims: [M, S] },
    [PPO_IO.clipRange]: scalar(0.2),
    [PPO_IO.entCoef]: scalar(0.03),
    [PPO_IO.vfCoef]: scalar(0.5),
    [PPO_IO.lossScale]: scalar(0.7),
  };
  if (clipValue) feeds[PPO_IO.clipRangeVf] = scalar(0.3);
  if (seq) {
    feeds.prev_actions = { data: prev, dims: [M, L] };
    feeds.h0 = { data: new Float32Array(M * H), dims: [M, H] };
    feeds.c0 = { data: new Float32Array(M * H), dims: [M, H] };
  }
  const session = await createSession(buildPpoLossModel(arch, params, { clipValue }));
  const out = await session.run(feeds);
  await session.release();

  const rows = <T extends ArrayLike<number>>(x: T, w: number): number[][] =>
    Array.from({ length: M }, (_, m) => Array.from(x).slice(m * w, (m + 1) * w));
  const logits: number[][] = [];
  const values: number[][] = [];
  for (let m = 0; m < M; m++) {
    if (seq) {
      const st = Array.from({ length: L }, (_, t) =>
        Array.from(states.subarray((m * L + t) * D, (m * L + t + 1) * D)),
      );
      const r = refLstm(params, st, Array.from(actions.subarray(m * L, (m + 1) * L)));
      logits.push(r.logits);
      values.push(r.values);
    } else {
      const r = refMlp(params, Array.from(states.subarray(m * D, (m + 1) * D)));
      logits.push(r.logits);
      values.push([r.value]);
    }
  }
  const ref = refLoss({
    logits,
    oldLogits: rows(oldLogits, L),
    values,
    oldValues: rows(oldValues, S),
    actions: rows(actions, L),
    free: rows(free, L),
    adv: rows(adv, S),
    ret: rows(ret, S),
    weight: rows(weight, S),
    S,
    A,
    eps: 0.2,
    epsVf: clipValue ? 0.3 : undefined,
    ent: 0.03,
    vf: 0.5,
    scale: 0.7,
  });
  const got = (n: string): number => (out[n].data as Float32Array)[0];
  expect(got(PPO_IO.loss)).toBeCloseTo(ref.loss, 4);
  expect(got(PPO_IO.policyLoss)).toBeCloseTo(ref.pg, 4);
  expect(got(PPO_IO.valueLoss)).toBeCloseTo(ref.vl, 4);
  expect(got(PPO_IO.entropy)).toBeCloseTo(ref.h, 4);
  const lr = out[PPO_IO.logRatio].data as Float32Array;
  ref.logRatio.flat().forEach((v, i) => expect(lr[i]).toBeCloseTo(v, 4));
  // The ratio really is away from 1 and some steps are clipped: the test exercises the clip.
  expect(ref.logRatio.flat().some((v) => Math.abs(Math.exp(v) - 1) > 0.2)).toBe(true);
}

describe('PPO loss graph forward', () => {
  it('equals a float64 computation (sequential, no value clip)', async () => {
    await check({ mode: 'sequential', stateDim: 5, numLevels: 4, hiddenSize: 6 }, false);
  });
  it('equals a float64 computation (independent, value clip)', async () => {
    await check({ mode: 'independent', stateDim: 5, numLevels: 4, hiddenSize: 6 }, true);
  });
});
