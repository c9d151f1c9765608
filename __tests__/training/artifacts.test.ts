import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { floatTensor } from '../../src/onnx/tensor-data';
import { DataType, type OnnxModel } from '../../src/onnx/types';
import type { HostTensor } from '../../src/runtime';
import { modelToBytes } from '../../src/onnx/model-io';
import {
  ArtifactStore,
  exportModelForInference,
  generateArtifacts,
  loadArtifacts,
  readCheckpoint,
} from '../../src/training/artifacts';
import { TrainingSession } from '../../src/training/training-session';
import { Rng } from '../../src/util/rng';
import { imageBatch, tinyPyramid } from './tiny-pyramid';

/** Conv → Relu → spatial mean: class logits [N, 5] from x [N, 3, 16, 16]. */
function tinyClassifier(): OnnxModel {
  const rng = new Rng(9);
  const b = new GraphBuilder({ name: 'classifier' });
  const x = b.input('x', DataType.FLOAT, ['batch', 3, 16, 16]);
  const w = b.initializer(
    floatTensor(
      'head.weight',
      [5, 3, 3, 3],
      Array.from({ length: 135 }, () => rng.uniform(-0.5, 0.5)),
    ),
    { exactName: true },
  );
  const bias = b.initializer(floatTensor('head.bias', [5], [0, 0.1, -0.1, 0.2, 0]), { exactName: true });
  const y = b.op('Relu', [b.op('Conv', [x, w, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]);
  b.output(b.op('ReduceMean', [y], { axes: [2, 3], keepdims: 0 }, { outputs: ['logits'] }), DataType.FLOAT, [
    'batch',
    5,
  ]);
  return b.build();
}

const scalar = (t: HostTensor): number => (t.data as Float32Array)[0];

describe('generateArtifacts options', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-art-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('trains only an explicit trainable subset; the rest stay constants of the graphs', async () => {
    const model = tinyPyramid({ seed: 2, width: 4 });
    const artifacts = generateArtifacts(model, {
      trainable: ['fpn.inner2.weight', 'fpn.inner3.weight'],
      loss: { type: 'mse', outputs: ['p2', 'p3'] },
      optimizer: { type: 'sgd', lr: 0.1 },
    });
    // An explicit list keeps the caller's order.
    expect(artifacts.manifest.parameters.map((p) => p.name)).toEqual([
      'fpn.inner2.weight',
      'fpn.inner3.weight',
    ]);
    expect(artifacts.manifest.inputs.map((v) => v.name)).toEqual(['x', 'p2.target', 'p3.target']);
    const training = artifacts.models.training!;
    expect(training.graph.initializers.some((t) => t.name === 'body.conv1.weight')).toBe(true);
    expect(training.graph.outputs.map((o) => o.name)).toEqual([
      artifacts.manifest.loss,
      'fpn.inner2.weight_grad',
      'fpn.inner3.weight_grad',
    ]);
    const session = await TrainingSession.create({ artifacts });
    const x = imageBatch(1, 2);
    const feeds = {
      x,
      'p2.target': { data: new Float32Array(2 * 8 * 16 * 16), dims: [2, 8, 16, 16] },
      'p3.target': { data: new Float32Array(2 * 8 * 8 * 8), dims: [2, 8, 8, 8] },
    };
    const before = scalar((await session.trainStep(feeds))[artifacts.manifest.loss]);
    await session.optimizerStep();
    const after = scalar((await session.evalStep(feeds))[artifacts.manifest.loss]);
    expect(after).toBeLessThan(before);
    const exported = await session.exportModelForInference();
    const conv1 = exported.graph.initializers.find((t) => t.name === 'body.conv1.weight')!;
    expect(Array.from(conv1.data as Float32Array)).toEqual(
      Array.from(model.graph.initializers.find((t) => t.name === 'body.conv1.weight')!.data as Float32Array),
    );
    await session.release();
  });

  it('uses the parameter classification of src/analysis by default, with freeze patterns', () => {
    const model = tinyPyramid({ seed: 2, width: 4 });
    const all = generateArtifacts(model, { loss: { type: 'l1' }, optimizer: { type: 'adamw' } });
    expect(all.manifest.parameters).toHaveLength(8);
    const fpnOnly = generateArtifacts(model, {
      loss: { type: 'smoothL1', beta: 0.5 },
      optimizer: { type: 'adamw' },
      parameters: { frozen: ['body.*'] },
    });
    expect(fpnOnly.manifest.parameters.map((p) => p.name)).toEqual([
      'fpn.inner3.weight',
      'fpn.inner3.bias',
      'fpn.inner2.weight',
      'fpn.inner2.bias',
    ]);
    expect(fpnOnly.manifest.hash).not.toBe(all.manifest.hash);
  });

  it('cross-entropy artifacts train a classifier; keepOutputs returns forward tensors with the loss', async () => {
    const artifacts = generateArtifacts(tinyClassifier(), {
      loss: { type: 'crossEntropy' },
      optimizer: { type: 'adamw', lr: 0.05, weightDecay: 0 },
      keepOutputs: ['logits'],
    });
    expect(artifacts.manifest.stepOutputs).toEqual([artifacts.manifest.loss, 'logits']);
    const session = await TrainingSession.create({ artifacts });
    const feeds = { x: imageBatch(4, 4), labels: { data: BigInt64Array.of(0n, 3n, 1n, 4n), dims: [4] } };
    const first = await session.evalStep(feeds);
    expect(first.logits.dims).toEqual([4, 5]);
    for (let k = 0; k < 30; k++) await session.fusedStep(feeds);
    const last = await session.evalStep(feeds);
    console.log(
      `cross-entropy ${scalar(first[artifacts.manifest.loss]).toFixed(4)} → ${scalar(last[artifacts.manifest.loss]).toFixed(4)}`,
    );
    expect(scalar(last[artifacts.manifest.loss])).toBeLessThan(scalar(first[artifacts.manifest.loss]));
    await session.release();
  });

  it('takes a loss the model already computes (type output)', () => {
    const b = GraphBuilder.fromModel(tinyClassifier());
    b.output(b.op('ReduceMean', ['logits'], { keepdims: 0 }, { outputs: ['my_loss'] }), DataType.FLOAT, []);
    const artifacts = generateArtifacts(b.build(), {
      loss: { type: 'output', output: 'my_loss', extraOutputs: ['logits'] },
      optimizer: { type: 'sgd' },
    });
    expect(artifacts.manifest.loss).toBe('my_loss');
    expect(artifacts.manifest.stepOutputs).toEqual(['my_loss', 'logits']);
    expect(Object.values(artifacts.manifest.gradients)).toEqual(['head.weight_grad', 'head.bias_grad']);
  });

  it('gives parameters the loss never reads no gradient and leaves them unchanged', async () => {
    const model = tinyPyramid({ seed: 2, width: 4 });
    const artifacts = generateArtifacts(model, {
      loss: { type: 'distillation', levels: [{ student: 'p3' }] },
      optimizer: { type: 'adamw', lr: 0.01 },
    });
    expect(artifacts.manifest.parameters).toHaveLength(8);
    expect(Object.keys(artifacts.manifest.gradients)).not.toContain('fpn.inner2.weight');
    expect(Object.keys(artifacts.manifest.gradients)).toHaveLength(6);
    const session = await TrainingSession.create({ artifacts });
    const x = imageBatch(3, 2);
    const feeds = {
      x,
      'teacher.p3': { data: new Float32Array(2 * 8 * 8 * 8).fill(0.1), dims: [2, 8, 8, 8] },
      'distill.mask': { data: Float32Array.of(1, 1), dims: [2, 1] },
      'distill.weights': { data: Float32Array.of(1), dims: [1] },
    };
    await session.fusedStep(feeds);
    await session.trainStep(feeds);
    await session.optimizerStep();
    const params = await session.getParameters();
    const original = (name: string): number[] =>
      Array.from(model.graph.initializers.find((t) => t.name === name)!.data as Float32Array);
    expect(Array.from(params['fpn.inner2.weight'].data as Float32Array)).toEqual(
      original('fpn.inner2.weight'),
    );
    expect(Array.from(params['fpn.inner3.weight'].data as Float32Array)).not.toEqual(
      original('fpn.inner3.weight'),
    );
    // The exported model still computes p2, with the untouched lateral weights.
    const exported = await session.exportModelForInference();
    expect(exported.graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3']);
    await session.release();
  });

  it('exportModelForInference also embeds parameters into a plain model', () => {
    const model = tinyClassifier();
    const exported = exportModelForInference(model, {
      'head.bias': { data: Float32Array.of(1, 2, 3, 4, 5), dims: [5] },
    });
    const bias = exported.graph.initializers.find((t) => t.name === 'head.bias')!;
    expect(Array.from(bias.data as Float32Array)).toEqual([1, 2, 3, 4, 5]);
    expect(() =>
      exportModelForInference(model, { 'head.bias': { data: Float32Array.of(1, 2), dims: [2] } }),
    ).toThrow(/'head.bias': value is \[2\] but graph 'classifier' declares \[5\]/);
  });

  it('reports unknown trainable names and unreadable artifact folders clearly', () => {
    expect(() =>
      generateArtifacts(tinyClassifier(), {
        trainable: ['head.weight', 'nope'],
        loss: { type: 'crossEntropy' },
        optimizer: { type: 'sgd' },
      }),
    ).toThrow(/trainable parameters not found among the initializers of graph 'classifier': nope/);
    expect(() => loadArtifacts(path.join(dir, 'missing'))).toThrow(/holds no training artifacts/);
  });

  it('builds without changing the model it is given, and reads the checkpoint of a folder only when asked', () => {
    const model = tinyPyramid({ seed: 4, width: 8, upsample: 'resize', name: 'student' });
    const before = modelToBytes(model);
    const out = path.join(dir, 'pure');
    const options = {
      loss: { type: 'mse' as const, outputs: ['p2', 'p3'] },
      optimizer: { type: 'adamw' as const, lr: 1e-3 },
      outDir: out,
    };
    const built = generateArtifacts(model, options);
    expect(Buffer.from(modelToBytes(model)).equals(Buffer.from(before))).toBe(true);
    // The bypassed copies are gone from the step graphs the builders return, not from the training graph.
    const identities = (m: OnnxModel) => m.graph.nodes.filter((n) => n.opType === 'Identity').length;
    expect(identities(built.models.training!)).toBeGreaterThan(identities(built.models.gradientStep!));
    expect(Object.keys(built.manifest.fusedLayout!.gradientShapes ?? {}).length).toBeGreaterThan(0);

    const store = new ArtifactStore(out);
    const opened = store.open();
    expect(opened.checkpoint).toBeUndefined(); // not read until asked for
    expect(opened.manifest).toEqual(built.manifest);
    const fromDisk = readCheckpoint(opened);
    const inMemory = readCheckpoint(built);
    expect(fromDisk.optimizer.step).toBe(0);
    for (const [name, t] of Object.entries(inMemory.parameters))
      expect(Array.from(fromDisk.parameters[name].data as Float32Array)).toEqual(
        Array.from(t.data as Float32Array),
      );
    const cached = generateArtifacts(model, options);
    expect(cached.cached).toBe(true);
    expect(cached.checkpoint).toBeUndefined();
    fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify({ ...built.manifest, format: 1 }));
    expect(() => store.open()).toThrow(/holds artifacts of format 1; this version needs format \d+/);
  });

  it('rebuilds when a cached folder is incomplete', () => {
    const out = path.join(dir, 'cls');
    const options = {
      loss: { type: 'crossEntropy' as const },
      optimizer: { type: 'sgd' as const },
      outDir: out,
    };
    generateArtifacts(tinyClassifier(), options);
    fs.rmSync(path.join(out, 'eval_model.onnx'));
    const again = generateArtifacts(tinyClassifier(), options);
    expect(again.cached).toBe(false);
    expect(fs.existsSync(path.join(out, 'eval_model.onnx'))).toBe(true);
    expect(generateArtifacts(tinyClassifier(), options).cached).toBe(true);
  });
});
