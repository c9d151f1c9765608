import * as path from 'node:path';
import { FeatureCache, teacherHash } from '../../src/data/feature-cache';
import { StudentDistiller, type TrialOptimizerState } from '../../src/distill/student-distiller';
import { arrayImageSource, ParallelDistillationEnv } from '../../src/rl/distillation-env';
import { findSharedParameter } from '../../src/distill/shared-parameter';
import { modelToBytes } from '../../src/onnx/model-io';
import { createSession, type HostTensor } from '../../src/runtime';
import type { OptimizerConfig } from '../../src/training/optimizers';
import { Rng } from '../../src/util/rng';
import { tinyDistillGraphs, tinyFpn } from './fixtures';
import { tempDir } from './run-fixtures';

const N = 4;
const L = 4;

function images(seed: number, n = N): HostTensor {
  const rng = new Rng(seed);
  return { data: Float32Array.from({ length: n * 3 * 32 * 32 }, () => rng.normal()), dims: [n, 3, 32, 32] };
}

async function makeTrainer(
  options: {
    cacheDir?: string;
    shared?: boolean;
    teacherChannels?: number;
    artifactsDir?: string;
    optimizer?: OptimizerConfig;
    trialOptimizerState?: TrialOptimizerState;
    trialLrScale?: number;
  } = {},
) {
  const graphs = tinyDistillGraphs(options.teacherChannels);
  const { teacher, student, pairs, trainable } = graphs;
  const W = findSharedParameter(
    student,
    pairs.map((p) => p.studentTensor),
    trainable,
  ).name;
  const cache = options.cacheDir ? new FeatureCache(options.cacheDir, { maxBytes: 1 << 24 }) : undefined;
  const trainer = await StudentDistiller.create({
    ...graphs,
    optimizer: options.optimizer ?? { type: 'sgd', lr: 1e-3 },
    ...(options.trialOptimizerState ? { trialOptimizerState: options.trialOptimizerState } : {}),
    ...(options.trialLrScale ? { trialLrScale: options.trialLrScale } : {}),
    ...(options.artifactsDir ? { artifactsDir: options.artifactsDir } : {}),
    ...(options.shared ? { sharedParameter: W } : {}),
    ...(cache
      ? {
          featureCache: {
            cache,
            teacherHash: teacherHash(modelToBytes(teacher)),
            preprocess: { height: 32, width: 32 },
          },
        }
      : {}),
  });
  return { trainer, teacher, student, pairs, cache };
}

describe('StudentDistiller', () => {
  jest.setTimeout(60000);

  it('serves teacher features from the cache exactly as computed, keyed on the image and the flip', async () => {
    const dir = tempDir('trainer-cache');
    const { trainer, cache } = await makeTrainer({ cacheDir: path.join(dir, 'cache') });
    const x = images(1);
    const hashes = ['a1', 'b2', 'c3', 'd4'].map((h) => h.repeat(16));
    const direct = await trainer.teacherFeatures({ images: x });
    const first = await trainer.teacherFeatures({ images: x, hashes, flipped: [false, false, true, false] });
    expect(cache!.stats()).toMatchObject({ hits: 0, misses: 4, writes: 4 });
    const second = await trainer.teacherFeatures({ images: x, hashes, flipped: [false, false, true, false] });
    expect(cache!.stats()).toMatchObject({ hits: 4, misses: 4, writes: 4 });
    // The flip is part of the key: the same file flipped is another entry.
    await trainer.teacherFeatures({ images: x, hashes, flipped: [true, false, true, false] });
    expect(cache!.stats()).toMatchObject({ hits: 7, misses: 5, writes: 5 });
    for (const k of Object.keys(direct)) {
      expect(first[k].dims).toEqual(direct[k].dims);
      expect(Array.from(second[k].data as Float32Array)).toEqual(Array.from(direct[k].data as Float32Array));
    }
    // A partially cached batch: two known images, two new ones (computed in one teacher run).
    const mixed = await trainer.teacherFeatures({
      images: x,
      hashes: [hashes[0], 'e5'.repeat(16), hashes[2], 'f6'.repeat(16)],
      flipped: [false, false, true, false],
    });
    for (const k of Object.keys(direct))
      expect(Array.from(mixed[k].data as Float32Array)).toEqual(Array.from(direct[k].data as Float32Array));
    await trainer.release();
  });

  it('trains on the masked, weighted level loss and reports masked unweighted level losses', async () => {
    const { trainer, student } = await makeTrainer({ shared: true });
    const x = images(2);
    const teacher = await trainer.teacherFeatures({ images: x });
    const e = (await trainer.evaluate({ images: x, teacher })).distances;
    // e[n, l] is the per-image MSE of the level: check one entry against a float64 recomputation.
    const s = await createSession(student);
    const out = await s.run({ images: x });
    await s.release();
    const ref = (n: number, level: string, t: string) => {
      const a = out[level].data as Float32Array;
      const b = teacher[t].data as Float32Array;
      const per = a.length / N;
      let acc = 0;
      for (let i = n * per; i < (n + 1) * per; i++) acc += (a[i] - b[i]) ** 2;
      return acc / per;
    };
    expect(e[2 * L + 1]).toBeCloseTo(ref(2, 'p3', 'teacher.P3'), 3);
    const mask = Float32Array.from([1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0]); // P5 selected by nobody
    const weights = Float32Array.of(0.1, 0.2, 0.3, 0.4);
    const before = await trainer.session.getParameters();
    const r = await trainer.step({ images: x, teacher }, mask, weights, { measureGradNorms: true });
    for (let l = 0; l < L; l++) {
      let want = 0;
      for (let n = 0; n < N; n++) want += mask[n * L + l] * e[n * L + l];
      expect(r.levelLosses[l]).toBeCloseTo(want / N, 3);
    }
    expect(r.loss).toBeCloseTo(
      r.levelLosses.reduce((a, v, l) => a + weights[l] * v, 0),
      3,
    );
    Array.from(r.perSample).forEach((v, i) => expect(v).toBeCloseTo(e[i], 4));
    // GradNorm measurements: positive for selected levels, zero for the level nobody selected.
    expect(r.levelGradNorms!.slice(0, 3).every((g) => g > 0)).toBe(true);
    expect(r.levelGradNorms![3]).toBe(0);
    const after = await trainer.session.getParameters();
    expect(
      Object.keys(after).some((k) =>
        (after[k].data as Float32Array).some((v, i) => v !== (before[k].data as Float32Array)[i]),
      ),
    ).toBe(true);
    await trainer.release();
  });

  it('exports the student with its own outputs and trained weights (adapters dropped)', async () => {
    const { trainer, pairs } = await makeTrainer({ teacherChannels: 16 });
    expect(pairs.every((p) => p.adapter)).toBe(true);
    const outputs = tinyFpn({ seed: 2 }).graph.outputs;
    const x = images(3, 2);
    const teacher = await trainer.teacherFeatures({ images: x });
    await trainer.step(
      { images: x, teacher },
      new Float32Array(2 * L).fill(1),
      new Float32Array(L).fill(0.25),
    );
    const exported = await trainer.exportStudent(outputs);
    expect(exported.graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3', 'p4', 'p5']);
    expect(exported.graph.outputs[0].shape).toEqual(outputs[0].shape);
    expect(exported.graph.initializers.some((t) => t.name.startsWith('adapter.'))).toBe(false);
    const params = await trainer.session.getParameters();
    const w = exported.graph.initializers.find((t) => t.name === 'fpn.layer_blocks.0.0.weight')!;
    expect(Array.from(w.data as Float32Array)).toEqual(
      Array.from(params['fpn.layer_blocks.0.0.weight'].data as Float32Array),
    );
    await trainer.release();
  });

  it('one object on three paths: pipeline steps, environment trials and benchmark steps give identical parameters', async () => {
    // The pipeline's path (feature cache, hashed batches, GradNorm-capable artifacts cached on disk),
    // the environment's (trial updates in between, each undone) and the benchmark's (no cache, teacher
    // features computed each step) must leave the same parameters after the same N steps.
    const dir = tempDir('three-paths');
    const optimizer: OptimizerConfig = { type: 'adamw', lr: 1e-2, weightDecay: 0.01 };
    const pipeline = await makeTrainer({
      cacheDir: path.join(dir, 'cache'),
      shared: true,
      artifactsDir: path.join(dir, 'artifacts'),
      optimizer,
    });
    const env = await makeTrainer({ shared: true, optimizer });
    const bench = await makeTrainer({ shared: true, optimizer });
    const mdp = new ParallelDistillationEnv({
      distiller: env.trainer,
      images: arrayImageSource(images(40, 8), 40),
      numEnvs: N,
      costs: [0.4, 0.3, 0.2, 0.1],
      levelOrder: ['P5', 'P4', 'P3', 'P2'],
    });
    const mask = Float32Array.from({ length: N * L }, (_, i) => (i % 3 === 0 ? 0 : 1));
    const weights = Float32Array.of(0.4, 0.3, 0.2, 0.1);
    const hashes = ['01', '02', '03', '04'].map((h) => h.repeat(32));
    for (let k = 0; k < 3; k++) {
      const x = images(10 + k);
      await pipeline.trainer.step(
        { images: x, hashes, flipped: [k === 1, false, false, true] },
        mask,
        weights,
      );
      // The environment's path: an episode batch of the selection MDP (a measured, undone trial with a
      // fresh optimizer state on other images), then the step.
      const prepared = await env.trainer.prepare({ images: x });
      const start = await mdp.reset();
      let out = await mdp.step(new Uint8Array(N).fill(1));
      for (let l = 1; l < L; l++) out = await mdp.step(new Uint8Array(N).fill(l % 2));
      expect(out.dones.every((d) => d === 1)).toBe(true);
      expect(out.infos.every((i) => i.episode!.lossAfter !== i.episode!.lossBefore)).toBe(true);
      expect(start.states.length).toBe(N * mdp.stateDim);
      await env.trainer.step(prepared, mask, weights);
      const taught = await bench.trainer.prepare({ images: x });
      await bench.trainer.step(taught, mask, weights);
      // Fresh hashes per step: the cache must compute each image once, then serve it (step k = 1 flips).
      hashes.forEach((h, i) => (hashes[i] = `${h.slice(0, 62)}${k}${i}`));
    }
    const [a, b, c] = await Promise.all([pipeline, env, bench].map((t) => t.trainer.session.getParameters()));
    expect(Object.keys(a).length).toBeGreaterThan(0);
    for (const k of Object.keys(a)) {
      expect(
        Buffer.from((b[k].data as Float32Array).buffer).equals(
          Buffer.from((a[k].data as Float32Array).buffer),
        ),
      ).toBe(true);
      expect(
        Buffer.from((c[k].data as Float32Array).buffer).equals(
          Buffer.from((a[k].data as Float32Array).buffer),
        ),
      ).toBe(true);
    }
    expect(pipeline.trainer.session.step).toBe(3);
    expect(env.trainer.session.step).toBe(3);
    // Optimizer state too: the trials left no trace.
    const [sa, sb] = [pipeline.trainer.checkpointState(), env.trainer.checkpointState()];
    for (const k of Object.keys(sa.optimizer.state)) {
      expect(Array.from(sb.optimizer.state[k].data as Float32Array)).toEqual(
        Array.from(sa.optimizer.state[k].data as Float32Array),
      );
    }
    await Promise.all([pipeline, env, bench].map((t) => t.trainer.release()));
  });

  it('trial: one first-step update from a fresh optimizer state, measured, then undone bit for bit', async () => {
    const optimizer: OptimizerConfig = { type: 'sgd', lr: 1e-2, momentum: 0.9 };
    const { trainer } = await makeTrainer({ optimizer });
    const fresh = await makeTrainer({ optimizer });
    const x = images(20);
    const mask = Float32Array.from({ length: N * L }, (_, i) => (i % 2 ? 1 : 0));
    const weights = new Float32Array(L).fill(0.25);
    // Give the trainer running momentum, and the fresh copy the same parameters with zero momentum.
    await trainer.step({ images: images(21) }, new Float32Array(N * L).fill(1), weights);
    await fresh.trainer.session.loadParameters(await trainer.session.getParameters());
    const saved = trainer.checkpointState();
    const t = await trainer.trial({ images: x }, mask, weights);
    // Reference: the same update as the first step of a fresh optimizer, measured by a separate evaluation.
    await fresh.trainer.step({ images: x }, mask, weights);
    const want = (await fresh.trainer.evaluate({ images: x })).distances;
    expect(Array.from(t.after)).toEqual(Array.from(want));
    const now = trainer.checkpointState();
    expect(now.optimizer.step).toBe(saved.optimizer.step);
    for (const k of Object.keys(saved.parameters)) {
      expect(Array.from(now.parameters[k].data as Float32Array)).toEqual(
        Array.from(saved.parameters[k].data as Float32Array),
      );
    }
    for (const k of Object.keys(saved.optimizer.state)) {
      expect(Array.from(now.optimizer.state[k].data as Float32Array)).toEqual(
        Array.from(saved.optimizer.state[k].data as Float32Array),
      );
    }
    await Promise.all([trainer.release(), fresh.trainer.release()]);
  });

  it("trial from the current optimizer state: the kept step's update (AdamW moments and step count), undone", async () => {
    const optimizer: OptimizerConfig = { type: 'adamw', lr: 1e-2, weightDecay: 0.01 };
    const { trainer } = await makeTrainer({ optimizer, trialOptimizerState: 'current' });
    const x = images(40);
    const mask = Float32Array.from({ length: N * L }, (_, i) => (i % 3 ? 1 : 0));
    const weights = new Float32Array(L).fill(0.25);
    await trainer.step({ images: images(41) }, new Float32Array(N * L).fill(1), weights);
    await trainer.step({ images: images(42) }, new Float32Array(N * L).fill(1), weights);
    const saved = trainer.checkpointState();
    const t = await trainer.trial({ images: x }, mask, weights);
    // Reference: a kept step from the same state (moments and step count included), then an evaluation.
    const kept = await makeTrainer({ optimizer });
    await kept.trainer.loadCheckpoint(saved);
    await kept.trainer.step({ images: x }, mask, weights);
    const want = (await kept.trainer.evaluate({ images: x })).distances;
    expect(Array.from(t.after)).toEqual(Array.from(want));
    // A fresh first AdamW step is a different update.
    const fresh = await makeTrainer({ optimizer });
    await fresh.trainer.loadCheckpoint(saved);
    const f = await fresh.trainer.trial({ images: x }, mask, weights);
    expect(Array.from(f.after)).not.toEqual(Array.from(want));
    const now = trainer.checkpointState();
    expect(now.optimizer.step).toBe(saved.optimizer.step);
    for (const k of Object.keys(saved.optimizer.state)) {
      expect(Array.from(now.optimizer.state[k].data as Float32Array)).toEqual(
        Array.from(saved.optimizer.state[k].data as Float32Array),
      );
    }
    await Promise.all([trainer.release(), kept.trainer.release(), fresh.trainer.release()]);
  });

  it.each([1, 0.1])(
    'preconditioned trial at %p × lr: the image gradient over √(v̂ + g²) of the run, no momentum (float64 reference), undone',
    async (scale) => {
      const optimizer: OptimizerConfig = {
        type: 'adamw',
        lr: 1e-2,
        weightDecay: 0,
        betas: [0.9, 0.999],
        eps: 1e-8,
      };
      const { trainer } = await makeTrainer({
        optimizer,
        trialOptimizerState: 'preconditioned',
        trialLrScale: scale,
      });
      const x = images(50);
      const mask = Float32Array.from({ length: N * L }, (_, i) => (i % 3 ? 1 : 0));
      const weights = new Float32Array(L).fill(0.25);
      for (const seed of [51, 52, 53])
        await trainer.step({ images: images(seed) }, new Float32Array(N * L).fill(1), weights);
      const saved = trainer.checkpointState();
      const T = saved.optimizer.step;
      expect(T).toBe(3);
      const t = await trainer.trial({ images: x }, mask, weights);
      // Reference: g at the saved parameters, then θ − lr·g/(√(v/(1 − β2^T) + g²) + ε) in float64.
      const ref = await makeTrainer({ optimizer });
      await ref.trainer.loadCheckpoint(saved);
      await ref.trainer.session.lazyResetGrad();
      await ref.trainer.session.trainStep(await ref.trainer.stepFeeds({ images: x }, mask, weights));
      const grads = await ref.trainer.session.getGradients();
      const moved: Record<string, HostTensor> = {};
      let changed = 0;
      for (const [name, p] of Object.entries(saved.parameters)) {
        const g = grads[name]?.data as Float32Array | undefined;
        const theta = p.data as Float32Array;
        if (!g) {
          moved[name] = p;
          continue;
        }
        const v = saved.optimizer.state[`${name}.exp_avg_sq`].data as Float32Array;
        moved[name] = {
          dims: [...p.dims],
          data: Float32Array.from(theta, (th, i) => {
            const vHat = v[i] / (1 - Math.pow(0.999, T)) + g[i] * g[i];
            const d = (scale * 1e-2 * g[i]) / (Math.sqrt(vHat) + 1e-8);
            if (Math.abs(d) > 1e-7) changed++;
            return th - d;
          }),
        };
      }
      expect(changed).toBeGreaterThan(10);
      await ref.trainer.session.loadParameters(moved);
      const want = (await ref.trainer.evaluate({ images: x })).distances;
      Array.from(t.after).forEach((a, i) =>
        expect(Math.abs(a - want[i])).toBeLessThanOrEqual(1e-4 * Math.abs(want[i]) + 1e-7),
      );
      // It is neither the kept step (momentum) nor a fresh first step.
      const current = await makeTrainer({ optimizer, trialOptimizerState: 'current' });
      await current.trainer.loadCheckpoint(saved);
      const c = await current.trainer.trial({ images: x }, mask, weights);
      expect(Array.from(c.after)).not.toEqual(Array.from(t.after));
      // Undone: parameters, moments and step as saved.
      const now = trainer.checkpointState();
      expect(now.optimizer.step).toBe(T);
      for (const k of Object.keys(saved.optimizer.state)) {
        expect(Array.from(now.optimizer.state[k].data as Float32Array)).toEqual(
          Array.from(saved.optimizer.state[k].data as Float32Array),
        );
      }
      await Promise.all([trainer.release(), ref.trainer.release(), current.trainer.release()]);
    },
  );

  it('evaluate with features returns the student level tensors of a plain inference run and the same distances', async () => {
    const { trainer, student, pairs } = await makeTrainer();
    const x = images(30);
    const plain = await trainer.evaluate({ images: x });
    const withFeatures = await trainer.evaluate({ images: x }, { features: true });
    const s = await createSession(student);
    const out = await s.run({ images: x });
    await s.release();
    Array.from(withFeatures.distances).forEach((v, i) => expect(v).toBeCloseTo(plain.distances[i], 5));
    for (const p of pairs) {
      const got = withFeatures.features![p.name].data as Float32Array;
      const ref = out[p.studentTensor].data as Float32Array;
      expect(got.length).toBe(ref.length);
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
      expect(worst).toBeLessThan(1e-4);
    }
    await trainer.release();
  });

  it('checkpoint views hold the same values as the copies, and the student exported from them', async () => {
    const { trainer } = await makeTrainer({ optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 0 } });
    await trainer.step(
      { images: images(50) },
      new Float32Array(N * L).fill(1),
      new Float32Array(L).fill(0.25),
    );
    const outputs = tinyFpn({ seed: 2 }).graph.outputs;
    const copy = trainer.checkpointState();
    const exported = await trainer.exportStudent(outputs);
    await trainer.withCheckpointViews(outputs, async ({ student, studentTrain }) => {
      expect(studentTrain.optimizer.step).toBe(1);
      for (const [k, t] of Object.entries(copy.parameters))
        expect(Array.from(studentTrain.parameters[k].data as Float32Array)).toEqual(
          Array.from(t.data as Float32Array),
        );
      for (const [k, t] of Object.entries(copy.optimizer.state))
        expect(Array.from(studentTrain.optimizer.state[k].data as Float32Array)).toEqual(
          Array.from(t.data as Float32Array),
        );
      expect(Buffer.from(modelToBytes(student)).equals(Buffer.from(modelToBytes(exported)))).toBe(true);
      // The session is locked meanwhile, so the views cannot change under the writer.
      await expect(trainer.evaluate({ images: images(51) })).rejects.toThrow(/another step is still running/);
    });
    await trainer.release();
  });
});
