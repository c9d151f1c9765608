import { allocateEpisodes, concatEpisodes, selectEpisodes } from '../../src/rl/episode-batch';
import { ReplayBuffer } from '../../src/rl/replay-buffer';
import { RolloutBuffer } from '../../src/rl/rollout-buffer';
import { Rng } from '../../src/util/rng';

const shape = { steps: 2, decisions: 1, stateDim: 3 };

/** n episodes whose every field encodes the episode id, so copies can be traced. */
function tagged(n: number, first = 0) {
  const b = allocateEpisodes(n, shape);
  for (let i = 0; i < n; i++) {
    const id = first + i;
    b.states.fill(id, i * 6, (i + 1) * 6);
    b.logits.fill(id, i * 2, (i + 1) * 2);
    b.rewards.fill(id, i * 2, (i + 1) * 2);
    b.advantages.fill(-id, i * 2, (i + 1) * 2);
    b.budgets[i] = id;
    b.actions[i * 2] = id % 2;
  }
  return b;
}

describe('RolloutBuffer', () => {
  function fill(buf: RolloutBuffer, dones: (t: number) => number[]) {
    const { numSteps: T, numEnvs: N } = buf.options;
    for (let t = 0; t < T; t++) {
      buf.add({
        states: Float32Array.from({ length: N * 3 }, (_, i) => t * 100 + Math.floor(i / 3)),
        actions: Uint8Array.from({ length: N }, (_, e) => (t + e) % 2),
        kinds: new Uint8Array(N),
        logits: Float32Array.from({ length: N }, (_, e) => t + e / 10),
        logProbs: new Float64Array(N),
        values: Float64Array.from({ length: N }, () => 0.5),
        rewards: Float64Array.from({ length: N }, (_, e) => (t % 2 === 1 ? 1 + e : 0)),
        dones: dones(t),
        budgets: [1, 0.5],
      });
    }
  }

  it('regroups lockstep steps into whole episodes with their advantages', () => {
    const buf = new RolloutBuffer({ numSteps: 4, numEnvs: 2, stateDim: 3, decisions: 1, stepsPerEpisode: 2 });
    fill(buf, (t) => (t % 2 === 1 ? [1, 1] : [0, 0]));
    buf.computeReturnsAndAdvantages([0, 0], 1, 1);
    const ep = buf.episodes();
    expect(ep.count).toBe(4);
    // Episode (block 1, env 1) = rows 3: steps t=2,3 of env 1.
    expect(Array.from(ep.states.subarray(3 * 6, 4 * 6))).toEqual([201, 201, 201, 301, 301, 301]);
    expect(Array.from(ep.logits.subarray(6, 8))).toEqual([Math.fround(2.1), Math.fround(3.1)]);
    expect(Array.from(ep.rewards.subarray(6, 8))).toEqual([0, 2]);
    // γ = λ = 1: A_t = Σ future rewards in the episode − V_t.
    expect(Array.from(ep.advantages.subarray(6, 8))).toEqual([1.5, 1.5]);
    expect(Array.from(ep.returns.subarray(6, 8))).toEqual([2, 2]);
    expect(ep.budgets[3]).toBe(0.5);
  });

  it('group advantages: each episode against the mean return of the other episodes of its group', () => {
    // 2 envs, 4 episodes of 2 steps each; the reward comes on an episode's second step: 1 + e + b (block b).
    const buf = new RolloutBuffer({ numSteps: 8, numEnvs: 2, stateDim: 3, decisions: 1, stepsPerEpisode: 2 });
    for (let t = 0; t < 8; t++) {
      const b = Math.floor(t / 2);
      buf.add({
        states: new Float32Array(6),
        actions: new Uint8Array(2),
        kinds: new Uint8Array(2),
        logits: new Float32Array(2),
        logProbs: new Float64Array(2),
        values: Float64Array.from([0.5, 0.5]),
        rewards: t % 2 === 1 ? [1 + b, 2 + b * b] : [0, 0],
        dones: t % 2 === 1 ? [1, 1] : [0, 0],
        budgets: [1, 1],
      });
    }
    buf.computeReturnsAndAdvantages([0, 0], 1, 1);
    const gae = buf.episodes();
    buf.useGroupAdvantages(2);
    const ep = buf.episodes();
    // Env 0 returns by block 1, 2, 3, 4; groups {0, 1} and {2, 3}: 1 − 2, 2 − 1, 3 − 4, 4 − 3.
    // Env 1 returns 2, 3, 6, 11: 2 − 3, 3 − 2, 6 − 11, 11 − 6. Episode m = b · 2 + e.
    const want = [-1, -1, 1, 1, -1, -5, 1, 5];
    want.forEach((a, m) => expect(Array.from(ep.advantages.subarray(m * 2, m * 2 + 2))).toEqual([a, a]));
    // Value targets stay the GAE returns.
    expect(Array.from(ep.returns)).toEqual(Array.from(gae.returns));
    const odd = new RolloutBuffer({ numSteps: 6, numEnvs: 1, stateDim: 3, decisions: 1, stepsPerEpisode: 2 });
    expect(() => odd.useGroupAdvantages(2)).toThrow(/computeReturnsAndAdvantages/);
  });

  it('rejects episodes that do not end in lockstep after stepsPerEpisode steps', () => {
    const buf = new RolloutBuffer({ numSteps: 4, numEnvs: 2, stateDim: 3, decisions: 1, stepsPerEpisode: 2 });
    fill(buf, (t) => (t === 0 ? [1, 0] : t % 2 === 1 ? [1, 1] : [0, 0]));
    buf.computeReturnsAndAdvantages([0, 0], 1, 1);
    expect(() => buf.episodes()).toThrow(
      /rollout step 0, env 0: done=1 but episodes must last exactly 2 steps/,
    );
    expect(
      () => new RolloutBuffer({ numSteps: 3, numEnvs: 1, stateDim: 1, decisions: 1, stepsPerEpisode: 2 }),
    ).toThrow(/not a multiple of the episode length 2/);
  });
});

describe('episode batches', () => {
  it('select and concat copy whole episodes', () => {
    const a = tagged(3);
    const b = tagged(2, 10);
    const c = concatEpisodes([a, b]);
    expect(Array.from(c.budgets)).toEqual([0, 1, 2, 10, 11]);
    const s = selectEpisodes(c, [4, 0]);
    expect(Array.from(s.states)).toEqual([...new Array(6).fill(11), ...new Array(6).fill(0)]);
    expect(Array.from(s.advantages)).toEqual([-11, -11, -0, -0]);
  });
});

describe('ReplayBuffer', () => {
  it('keeps the newest episodes up to its capacity', () => {
    const buf = new ReplayBuffer({ capacity: 4, shape });
    buf.addEpisodes(tagged(3));
    buf.addEpisodes(tagged(3, 3));
    expect(buf.size).toBe(4);
    expect(buf.transitions).toBe(8);
    expect(Array.from(buf.all().budgets)).toEqual([2, 3, 4, 5]);
  });

  it('samples uniformly without replacement and splits support/query disjointly', () => {
    const buf = new ReplayBuffer({ capacity: 10, shape });
    buf.addEpisodes(tagged(10));
    const rng = new Rng(1);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 2000; i++) {
      const s = buf.sampleEpisodes(3, rng);
      const ids = Array.from(s.budgets);
      expect(new Set(ids).size).toBe(3);
      ids.forEach((id) => counts[id]++);
    }
    // Each episode is drawn with probability 3/10 per call: 600 ± 4.5σ (σ ≈ 20.5).
    for (const c of counts) expect(Math.abs(c - 600)).toBeLessThan(95);
    const { support, query } = buf.split(4, rng);
    const sup = new Set(Array.from(support.budgets));
    const qry = Array.from(query.budgets);
    expect(sup.size).toBe(4);
    expect(qry.length).toBe(6);
    expect(qry.every((id) => !sup.has(id))).toBe(true);
    expect(() => buf.sampleEpisodes(11, rng)).toThrow(/cannot draw 11 distinct episodes from 10/);
  });

  it('samples single transitions with their step index and done flag', () => {
    const buf = new ReplayBuffer({ capacity: 5, shape });
    buf.addEpisodes(tagged(5));
    const t = buf.sampleTransitions(200, new Rng(2));
    for (let i = 0; i < t.count; i++) {
      const id = t.budgets[i];
      expect(t.states[i * 3]).toBe(id);
      expect(t.rewards[i]).toBe(id);
      expect(t.dones[i]).toBe(t.stepIndex[i] === 1 ? 1 : 0);
    }
    expect(new Set(Array.from(t.stepIndex)).size).toBe(2);
  });

  it('round-trips through JSON exactly, including its eviction position', () => {
    const buf = new ReplayBuffer({ capacity: 4, shape });
    buf.addEpisodes(tagged(6));
    const back = ReplayBuffer.fromJSON(JSON.parse(JSON.stringify(buf.toJSON())));
    expect(back.all()).toEqual(buf.all());
    back.addEpisodes(tagged(1, 99));
    buf.addEpisodes(tagged(1, 99));
    expect(back.all()).toEqual(buf.all());
    const r1 = new Rng(3);
    const r2 = new Rng(3);
    expect(back.sampleEpisodes(2, r1)).toEqual(buf.sampleEpisodes(2, r2));
  });
});
