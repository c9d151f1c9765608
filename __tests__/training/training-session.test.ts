import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tieIdenticalInitializers } from '../../src/onnx/shared-initializers';
import { createSession, type GraphSession, type HostTensor } from '../../src/runtime';
import {
  artifactModel,
  generateArtifacts,
  readCheckpoint,
  type ArtifactOptions,
  type TrainingArtifacts,
} from '../../src/training/artifacts';
import { TrainingSession } from '../../src/training/training-session';
import { Rng } from '../../src/util/rng';
import { referenceLoss } from '../helpers/grad-check';
import { fromHost, type RefTensor } from '../helpers/reference';
import { filled, imageBatch, tinyPyramid } from './tiny-pyramid';

const UPSAMPLE = 'resize' as const;
const N = 4;

function maxAbsDiff(a: Record<string, HostTensor>, b: Record<string, HostTensor>): number {
  let m = 0;
  for (const k of Object.keys(a)) {
    const x = a[k].data as Float32Array;
    const y = b[k].data as Float32Array;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  }
  return m;
}

const scalar = (t: HostTensor): number => (t.data as Float32Array)[0];

/** Parameters and optimizer state of `a` and `b` are bit-identical, and have moved away from `start`. */
function expectSameTrainedState(
  a: TrainingSession,
  b: TrainingSession,
  start: Record<string, HostTensor>,
): void {
  const sa = a.checkpointState();
  const sb = b.checkpointState();
  const bits = (t: HostTensor) => Array.from(t.data as Float32Array);
  for (const k of Object.keys(sb.parameters)) expect(bits(sa.parameters[k])).toEqual(bits(sb.parameters[k]));
  for (const k of Object.keys(sb.optimizer.state))
    expect(bits(sa.optimizer.state[k])).toEqual(bits(sb.optimizer.state[k]));
  expect(maxAbsDiff(sa.parameters, start)).toBeGreaterThan(0);
}

describe('TrainingSession on a tiny teacher/student pyramid', () => {
  let dir: string;
  let teacher: GraphSession;
  let artifacts: TrainingArtifacts;
  const batches: Record<string, HostTensor>[] = [];
  const options: ArtifactOptions = {
    loss: { type: 'distillation', levels: [{ student: 'p2' }, { student: 'p3' }] },
    optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 1e-4 },
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-train-'));
    teacher = await createSession(tinyPyramid({ seed: 1, width: 8, upsample: UPSAMPLE, name: 'teacher' }));
    for (let k = 0; k < 2; k++) {
      const x = imageBatch(100 + k, N);
      const t = await teacher.run({ x });
      batches.push({
        x,
        'teacher.p2': t.p2,
        'teacher.p3': t.p3,
        'distill.mask': filled([N, 2], 1),
        'distill.weights': { data: Float32Array.of(0.5, 0.5), dims: [2] },
      });
    }
    artifacts = generateArtifacts(tinyPyramid({ seed: 2, width: 8, upsample: UPSAMPLE, name: 'student' }), {
      ...options,
      outDir: path.join(dir, 'artifacts'),
    });
  });

  afterAll(async () => {
    await teacher.release();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes the artifacts and finds them in the cache the second time', () => {
    const files = fs.readdirSync(path.join(dir, 'artifacts')).sort();
    expect(files).toEqual([
      'checkpoint.onnx',
      'eval_model.onnx',
      'forward_model.onnx',
      'fused_step_model.onnx',
      'gradient_step_model.onnx',
      'manifest.json',
      'optimizer_model.onnx',
      'training_model.onnx',
    ]);
    expect(artifacts.cached).toBe(false);
    expect(artifacts.manifest.parameters.map((p) => p.name)).toEqual([
      'body.conv1.weight',
      'body.conv1.bias',
      'body.conv2.weight',
      'body.conv2.bias',
      'fpn.inner3.weight',
      'fpn.inner3.bias',
      'fpn.inner2.weight',
      'fpn.inner2.bias',
    ]);
    expect(artifacts.manifest.stepOutputs).toEqual([
      'distill.loss',
      'distill.level_loss.p2',
      'distill.level_loss.p3',
      'distill.per_sample',
    ]);
    const again = generateArtifacts(tinyPyramid({ seed: 2, width: 8, upsample: UPSAMPLE, name: 'student' }), {
      ...options,
      outDir: path.join(dir, 'artifacts'),
    });
    expect(again.cached).toBe(true);
    expect(again.manifest.hash).toBe(artifacts.manifest.hash);
    const changed = generateArtifacts(
      tinyPyramid({ seed: 2, width: 8, upsample: UPSAMPLE, name: 'student' }),
      {
        ...options,
        optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 },
        outDir: path.join(dir, 'artifacts-sgd'),
      },
    );
    expect(changed.cached).toBe(false);
    expect(changed.manifest.hash).not.toBe(artifacts.manifest.hash);
  });

  it('drops the distillation loss by at least 90% (AdamW, cosine schedule, 2 batches, 800 steps)', async () => {
    const session = await TrainingSession.create({
      artifacts: path.join(dir, 'artifacts'),
      maxGradNorm: 5,
      lrSchedule: { type: 'cosine', totalSteps: 800, warmupSteps: 10, minLr: 1e-4 },
    });
    const evalLoss = async (): Promise<number> => {
      let sum = 0;
      for (const f of batches) sum += scalar((await session.evalStep(f))['distill.loss']);
      return sum / batches.length;
    };
    const before = await evalLoss();
    for (let step = 0; step < 800; step++) {
      await session.lazyResetGrad();
      await session.trainStep(batches[step % 2]);
      await session.optimizerStep();
    }
    const after = await evalLoss();
    console.log(
      `distillation loss ${before.toFixed(5)} → ${after.toFixed(5)} (${((1 - after / before) * 100).toFixed(1)}% lower)`,
    );
    expect(after).toBeLessThan(0.1 * before);
    await session.release();
  });

  it('returns per-level losses that are unweighted and sum with the weights to the total', async () => {
    const session = await TrainingSession.create({ artifacts });
    const feeds = { ...batches[0], 'distill.weights': { data: Float32Array.of(0.2, 1.5), dims: [2] } };
    const out = await session.evalStep(feeds);
    const l2 = scalar(out['distill.level_loss.p2']);
    const l3 = scalar(out['distill.level_loss.p3']);
    expect(Math.abs(scalar(out['distill.loss']) - (0.2 * l2 + 1.5 * l3))).toBeLessThan(1e-6 * (1 + l2 + l3));
    const perSample = out['distill.per_sample'].data as Float32Array;
    let mean2 = 0;
    for (let n = 0; n < N; n++) mean2 += perSample[n * 2] / N;
    expect(Math.abs(mean2 - l2)).toBeLessThan(1e-6 * (1 + l2));
    await session.release();
  });

  it('training-graph gradients of the masked, weighted loss match float64 central differences of the eval graph', async () => {
    const session = await TrainingSession.create({ artifacts });
    const feeds = {
      ...batches[0],
      'distill.mask': { data: Float32Array.of(1, 0, 0, 1, 1, 1, 0, 0), dims: [N, 2] },
      'distill.weights': { data: Float32Array.of(0.3, 1.7), dims: [2] },
    };
    await session.trainStep(feeds);
    const grads = await session.getGradients();
    const params = await session.getParameters();
    // The loss in the float64 reference interpreter, on the artifacts' own eval graph.
    const evalModel = artifactModel(artifacts, 'eval');
    const base: Record<string, HostTensor | RefTensor> = { ...feeds, ...params };
    const rng = new Rng(5);
    let worst = 0;
    let checked = 0;
    for (const name of Object.keys(grads)) {
      const value = fromHost(params[name]);
      for (let k = 0; k < 3; k++) {
        const i = rng.int(value.data.length);
        const h = 1e-5 * Math.max(1, Math.abs(value.data[i]));
        const at = (delta: number): number => {
          const data = Float64Array.from(value.data);
          data[i] += delta;
          return referenceLoss(evalModel, 'distill.loss', { ...base, [name]: { ...value, data } });
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        const g = (grads[name].data as Float32Array)[i];
        worst = Math.max(worst, Math.abs(fd - g) / Math.max(Math.abs(fd), 1e-3));
        checked++;
      }
    }
    console.log(
      `trainStep gradient vs float64 central differences: worst relative error ${worst.toExponential(2)} over ${checked} elements`,
    );
    expect(worst).toBeLessThan(1e-4);
    await session.release();
  });

  it('lends its parameter storage to a callback without copying, and refuses steps meanwhile', async () => {
    const session = await TrainingSession.create({ artifacts });
    await session.fusedStep(batches[0]);
    const copies = await session.getParameters();
    const seen = await session.withParameterViews(async (views) => {
      await expect(session.fusedStep(batches[1])).rejects.toThrow(/another step is still running/);
      expect(Object.keys(views)).toEqual(session.parameterNames);
      for (const [name, t] of Object.entries(views)) {
        expect(t.dims).toEqual(copies[name].dims);
        expect(Array.from(t.data as Float32Array)).toEqual(Array.from(copies[name].data as Float32Array));
      }
      return Object.keys(views).length;
    });
    expect(seen).toBeGreaterThan(0);
    await session.fusedStep(batches[1]); // usable again once the callback settled
    await session.release();
  });

  it('restores a snapshot bit for bit, reusing its buffers, and refuses one of other parameters', async () => {
    for (const optimizerOnHost of [true, false]) {
      const session = await TrainingSession.create({ artifacts, optimizerOnHost });
      await session.fusedStep(batches[0]);
      const before = session.checkpointState();
      const snap = session.snapshot();
      await session.fusedStep(batches[1]);
      await session.restore(snap);
      expect(session.step).toBe(before.optimizer.step);
      expect(await session.getGradients()).toEqual({});
      const after = session.checkpointState();
      const bits = (t: HostTensor) => Array.from(t.data as Float32Array);
      for (const k of Object.keys(before.parameters))
        expect(bits(after.parameters[k])).toEqual(bits(before.parameters[k]));
      for (const k of Object.keys(before.optimizer.state))
        expect(bits(after.optimizer.state[k])).toEqual(bits(before.optimizer.state[k]));
      const again = session.snapshot(snap);
      expect(again.arrays.every((a, i) => a === snap.arrays[i])).toBe(true);
      await session.release();
    }
    const other = generateArtifacts(
      tinyPyramid({ seed: 2, width: 16, upsample: UPSAMPLE, name: 'student' }),
      options,
    );
    const wide = await TrainingSession.create({ artifacts: other });
    const session = await TrainingSession.create({ artifacts });
    await expect(session.restore(wide.snapshot())).rejects.toThrow(
      /snapshot was taken from a session with other/,
    );
    await Promise.all([wide.release(), session.release()]);
  });

  it('accumulates gradients across trainStep calls until lazyResetGrad', async () => {
    const session = await TrainingSession.create({ artifacts });
    await session.trainStep(batches[0]);
    const g0 = await session.getGradients();
    await session.lazyResetGrad();
    await session.trainStep(batches[1]);
    const g1 = await session.getGradients();
    await session.trainStep(batches[0]);
    const sum = await session.getGradients();
    let worst = 0;
    for (const k of Object.keys(sum)) {
      const s = sum[k].data as Float32Array;
      const a = g0[k].data as Float32Array;
      const c = g1[k].data as Float32Array;
      for (let i = 0; i < s.length; i++) worst = Math.max(worst, Math.abs(s[i] - (a[i] + c[i])));
    }
    expect(worst).toBeLessThan(1e-6);
    expect(Object.keys(g0)).toHaveLength(8);
    expect(maxAbsDiff(g0, g1)).toBeGreaterThan(0);
    await session.release();
  });

  it('fused step gives the same parameters as trainStep + optimizerStep (within 1e-6), clipping included', async () => {
    const separate = await TrainingSession.create({
      artifacts,
      maxGradNorm: 0.05,
      lrSchedule: { type: 'cosine', totalSteps: 10, warmupSteps: 2 },
    });
    const fused = await TrainingSession.create({
      artifacts,
      maxGradNorm: 0.05,
      lrSchedule: { type: 'cosine', totalSteps: 10, warmupSteps: 2 },
    });
    let clippedSteps = 0;
    for (let step = 0; step < 5; step++) {
      await separate.lazyResetGrad();
      const a = await separate.trainStep(batches[step % 2]);
      const sa = await separate.optimizerStep();
      const b = await fused.fusedStep(batches[step % 2]);
      expect(Math.abs(scalar(a['distill.loss']) - scalar(b.outputs['distill.loss']))).toBeLessThan(1e-5);
      expect(b.step).toBe(sa.step);
      expect(b.learningRate).toBe(sa.learningRate);
      expect(Math.abs(b.gradNorm - sa.gradNorm) / sa.gradNorm).toBeLessThan(1e-5);
      if (sa.gradNorm > 0.05) clippedSteps++;
    }
    const diff = maxAbsDiff(await separate.getParameters(), await fused.getParameters());
    console.log(
      `fused vs separate after 5 steps: max |Δparam| = ${diff.toExponential(2)}, clipped steps ${clippedSteps}`,
    );
    expect(clippedSteps).toBeGreaterThan(0);
    expect(diff).toBeLessThan(1e-6);
    await separate.release();
    await fused.release();
  });

  /** The tiny student's artifacts and two sessions on them (clipping, cosine lr): host updates and graph updates. */
  async function hostAndGraphSessions(optimizer: ArtifactOptions['optimizer'], fused: boolean) {
    const a = generateArtifacts(tinyPyramid({ seed: 2, width: 8, upsample: UPSAMPLE, name: 'student' }), {
      ...options,
      optimizer,
      fused,
    });
    const common = {
      artifacts: a,
      maxGradNorm: 0.05,
      lrSchedule: { type: 'cosine', totalSteps: 10 },
    } as const;
    const onHost = await TrainingSession.create(common);
    const inGraph = await TrainingSession.create({ ...common, optimizerOnHost: false });
    return { a, onHost, inGraph };
  }

  it('host-side updates are bit-identical to the fused graph (AdamW with clipping and decay exemptions, SGD variants)', async () => {
    const configs: ArtifactOptions['optimizer'][] = [
      { type: 'adamw', lr: 1e-2, weightDecay: 1e-2, noWeightDecay: ['body.conv1.bias', 'fpn.inner2.bias'] },
      { type: 'sgd', lr: 5e-2, momentum: 0.9, nesterov: true, weightDecay: 1e-3 },
      { type: 'sgd', lr: 5e-2, momentum: 0.8, dampening: 0.3 },
      { type: 'sgd', lr: 5e-2 },
    ];
    for (const optimizer of configs) {
      const { a, onHost, inGraph } = await hostAndGraphSessions(optimizer, true);
      expect(onHost.updateLocation).toBe('host');
      expect(inGraph.updateLocation).toBe('graph');
      let clipped = 0;
      for (let step = 0; step < 4; step++) {
        const h = await onHost.fusedStep(batches[step % 2]);
        const g = await inGraph.fusedStep(batches[step % 2]);
        expect(h.gradNorm).toBe(g.gradNorm);
        expect(scalar(h.outputs['distill.loss'])).toBe(scalar(g.outputs['distill.loss']));
        if (g.gradNorm > 0.05) clipped++;
      }
      expect(clipped).toBeGreaterThan(0);
      expectSameTrainedState(onHost, inGraph, readCheckpoint(a).parameters);
      await onHost.release();
      await inGraph.release();
    }
  });

  it('optimizerStep updates on the host bit-identically to the optimizer graph, also without fused graphs', async () => {
    const configs: ArtifactOptions['optimizer'][] = [
      { type: 'adamw', lr: 1e-2, weightDecay: 1e-2, noWeightDecay: ['body.conv1.bias', 'fpn.inner2.bias'] },
      { type: 'sgd', lr: 5e-2, momentum: 0.9, nesterov: true, weightDecay: 1e-3 },
    ];
    for (const optimizer of configs) {
      for (const fused of [false, true]) {
        const { a, onHost, inGraph } = await hostAndGraphSessions(optimizer, fused);
        expect(onHost.updateLocation).toBe(fused ? 'host' : 'graph'); // where fusedStep would update
        let clipped = 0;
        for (let step = 0; step < 3; step++) {
          for (const session of [onHost, inGraph]) {
            await session.lazyResetGrad();
            // Two batches accumulated into one update.
            await session.trainStep(batches[step % 2]);
            await session.trainStep(batches[(step + 1) % 2]);
          }
          const h = await onHost.optimizerStep();
          const g = await inGraph.optimizerStep();
          expect(h).toEqual(g);
          if (g.gradNorm > 0.05) clipped++;
          // The accumulated (clipped) gradients are still there after the update, as in the graph path.
          const hg = await onHost.getGradients();
          const gg = await inGraph.getGradients();
          for (const k of Object.keys(gg))
            expect(Array.from(hg[k].data as Float32Array)).toEqual(Array.from(gg[k].data as Float32Array));
        }
        expect(clipped).toBeGreaterThan(0);
        expectSameTrainedState(onHost, inGraph, readCheckpoint(a).parameters);
        await onHost.release();
        await inGraph.release();
      }
    }
  });

  it('updates in the graphs where host updates do not apply', async () => {
    const web = await TrainingSession.create({ artifacts, runtime: 'web' });
    expect(web.updateLocation).toBe('graph');
    await web.release();
  });

  it('resumes from a checkpoint in a fresh session with EXACTLY the parameters of uninterrupted training', async () => {
    const schedule = { type: 'step', stepSize: 2, gamma: 0.5 } as const;
    const run = async (session: TrainingSession, steps: number): Promise<void> => {
      for (let k = 0; k < steps; k++) {
        // batch by global step, so the resumed run sees what the uninterrupted one saw
        await session.lazyResetGrad();
        await session.trainStep(batches[session.step % 2]);
        await session.optimizerStep();
      }
    };
    const straight = await TrainingSession.create({ artifacts, lrSchedule: schedule, maxGradNorm: 1 });
    await run(straight, 6);
    const interrupted = await TrainingSession.create({ artifacts, lrSchedule: schedule, maxGradNorm: 1 });
    await run(interrupted, 3);
    const file = path.join(dir, 'resume.onnx');
    await interrupted.saveCheckpoint(file, { note: 'after 3' });
    await interrupted.release();
    const resumed = await TrainingSession.create({
      artifacts,
      checkpoint: file,
      lrSchedule: schedule,
      maxGradNorm: 1,
    });
    expect(resumed.step).toBe(3);
    await run(resumed, 3);
    const a = await straight.getParameters();
    const b = await resumed.getParameters();
    for (const k of Object.keys(a))
      expect(Array.from(b[k].data as Float32Array)).toEqual(Array.from(a[k].data as Float32Array));
    expect(maxAbsDiff(a, readCheckpoint(artifacts).parameters)).toBeGreaterThan(0);
    // A started session keeps the graphs, not the starting checkpoint (a model-sized copy) nor the options naming it.
    for (const s of [straight, resumed]) expect(Object.keys(s.artifacts)).not.toContain('checkpoint');
    await straight.release();
    await resumed.release();
  });

  it('exports a plain inference model with the trained parameters as initializers', async () => {
    const session = await TrainingSession.create({ artifacts });
    await session.fusedStep(batches[0]);
    const file = path.join(dir, 'student-trained.onnx');
    const model = await session.exportModelForInference(file);
    expect(model.graph.inputs.map((v) => v.name)).toEqual(['x']);
    expect(model.graph.outputs.map((v) => v.name)).toEqual(['p2', 'p3']);
    const params = await session.getParameters();
    for (const name of Object.keys(params))
      expect(model.graph.initializers.some((t) => t.name === name)).toBe(true);
    const inference = await createSession(file);
    const out = await inference.run({ x: batches[0].x });
    const forward = await createSession(artifacts.models.forward!);
    const ref = await forward.run({ x: batches[0].x, ...params });
    // Constant weights let onnxruntime pre-pack and fuse differently: equal up to float32 rounding.
    expect(maxAbsDiff({ p2: out.p2, p3: out.p3 }, { p2: ref.p2, p3: ref.p3 })).toBeLessThan(1e-5);
    const onlyP3 = await session.exportModelForInference(undefined, { outputs: ['p3'] });
    expect(onlyP3.graph.nodes.some((n) => n.name === 'fpn.inner2')).toBe(false);
    await inference.release();
    await forward.release();
    await session.release();
  });

  it('gives clear errors for missing inputs, parameter feeds, bad shapes and foreign checkpoints', async () => {
    const session = await TrainingSession.create({ artifacts });
    const { x: _x, ...noX } = batches[0];
    await expect(session.trainStep(noX)).rejects.toThrow(/trainStep: missing inputs 'x'/);
    await expect(session.trainStep({ ...batches[0], 'body.conv1.bias': filled([8], 0) })).rejects.toThrow(
      /'body.conv1.bias' is a trainable parameter/,
    );
    await expect(session.loadParameters({ 'body.conv1.bias': filled([7], 0) })).rejects.toThrow(
      /'body.conv1.bias' is \[7\], expected \[8\]/,
    );
    await expect(session.optimizerStep()).rejects.toThrow(/no gradients accumulated/);
    const other = generateArtifacts(tinyPyramid({ seed: 3, width: 6, upsample: UPSAMPLE }), options);
    const foreign = path.join(dir, 'foreign.onnx');
    const otherSession = await TrainingSession.create({ artifacts: other });
    await otherSession.saveCheckpoint(foreign);
    await expect(session.loadCheckpoint(foreign)).rejects.toThrow(
      /checkpoint '.*foreign.onnx' does not fit this training session: 'body.conv1.weight' is \[6, 3, 3, 3\] in the checkpoint but \[8, 3, 3, 3\]/,
    );
    await otherSession.release();
    await session.release();
  });

  it('unties shared initializers by default and keeps them tied when asked', () => {
    // Make the two 1×1 lateral biases identical, then tie them the way torch.onnx.export does.
    const student = tinyPyramid({ seed: 2, width: 8, upsample: UPSAMPLE });
    const b2 = student.graph.initializers.find((t) => t.name === 'fpn.inner2.bias')!;
    const b3 = student.graph.initializers.find((t) => t.name === 'fpn.inner3.bias')!;
    b2.data = new Float32Array(8);
    b3.data = new Float32Array(8);
    const tied = tieIdenticalInitializers(student);
    expect(tied.graph.initializers.some((t) => t.name === 'fpn.inner2.bias')).toBe(false);
    const untied = generateArtifacts(tied, options);
    expect(untied.manifest.parameters.map((p) => p.name)).toContain('fpn.inner2.bias');
    expect(untied.manifest.parameters.map((p) => p.name)).toContain('fpn.inner3.bias');
    expect(untied.manifest.untied).toEqual({ 'fpn.inner2.bias': 'fpn.inner3.bias' });
    const kept = generateArtifacts(tied, { ...options, untieSharedInitializers: false });
    expect(kept.manifest.parameters.map((p) => p.name)).not.toContain('fpn.inner2.bias');
    expect(kept.manifest.parameters).toHaveLength(7);
  });
});
