/**
 * A plain float64 TypeScript re-implementation of the policy network and its constrained Bernoulli
 * distribution, written independently of src/rl (shared only through the parameter names), used as the
 * reference the ONNX graphs and PolicyNetwork are checked against.
 */
import type { PolicyParameter } from '../../src/rl/policy-graph';

type Params = Map<string, PolicyParameter>;

function byName(params: readonly PolicyParameter[]): Params {
  return new Map(params.map((p) => [p.name, p]));
}

/** y = x·W + b for one row x; W is [in, out] row-major. */
function affine(x: number[], w: PolicyParameter, b?: PolicyParameter): number[] {
  const [nin, nout] = w.dims;
  const y = new Array<number>(nout).fill(0);
  for (let o = 0; o < nout; o++) {
    let s = b ? b.data[o] : 0;
    for (let i = 0; i < nin; i++) s += x[i] * w.data[i * nout + o];
    y[o] = s;
  }
  return y;
}

const sig = (v: number): number => 1 / (1 + Math.exp(-v));

/** Independent MLP: logits [L] and value for one normalized state. */
export function refMlp(
  params: readonly PolicyParameter[],
  x: number[],
  layers = 2,
): { logits: number[]; value: number } {
  const p = byName(params);
  let h = x;
  for (let i = 0; i < layers; i++)
    h = affine(h, p.get(`mlp.${i}.weight`)!, p.get(`mlp.${i}.bias`)!).map(Math.tanh);
  return {
    logits: affine(h, p.get('actor.weight')!, p.get('actor.bias')!),
    value: affine(h, p.get('critic.weight')!, p.get('critic.bias')!)[0],
  };
}

/** Sequential LSTM over one episode with teacher-forced previous actions: logits [L], values [L]. */
export function refLstm(
  params: readonly PolicyParameter[],
  states: number[][],
  actions: number[],
  learned = false,
): { logits: number[]; values: number[] } {
  const p = byName(params);
  const W = p.get('lstm.weight')!;
  const H = W.dims[1] / 4;
  const L = states.length;
  let h = new Array<number>(H).fill(0);
  let c = new Array<number>(H).fill(0);
  const logits: number[] = [];
  const values: number[] = [];
  for (let t = 0; t < L; t++) {
    const enc = affine(states[t], p.get('encoder.weight')!, p.get('encoder.bias')!).map(Math.tanh);
    const z = [...enc, t === 0 ? 0 : actions[t - 1], ...h];
    const gates = affine(z, W, p.get('lstm.bias')!);
    const onehot = Array.from({ length: L }, (_, j) => (j === t ? 1 : 0));
    const lvl = learned
      ? affine(affine(onehot, p.get('level_embedding')!), p.get('lstm.level_weight')!)
      : affine(onehot, p.get('lstm.level_weight')!);
    for (let j = 0; j < 4 * H; j++) gates[j] += lvl[j];
    const c2 = new Array<number>(H);
    const h2 = new Array<number>(H);
    for (let j = 0; j < H; j++) {
      const i = sig(gates[j]);
      const f = sig(gates[H + j]);
      const g = Math.tanh(gates[2 * H + j]);
      const o = sig(gates[3 * H + j]);
      c2[j] = f * c[j] + i * g;
      h2[j] = o * Math.tanh(c2[j]);
    }
    h = h2;
    c = c2;
    logits.push(affine(h, p.get('actor.weight')!, p.get('actor.bias')!)[0]);
    values.push(affine(h, p.get('critic.weight')!, p.get('critic.bias')!)[0]);
  }
  return { logits, values };
}

/**
 * Reference constrained Bernoulli: returns P(a_k = 1), log P(a_k) and entropy per decision, with a level
 * masked when its cost exceeds the remaining budget and forced on when minLevels could not be met
 * otherwise (the rules documented in src/rl/bernoulli.ts, re-derived here).
 */
export function refConstrained(
  logits: number[],
  actions: number[],
  costs: number[],
  budget: number,
  minLevels: number,
): { probOne: number[]; logProb: number[]; entropy: number[] } {
  const L = costs.length;
  let used = 0;
  let selected = 0;
  const probOne: number[] = [];
  const logProb: number[] = [];
  const entropy: number[] = [];
  for (let k = 0; k < L; k++) {
    const rem = budget - used;
    const ok = (j: number): boolean => costs[j] <= rem + 1e-9;
    const need = minLevels - selected;
    let forced: number | null = null;
    if (!ok(k)) forced = need > 0 && L - 1 - k < need ? 1 : 0;
    else if (need > 0) {
      let later = 0;
      for (let j = k + 1; j < L; j++) if (ok(j)) later++;
      if (later < need) forced = 1;
    }
    if (forced !== null) {
      probOne.push(forced);
      logProb.push(actions[k] === forced ? 0 : -Infinity);
      entropy.push(0);
    } else {
      const q = sig(logits[k]);
      probOne.push(q);
      logProb.push(Math.log(actions[k] ? q : 1 - q));
      entropy.push(-(q * Math.log(q) + (1 - q) * Math.log(1 - q)));
    }
    if (actions[k]) {
      used += costs[k];
      selected++;
    }
  }
  return { probOne, logProb, entropy };
}
