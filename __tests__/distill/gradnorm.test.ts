import { GradNorm, type GradNormObservation } from '../../src/distill/gradnorm';
import { GradNormProbe } from '../../src/distill/gradnorm-probe';
import { findSharedParameter } from '../../src/distill/shared-parameter';
import { artifactModel, generateArtifacts, readCheckpoint } from '../../src/training/artifacts';
import { TrainingSession } from '../../src/training/training-session';
import { finiteDifferenceGradients } from '../helpers/grad-check';
import { buildToyModel, ToyData, TOY_IO, type ToySpec } from './toy-regression';

/** Plain float64 GradNorm step (independent of the class): Adam on w, floor, renormalize. */
function referenceStep(
  state: { w: number[]; l0: (number | undefined)[]; m: number[]; v: number[]; t: number[] },
  obs: { g: number[]; loss: number[]; active: boolean[] },
  alpha: number,
  lr: number,
): { G: number[]; target: number[]; grad: number[]; lossGrad: number } {
  const L = state.w.length;
  obs.active.forEach((a, l) => {
    if (a && state.l0[l] === undefined) state.l0[l] = obs.loss[l];
  });
  const act = [...Array(L).keys()].filter((l) => obs.active[l]);
  const G = state.w.map((w, l) => w * obs.g[l]);
  const meanG = act.reduce((s, l) => s + G[l], 0) / act.length;
  const tilde = obs.loss.map((x, l) => x / (state.l0[l] ?? 1));
  const meanT = act.reduce((s, l) => s + tilde[l], 0) / act.length;
  const target = tilde.map((x) => meanG * (x / meanT) ** alpha);
  const grad = state.w.map((_, l) => (obs.active[l] ? Math.sign(G[l] - target[l]) * obs.g[l] : 0));
  const lossGrad = act.reduce((s, l) => s + Math.abs(G[l] - target[l]), 0);
  for (const l of act) {
    state.t[l]++;
    state.m[l] = 0.9 * state.m[l] + 0.1 * grad[l];
    state.v[l] = 0.999 * state.v[l] + 0.001 * grad[l] ** 2;
    const mh = state.m[l] / (1 - 0.9 ** state.t[l]);
    const vh = state.v[l] / (1 - 0.999 ** state.t[l]);
    state.w[l] -= (lr * mh) / (Math.sqrt(vh) + 1e-8);
  }
  const floored = state.w.map((x) => Math.max(x, 1e-4));
  const sum = floored.reduce((a, b) => a + b, 0);
  state.w = floored.map((x) => x / sum);
  return { G, target, grad, lossGrad };
}

describe('GradNorm update', () => {
  const levels = ['P2', 'P3', 'P4', 'P5'];

  it('matches the hand-computed first step (equal ratios, targets = mean G)', () => {
    const gn = new GradNorm({ levels, optimizer: 'sgd', lr: 0.01 });
    expect(gn.weights).toEqual([0.25, 0.25, 0.25, 0.25]);
    const r = gn.update({ gradNorms: [4, 2, 1, 1], losses: [2, 1, 1, 1] });
    // G = w·g = [1, 0.5, 0.25, 0.25], mean 0.5, r = 1 → targets 0.5; sign(G − target)·g = [4, 0, −1, −1].
    expect(r.gradNorms).toEqual([1, 0.5, 0.25, 0.25]);
    expect(r.targets).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(r.ratios).toEqual([1, 1, 1, 1]);
    expect(r.gradients).toEqual([4, 0, -1, -1]);
    expect(r.lossGrad).toBeCloseTo(1, 15);
    // SGD: w = [0.21, 0.25, 0.26, 0.26] (sum 0.98), renormalized.
    const expected = [0.21, 0.25, 0.26, 0.26].map((x) => x / 0.98);
    r.updated.forEach((w, i) => expect(w).toBeCloseTo(expected[i], 14));
    expect(gn.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
    expect(gn.initialLosses).toEqual([2, 1, 1, 1]);
  });

  it('follows an independent float64 reference over several steps, with inactive levels', () => {
    const gn = new GradNorm({ levels, alpha: 1.5, lr: 0.05 });
    const ref = {
      w: [0.25, 0.25, 0.25, 0.25],
      l0: [undefined, undefined, undefined, undefined] as (number | undefined)[],
      m: [0, 0, 0, 0],
      v: [0, 0, 0, 0],
      t: [0, 0, 0, 0],
    };
    const obs: { g: number[]; loss: number[]; active: boolean[] }[] = [
      { g: [4, 2, 1, 0.5], loss: [2, 1, 1, 1], active: [true, true, false, true] },
      { g: [3, 2.5, 1.2, 0.4], loss: [1, 1, 0.5, 1], active: [true, true, true, true] },
      { g: [2, 2, 1, 0.8], loss: [0.6, 0.9, 0.5, 0.7], active: [true, false, true, true] },
      { g: [1.5, 2.2, 1.1, 1.0], loss: [0.5, 0.8, 0.45, 0.6], active: [true, true, true, true] },
    ];
    for (const o of obs) {
      const expect64 = referenceStep(ref, o, 1.5, 0.05);
      const r = gn.update({ gradNorms: o.g, losses: o.loss, active: o.active });
      o.active.forEach((a, l) => {
        if (!a) {
          expect(r.gradNorms[l]).toBeNaN();
          expect(r.gradients[l]).toBe(0);
          return;
        }
        expect(r.gradNorms[l]).toBeCloseTo(expect64.G[l], 14);
        expect(r.targets[l]).toBeCloseTo(expect64.target[l], 14);
        expect(r.gradients[l]).toBe(expect64.grad[l]);
      });
      expect(r.lossGrad).toBeCloseTo(expect64.lossGrad, 14);
      gn.weights.forEach((w, l) => expect(w).toBeCloseTo(ref.w[l], 14));
      expect(gn.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
    }
    // P4 was inactive at step 1, so its L(0) is its first active loss (0.5).
    expect(gn.initialLosses).toEqual([2, 1, 0.5, 1]);
    expect(gn.history.map((h) => h.step)).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps weights positive and summing to 1 under huge steps', () => {
    const gn = new GradNorm({ levels, optimizer: 'sgd', lr: 10 });
    for (let i = 0; i < 5; i++) gn.update({ gradNorms: [100, 1, 1, 1], losses: [1, 1, 1, 1] });
    expect(Math.min(...gn.weights)).toBeGreaterThan(0);
    expect(gn.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('resumes exactly from its JSON state', () => {
    const obs: GradNormObservation[] = [
      { gradNorms: [4, 2, 1, 0.5], losses: [2, 1, 1, 1] },
      { gradNorms: [3, 2.5, 1.2, 0.4], losses: [1, 1, 0.5, 1] },
      { gradNorms: [2, 2, 1, 0.8], losses: [0.6, 0.9, 0.5, 0.7] },
    ];
    const a = new GradNorm({ levels });
    a.update(obs[0]);
    const b = new GradNorm({ levels });
    b.load(JSON.parse(JSON.stringify(a.toJSON())));
    for (const o of obs.slice(1)) {
      a.update(o);
      b.update(o);
    }
    expect(b.weights).toEqual(a.weights);
    expect(b.toJSON()).toEqual(a.toJSON());
    expect(() => new GradNorm({ levels: ['P3', 'P4'] }).load(a.toJSON())).toThrow(/levels/);
  });

  it('rejects a diverged measurement with a clear message', () => {
    const gn = new GradNorm({ levels });
    expect(() => gn.update({ gradNorms: [1, NaN, 1, 1], losses: [1, 1, 1, 1] })).toThrow(
      /level P3 has gradient norm NaN/,
    );
  });
});

describe('GradNormProbe', () => {
  it('measures ‖∇_W L_l‖ per loss like central finite differences (float64 reference)', async () => {
    const spec: ToySpec = { scales: [1, 3, 9], inputDim: 3, hidden: 4, outputDim: 2, seed: 5 };
    const losses = spec.scales.map((_, i) => TOY_IO.loss(i));
    const artifacts = generateArtifacts(buildToyModel(spec), {
      loss: { type: 'output', output: TOY_IO.total, extraOutputs: losses },
      optimizer: { type: 'sgd', lr: 0.1 },
    });
    const evalModel = artifactModel(artifacts, 'eval');
    const probe = await GradNormProbe.create({ model: evalModel, losses, parameter: 'trunk.1.weight' });
    const feeds = { ...new ToyData(spec).batch(5), ...readCheckpoint(artifacts).parameters };
    feeds[TOY_IO.weights] = { data: Float32Array.of(0.2, 0.3, 0.5), dims: [3] };
    const got = await probe.run(feeds);
    await probe.release();
    losses.forEach((loss, i) => {
      const fd = finiteDifferenceGradients(evalModel, loss, ['trunk.1.weight'], feeds)['trunk.1.weight'];
      const norm = Math.sqrt(fd.reduce((a, v) => a + v * v, 0));
      expect(norm).toBeGreaterThan(0);
      expect(Math.abs(got.gradNorms[i] - norm) / norm).toBeLessThan(1e-4);
    });
    await expect(GradNormProbe.create({ model: evalModel, losses, parameter: 'nope' })).rejects.toThrow(
      /'nope' is not a graph input/,
    );
  });
});

describe('level gradient norms from the training step itself (levelGradientNorms artifacts)', () => {
  it('equal float64 central differences and leave the step unchanged', async () => {
    const spec: ToySpec = { scales: [1, 3, 9], inputDim: 3, hidden: 4, outputDim: 2, seed: 5 };
    const losses = spec.scales.map((_, i) => TOY_IO.loss(i));
    const options = {
      loss: { type: 'output', output: TOY_IO.total, extraOutputs: losses },
      optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 1e-2 },
    } as const;
    const plain = generateArtifacts(buildToyModel(spec), options);
    const withNorms = generateArtifacts(buildToyModel(spec), {
      ...options,
      levelGradientNorms: { losses, parameter: 'trunk.1.weight' },
    });
    expect(withNorms.manifest.levelGradientNorms?.outputs).toHaveLength(3);
    const a = await TrainingSession.create({ artifacts: plain });
    const b = await TrainingSession.create({ artifacts: withNorms });
    expect(a.measuresLevelGradientNorms).toBe(false);
    expect(b.measuresLevelGradientNorms).toBe(true);
    await expect(a.fusedStep({}, { levelGradientNorms: true })).rejects.toThrow(
      /cannot measure level gradient norms/,
    );
    const data = new ToyData(spec);
    const evalModel = artifactModel(withNorms, 'eval');
    // The separate probe sums the same float32 gradients in float64 on the host: both paths must agree.
    const probe = await GradNormProbe.create({ model: evalModel, losses, parameter: 'trunk.1.weight' });
    let worstVsProbe = 0;
    for (let step = 0; step < 3; step++) {
      const feeds = {
        ...data.batch(5),
        [TOY_IO.weights]: { data: Float32Array.of(0.2, 0.3, 0.5), dims: [3] },
      };
      const atStart = { ...feeds, ...(await b.getParameters()) };
      const probed = await probe.run(atStart);
      const rb = await b.fusedStep(feeds, { levelGradientNorms: true });
      const ra = await a.fusedStep(feeds);
      losses.forEach((loss, i) => {
        const fd = finiteDifferenceGradients(evalModel, loss, ['trunk.1.weight'], atStart)['trunk.1.weight'];
        const norm = Math.sqrt(fd.reduce((acc, v) => acc + v * v, 0));
        expect(Math.abs(rb.levelGradientNorms![i] - norm) / norm).toBeLessThan(1e-4);
        const rel = Math.abs(rb.levelGradientNorms![i] - probed.gradNorms[i]) / probed.gradNorms[i];
        worstVsProbe = Math.max(worstVsProbe, rel);
      });
      expect(rb.gradNorm).toBe(ra.gradNorm);
    }
    console.log(
      `level gradient norms: step graph vs probe, worst relative difference ${worstVsProbe.toExponential(2)}`,
    );
    // The two graphs compute the same float32 gradients here; float64 sums in another order differ by
    // ~1e-16, where a float32 sum of these 16 squares would be off by up to ~1e-7.
    expect(worstVsProbe).toBeLessThan(1e-12);
    await probe.release();
    const pa = await a.getParameters();
    const pb = await b.getParameters();
    for (const k of Object.keys(pa))
      expect(Array.from(pb[k].data as Float32Array)).toEqual(Array.from(pa[k].data as Float32Array));
    expect(() =>
      generateArtifacts(buildToyModel(spec), {
        ...options,
        levelGradientNorms: { losses, parameter: 'nope' },
      }),
    ).toThrow(/'nope' is not a trainable parameter the loss reaches/);
    await Promise.all([a.release(), b.release()]);
  });
});

describe('GradNorm on the paper toy (regression tasks of very different scales, shared trunk)', () => {
  jest.setTimeout(120000);
  const spec: ToySpec = { scales: [1, 4, 16], inputDim: 16, hidden: 32, outputDim: 4, seed: 3 };
  const T = spec.scales.length;
  const losses = spec.scales.map((_, i) => TOY_IO.loss(i));

  /** Trains the toy; returns final weights, gradient norms at W and the training rates L_i(t)/L_i(0). */
  async function train(useGradNorm: boolean, steps: number) {
    const model = buildToyModel(spec);
    const artifacts = generateArtifacts(model, {
      loss: { type: 'output', output: TOY_IO.total, extraOutputs: losses },
      optimizer: { type: 'adamw', lr: 1e-3, weightDecay: 0 },
    });
    const shared = findSharedParameter(
      model,
      losses,
      artifacts.manifest.parameters.map((p) => p.name),
    );
    const session = await TrainingSession.create({ artifacts });
    const probe = await GradNormProbe.create({
      model: artifactModel(artifacts, 'eval'),
      losses,
      parameter: shared.name,
    });
    const gn = new GradNorm({ levels: losses });
    const data = new ToyData(spec);
    const evalFeeds = data.batch(512);
    const measure = async () => {
      evalFeeds[TOY_IO.weights] = { data: new Float32Array(T).fill(1 / T), dims: [T] };
      return probe.run({ ...evalFeeds, ...(await session.getParameters()) });
    };
    const start = await measure();
    for (let s = 0; s < steps; s++) {
      const feeds = data.batch(64);
      feeds[TOY_IO.weights] = { data: gn.weightsFloat32(), dims: [T] };
      const p = await probe.run({ ...feeds, ...(await session.getParameters()) });
      await session.fusedStep(feeds);
      if (useGradNorm) gn.update({ gradNorms: p.gradNorms, losses: p.losses });
    }
    const end = await measure();
    await probe.release();
    await session.release();
    const rates = end.losses.map((l, i) => l / start.losses[i]);
    return { shared: shared.name, weights: gn.weights, gradNorms: end.gradNorms, rates };
  }

  it('learns weights inversely ordered to the task gradient norms and evens out the training rates', async () => {
    const withGn = await train(true, 500);
    const without = await train(false, 500);
    // W is auto-detected as the last layer every task depends on.
    expect(withGn.shared).toBe('trunk.1.weight');
    // Task gradient norms at W grow with the task scale ...
    expect(withGn.gradNorms[0]).toBeLessThan(withGn.gradNorms[1]);
    expect(withGn.gradNorms[1]).toBeLessThan(withGn.gradNorms[2]);
    // ... and the learned weights order the other way round.
    expect(withGn.weights[0]).toBeGreaterThan(withGn.weights[1]);
    expect(withGn.weights[1]).toBeGreaterThan(withGn.weights[2]);
    const spread = (r: number[]) => Math.max(...r) / Math.min(...r);
    console.log(
      `toy GradNorm: weights [${withGn.weights.map((w) => w.toFixed(3)).join(', ')}], ` +
        `rates with [${withGn.rates.map((r) => r.toFixed(3)).join(', ')}] (spread ${spread(withGn.rates).toFixed(2)}), ` +
        `without [${without.rates.map((r) => r.toFixed(3)).join(', ')}] (spread ${spread(without.rates).toFixed(2)})`,
    );
    // Equal weights let the large task dominate the trunk: training rates drift apart. GradNorm evens them out.
    expect(spread(without.rates)).toBeGreaterThan(2);
    expect(spread(withGn.rates)).toBeLessThan(1.5);
    expect(spread(withGn.rates)).toBeLessThan(spread(without.rates) / 2);
  });
});
