import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSession } from '../../src/runtime';
import { DecisionKind } from '../../src/rl/bernoulli';
import { POLICY_FORMAT_VERSION, PolicyNetwork, type PolicyConfig } from '../../src/rl/policy';
import { Rng } from '../../src/util/rng';
import { refConstrained, refLstm, refMlp } from './reference-policy';

const COSTS = [4 / 7.5, 2 / 7.5, 1 / 7.5, 0.5 / 7.5];
const D = 6;
const L = 4;

function randomStates(rng: Rng, n: number): Float32Array {
  // Raw states on an odd scale so the normalizer matters.
  return Float32Array.from({ length: n * D }, (_, i) => 3 + (i % D) * 2 + rng.normal(0, 1 + (i % D)));
}

function close(a: number, b: number, tol: number): boolean {
  return Math.abs(a - b) <= tol * (1 + Math.abs(b));
}

/** Runs one batch of sequential episodes through selectAction; returns everything stored. */
async function rolloutSequential(policy: PolicyNetwork, budgets: number[], deterministic = false) {
  const rng = new Rng(7);
  const N = budgets.length;
  const memory = policy.newMemory(budgets);
  const states = new Float32Array(N * L * D);
  const actions = new Uint8Array(N * L);
  const logits = new Float32Array(N * L);
  const probs = new Float64Array(N * L);
  const kinds = new Uint8Array(N * L);
  const logProbs = new Float64Array(N * L);
  const entropy = new Float64Array(N * L);
  const values = new Float64Array(N * L);
  for (let t = 0; t < L; t++) {
    const r = await policy.selectAction(randomStates(rng, N), {
      memory,
      deterministic,
      updateNormalizer: t === 0,
    });
    for (let e = 0; e < N; e++) {
      states.set(r.states.subarray(e * D, (e + 1) * D), (e * L + t) * D);
      actions[e * L + t] = r.actions[e];
      logits[e * L + t] = r.logits[e];
      probs[e * L + t] = r.probs[e];
      kinds[e * L + t] = r.kinds[e];
      logProbs[e * L + t] = r.logProbs[e];
      entropy[e * L + t] = r.entropy[e];
      values[e * L + t] = r.values[e];
    }
  }
  return { states, actions, logits, probs, kinds, logProbs, entropy, values };
}

describe('PolicyNetwork (sequential LSTM)', () => {
  const config: PolicyConfig = { mode: 'sequential', stateDim: D, numLevels: L, hiddenSize: 8, costs: COSTS };
  const budgets = [1, 0.3, 0.01, 0.5, 0.8, 0.2, 1, 0.3];

  it('selectAction and evaluateActions equal a float64 reference, masking included', async () => {
    const policy = await PolicyNetwork.create(config, { seed: 3 });
    // Bigger action-head weights than the 0.01 init so that probabilities are far from 0.5.
    const params = policy.getParameters();
    for (const p of params) if (p.name === 'actor.weight') p.data.forEach((v, i) => (p.data[i] = v * 300));
    await policy.setParameters(params);
    const ro = await rolloutSequential(policy, budgets);
    const ev = await policy.evaluateActions(ro.states, ro.actions, { budgets, normalized: true });
    // Same graph ops, same inputs: the re-evaluation reproduces the rollout bit for bit.
    expect(Array.from(ev.logits)).toEqual(Array.from(ro.logits));
    expect(Array.from(ev.logProbs)).toEqual(Array.from(ro.logProbs));
    expect(Array.from(ev.values)).toEqual(Array.from(ro.values));
    expect(Array.from(ev.kinds)).toEqual(Array.from(ro.kinds));

    let masked = 0;
    let forced = 0;
    for (let e = 0; e < budgets.length; e++) {
      const st = Array.from({ length: L }, (_, t) =>
        Array.from(ro.states.subarray((e * L + t) * D, (e * L + t + 1) * D)),
      );
      const acts = Array.from(ro.actions.subarray(e * L, (e + 1) * L));
      const ref = refLstm(policy.getParameters(), st, acts);
      const dist = refConstrained(ref.logits, acts, COSTS, budgets[e], 1);
      for (let t = 0; t < L; t++) {
        const i = e * L + t;
        expect(close(ro.logits[i], ref.logits[t], 1e-5)).toBe(true);
        expect(close(ro.values[i], ref.values[t], 1e-5)).toBe(true);
        expect(close(ro.logProbs[i], dist.logProb[t], 1e-5)).toBe(true);
        expect(close(ev.entropy[i], dist.entropy[t], 1e-5)).toBe(true);
        expect(close(ro.entropy[i], dist.entropy[t], 1e-5)).toBe(true);
        if (dist.probOne[t] === 0) {
          masked++;
          expect(ro.probs[i]).toBe(0);
          expect(ev.probs[i]).toBe(0);
          expect(ro.actions[i]).toBe(0);
          expect(ro.kinds[i]).toBe(DecisionKind.ForcedOff);
        } else if (dist.probOne[t] === 1) {
          forced++;
          expect(ro.probs[i]).toBe(1);
          expect(ro.logProbs[i]).toBe(0);
        } else expect(close(ro.probs[i], dist.probOne[t], 1e-5)).toBe(true);
      }
      // minLevels = 1 holds in every episode; the budget holds whenever a feasible level exists.
      expect(acts.reduce((s, a) => s + a, 0)).toBeGreaterThanOrEqual(1);
    }
    expect(masked).toBeGreaterThan(3);
    expect(forced).toBeGreaterThan(0);
    await policy.release();
  });

  it('deterministic mode takes the mode of every free decision', async () => {
    const policy = await PolicyNetwork.create(config, { seed: 4 });
    const ro = await rolloutSequential(policy, budgets, true);
    for (let i = 0; i < ro.actions.length; i++) {
      if (ro.kinds[i] === DecisionKind.Free) expect(ro.actions[i]).toBe(ro.logits[i] > 0 ? 1 : 0);
    }
    await policy.release();
  });

  it('learned level embeddings match the reference too', async () => {
    const policy = await PolicyNetwork.create(
      { ...config, levelEmbedding: 'learned', embeddingDim: 3 },
      { seed: 5 },
    );
    const ro = await rolloutSequential(policy, [1, 1, 1]);
    for (let e = 0; e < 3; e++) {
      const st = Array.from({ length: L }, (_, t) =>
        Array.from(ro.states.subarray((e * L + t) * D, (e * L + t + 1) * D)),
      );
      const ref = refLstm(
        policy.getParameters(),
        st,
        Array.from(ro.actions.subarray(e * L, (e + 1) * L)),
        true,
      );
      for (let t = 0; t < L; t++) expect(close(ro.logits[e * L + t], ref.logits[t], 1e-5)).toBe(true);
    }
    await policy.release();
  });

  it('rejects actions that the constraints make impossible', async () => {
    const policy = await PolicyNetwork.create(config, { seed: 3 });
    const states = new Float32Array(L * D);
    // Budget 0.3 cannot pay for the first level (cost 0.533).
    await expect(
      policy.evaluateActions(states, [1, 0, 0, 0], { budgets: [0.3], normalized: true }),
    ).rejects.toThrow(/forced to 0 by the budget/);
    await policy.release();
  });
});

describe('PolicyNetwork (independent MLP)', () => {
  const config: PolicyConfig = {
    mode: 'independent',
    stateDim: D,
    numLevels: L,
    hiddenSize: 16,
    costs: COSTS,
  };

  it('selectAction and evaluateActions equal a float64 reference, masking included', async () => {
    const policy = await PolicyNetwork.create(config, { seed: 11 });
    const params = policy.getParameters();
    for (const p of params) if (p.name === 'actor.weight') p.data.forEach((v, i) => (p.data[i] = v * 200));
    await policy.setParameters(params);
    const budgets = [1, 0.3, 0.01, 0.5, 0.2, 0.9];
    const raw = randomStates(new Rng(1), budgets.length);
    const r = await policy.selectAction(raw, { budgets, updateNormalizer: true });
    const ev = await policy.evaluateActions(r.states, r.actions, { budgets, normalized: true });
    expect(Array.from(ev.logits)).toEqual(Array.from(r.logits));
    expect(Array.from(ev.logProbs)).toEqual(Array.from(r.logProbs));
    let masked = 0;
    for (let e = 0; e < budgets.length; e++) {
      const ref = refMlp(policy.getParameters(), Array.from(r.states.subarray(e * D, (e + 1) * D)));
      const acts = Array.from(r.actions.subarray(e * L, (e + 1) * L));
      const dist = refConstrained(ref.logits, acts, COSTS, budgets[e], 1);
      expect(close(r.values[e], ref.value, 1e-5)).toBe(true);
      expect(
        close(
          r.logProbs[e],
          dist.logProb.reduce((a, b) => a + b, 0),
          1e-5,
        ),
      ).toBe(true);
      expect(
        close(
          r.entropy[e],
          dist.entropy.reduce((a, b) => a + b, 0),
          1e-5,
        ),
      ).toBe(true);
      expect(
        close(
          ev.entropy[e],
          dist.entropy.reduce((a, b) => a + b, 0),
          1e-5,
        ),
      ).toBe(true);
      for (let k = 0; k < L; k++) {
        expect(close(r.logits[e * L + k], ref.logits[k], 1e-5)).toBe(true);
        if (dist.probOne[k] === 0) {
          masked++;
          expect(r.probs[e * L + k]).toBe(0);
          expect(r.actions[e * L + k]).toBe(0);
        } else expect(close(r.probs[e * L + k], dist.probOne[k], 1e-5)).toBe(true);
      }
    }
    expect(masked).toBeGreaterThan(3);
    await policy.release();
  });

  it('samples each free decision with its probability', async () => {
    const policy = await PolicyNetwork.create({ ...config, minLevels: 0 }, { seed: 12 });
    const params = policy.getParameters();
    for (const p of params) if (p.name === 'actor.bias') p.data.set([-1, 0, 0.5, 2]);
    await policy.setParameters(params);
    const n = 4000;
    const r = await policy.selectAction(randomStates(new Rng(2), n), {});
    for (let k = 0; k < L; k++) {
      let diff = 0;
      let varSum = 0;
      for (let e = 0; e < n; e++) {
        const p = r.probs[e * L + k];
        diff += r.actions[e * L + k] - p;
        varSum += p * (1 - p);
      }
      expect(Math.abs(diff)).toBeLessThan(4.5 * Math.sqrt(varSum));
    }
    await policy.release();
  });
});

describe('PolicyNetwork persistence', () => {
  it('save/load keeps weights, normalizer and sampling stream; the deploy graph takes raw states', async () => {
    const config: PolicyConfig = {
      mode: 'sequential',
      stateDim: D,
      numLevels: L,
      hiddenSize: 8,
      costs: COSTS,
    };
    const policy = await PolicyNetwork.create(config, { seed: 21 });
    const raw = randomStates(new Rng(3), 5);
    policy.normalizeStates(raw, true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-policy-'));
    const file = path.join(dir, 'policy.onnx');
    policy.save(file);
    const loaded = await PolicyNetwork.load(file);
    const a = await policy.selectAction(raw, { budgets: [1, 1, 1, 1, 1] });
    const b = await loaded.selectAction(raw, { budgets: [1, 1, 1, 1, 1] });
    expect(Array.from(b.logits)).toEqual(Array.from(a.logits));
    expect(Array.from(b.actions)).toEqual(Array.from(a.actions));

    // The deploy graph normalizes inside (float32); logits agree with the TS normalization closely.
    const session = await createSession(policy.exportForInference());
    const H = 8;
    const onehot = new Float32Array(L);
    onehot[0] = 1;
    const out = await session.run({
      state: { data: raw, dims: [5, D] },
      prev_action: { data: new Float32Array(5), dims: [5, 1] },
      h: { data: new Float32Array(5 * H), dims: [5, H] },
      c: { data: new Float32Array(5 * H), dims: [5, H] },
      level_onehot: { data: onehot, dims: [1, L] },
    });
    const z = out.logits.data as Float32Array;
    for (let e = 0; e < 5; e++) expect(close(z[e], a.logits[e], 1e-4)).toBe(true);

    // One save format: the in-memory model (what run checkpoints hold) is the file's content.
    const ck = await PolicyNetwork.fromModel(policy.exportForInference());
    expect(ck.getParameters()).toEqual(policy.getParameters());
    expect(ck.normalizer!.toJSON()).toEqual(policy.normalizer!.toJSON());
    expect(ck.samplingRng.getState()).toEqual(policy.samplingRng.getState());
    await Promise.all([policy.release(), loaded.release(), ck.release(), session.release()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads a policy saved before the format was versioned, and rejects a newer format clearly', async () => {
    const policy = await PolicyNetwork.create(
      { mode: 'independent', stateDim: D, numLevels: L, hiddenSize: 16, costs: COSTS },
      { seed: 4 },
    );
    const meta = (m: ReturnType<PolicyNetwork['exportForInference']>) =>
      JSON.parse(m.metadata['rlpkd.policy']) as Record<string, unknown>;
    // What the previous code wrote: the same metadata without `version`.
    const old = policy.exportForInference();
    const { version, ...rest } = meta(old);
    expect(version).toBe(POLICY_FORMAT_VERSION);
    old.metadata['rlpkd.policy'] = JSON.stringify(rest);
    const back = await PolicyNetwork.fromModel(old);
    expect(back.getParameters()).toEqual(policy.getParameters());
    const newer = policy.exportForInference();
    newer.metadata['rlpkd.policy'] = JSON.stringify({ ...meta(newer), version: POLICY_FORMAT_VERSION + 1 });
    await expect(PolicyNetwork.fromModel(newer, {}, "'p.onnx'")).rejects.toThrow(
      `'p.onnx' holds a policy of format ${POLICY_FORMAT_VERSION + 1}; this rl-pyramidkd reads format ${POLICY_FORMAT_VERSION}`,
    );
    await Promise.all([policy.release(), back.release()]);
  });
});

describe('PolicyNetwork.predictValues', () => {
  it.each(['sequential', 'independent'] as const)(
    'gives the values selectAction computes at every step (%s), and refuses a finished episode',
    async (mode) => {
      const policy = await PolicyNetwork.create(
        { mode, stateDim: D, numLevels: L, hiddenSize: 16, costs: COSTS },
        { seed: 8 },
      );
      const rng = new Rng(5);
      const budgets = [1, 0.4, 0.7];
      const memory = policy.newMemory(budgets);
      const steps = policy.layout.steps;
      for (let t = 0; t < steps; t++) {
        const raw = randomStates(rng, budgets.length);
        const v = await policy.predictValues(raw, memory);
        expect(memory.step).toBe(t); // not advanced
        const r = await policy.selectAction(raw, { memory });
        expect(Array.from(v)).toEqual(Array.from(r.values));
      }
      // The old copy fed the last step's one-hot here and answered; both calls now refuse the same way.
      const raw = randomStates(rng, budgets.length);
      await expect(policy.predictValues(raw, memory)).rejects.toThrow(/decision steps are done/);
      await expect(policy.selectAction(raw, { memory })).rejects.toThrow(/decision steps are done/);
      await expect(policy.predictValues(raw.subarray(1), memory)).rejects.toThrow(/is not N×6 states/);
      // A single environment goes through the two-row path and still agrees.
      const one = policy.newMemory([1]);
      const s1 = randomStates(rng, 1);
      expect(Array.from(await policy.predictValues(s1, one))).toEqual(
        Array.from((await policy.selectAction(s1, { memory: one })).values),
      );
      await policy.release();
    },
  );
});
