import { buildResnetFpn } from '../../src/models/resnet-fpn';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { DataType, type OnnxModel } from '../../src/onnx/types';
import { createSession, type HostTensor } from '../../src/runtime';
import { artifactModel, generateArtifacts } from '../../src/training/artifacts';
import { foldFrozenAffine, unfoldFrozenAffine } from '../../src/training/fold-frozen-affine';
import { classifyParameters } from '../../src/analysis/parameters';
import { TrainingSession } from '../../src/training/training-session';
import { createRng } from '../../src/util/rng';
import { relativeL2 } from '../helpers/tensor-compare';

const rng = createRng('fold-frozen-affine');
const values = (n: number, scale = 1): Float32Array =>
  Float32Array.from({ length: n }, () => rng.normal() * scale);

/**
 * x → Conv(w1) → Mul(Identity(s1 [4,1,1])) → Add(t1 [1,4,1,1]) → Relu → Conv(w2, b2) → Mul(s2 scalar) → y,
 * plus a Conv whose output has two readers (must stay as it is).
 */
function chain(): OnnxModel {
  const b = new GraphBuilder({ name: 'chain', opset: 17 });
  const x = b.input('x', DataType.FLOAT, ['N', 3, 9, 7]);
  const init = (name: string, dims: number[], data: Float32Array): string =>
    b.initializer({ name, dataType: DataType.FLOAT, dims, data }, { exactName: true });
  const w1 = init('w1', [4, 3, 3, 3], values(108, 0.3));
  const s1 = b.op('Identity', [init('s1', [4, 1, 1], Float32Array.of(0.5, -1.5, 2, 0.25))]);
  const t1 = init('t1', [1, 4, 1, 1], Float32Array.of(0.1, -0.2, 0.3, 0.05));
  const c1 = b.op('Conv', [x, w1], { pads: [1, 1, 1, 1] }, { name: 'conv1' });
  const a1 = b.op('Relu', [b.op('Add', [b.op('Mul', [c1, s1]), t1])]);
  const w2 = init('w2', [5, 4, 1, 1], values(20, 0.5));
  const b2 = init('b2', [5], values(5, 0.1));
  const y = b.op(
    'Mul',
    [init('s2', [], Float32Array.of(1.25)), b.op('Conv', [a1, w2, b2], {}, { name: 'conv2' })],
    {},
    {
      outputs: ['y'],
    },
  );
  b.output(y, DataType.FLOAT, ['N', 5, 9, 7]);
  const w3 = init('w3', [2, 4, 1, 1], values(8, 0.5));
  const c3 = b.op('Conv', [a1, w3], {}, { name: 'conv3' });
  const z = b.op(
    'Add',
    [b.op('Mul', [c3, init('s3', [2, 1, 1], Float32Array.of(2, 3))]), c3],
    {},
    { outputs: ['z'] },
  );
  b.output(z, DataType.FLOAT, ['N', 2, 9, 7]);
  return b.build();
}

const TRAINABLE = new Set(['w1', 'w2', 'b2', 'w3']);

describe('foldFrozenAffine', () => {
  const x: HostTensor = { data: values(2 * 3 * 9 * 7), dims: [2, 3, 9, 7] };

  it('folds Conv→Mul→Add (through Identity) and Conv(bias)→Mul(scalar), leaving a Conv with two readers', async () => {
    const model = chain();
    const { model: folded, folded: names } = foldFrozenAffine(model, TRAINABLE, { always: true });
    expect(names).toEqual(['conv1', 'conv2']);
    const ops = (m: OnnxModel): string[] =>
      m.graph.nodes.filter((n) => n.opType !== 'Identity').map((n) => n.opType);
    expect(ops(model)).toEqual(['Conv', 'Mul', 'Add', 'Relu', 'Conv', 'Mul', 'Conv', 'Mul', 'Add']);
    // Weight and bias scaling are tiny weight-sized Muls; the activation Mul/Add are gone.
    expect(ops(folded)).toEqual(['Mul', 'Conv', 'Relu', 'Mul', 'Mul', 'Conv', 'Conv', 'Mul', 'Add']);
    expect(folded.graph.initializers.map((t) => t.name)).toEqual(
      expect.arrayContaining(['w1', 'w2', 'b2', 'w3']),
    );
    const a = await createSession(model);
    const b = await createSession(folded);
    const ya = await a.run({ x });
    const yb = await b.run({ x });
    expect(relativeL2(yb.y.data as Float32Array, ya.y.data as Float32Array)).toBeLessThan(1e-6);
    expect(Array.from(yb.z.data as Float32Array)).toEqual(Array.from(ya.z.data as Float32Array));
    await a.release();
    await b.release();
    // The input model is untouched.
    expect(ops(model)).toEqual(['Conv', 'Mul', 'Add', 'Relu', 'Conv', 'Mul', 'Conv', 'Mul', 'Add']);
  });

  it('gives the same gradients through generateArtifacts as the unfolded graph', async () => {
    const model = chain(); // one draw of the weights for both
    const grads = async (fold: boolean): Promise<Record<string, HostTensor>> => {
      const artifacts = generateArtifacts(model, {
        trainable: [...TRAINABLE],
        loss: { type: 'mse' },
        optimizer: { type: 'sgd', lr: 0.1 },
        foldFrozenAffine: fold,
      });
      const s = await TrainingSession.create({ artifacts });
      const target = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i));
      await s.trainStep({
        x,
        'y.target': { data: target(2 * 5 * 63), dims: [2, 5, 9, 7] },
        'z.target': { data: target(2 * 2 * 63), dims: [2, 2, 9, 7] },
      });
      const g = await s.getGradients();
      await s.release();
      return g;
    };
    const folded = await grads(true);
    const plain = await grads(false);
    expect(Object.keys(folded).sort()).toEqual([...TRAINABLE].sort());
    for (const k of Object.keys(plain)) {
      const err = relativeL2(folded[k].data as Float32Array, plain[k].data as Float32Array);
      expect(err).toBeLessThan(1e-5);
    }
  });

  it('leaves a Mul by a trainable tensor or by a tensor that is not per-channel alone', () => {
    const b = new GraphBuilder({ name: 'no', opset: 17 });
    const x = b.input('x', DataType.FLOAT, ['N', 2, 5, 5]);
    const w = b.initializer(
      { name: 'w', dataType: DataType.FLOAT, dims: [3, 2, 1, 1], data: values(6) },
      { exactName: true },
    );
    const s = b.initializer(
      { name: 's', dataType: DataType.FLOAT, dims: [3, 1, 1], data: values(3) },
      { exactName: true },
    );
    const wide = b.initializer(
      { name: 'wide', dataType: DataType.FLOAT, dims: [1, 3, 5, 5], data: values(75) },
      { exactName: true },
    );
    const c1 = b.op('Conv', [x, w], {}, { name: 'c1' });
    b.output(b.op('Mul', [c1, s], {}, { outputs: ['y1'] }), DataType.FLOAT);
    const c2 = b.op('Conv', [x, w], {}, { name: 'c2' });
    b.output(b.op('Mul', [c2, wide], {}, { outputs: ['y2'] }), DataType.FLOAT);
    const model = b.build();
    expect(foldFrozenAffine(model, new Set(['w', 's']), { always: true }).folded).toEqual([]);
    expect(foldFrozenAffine(model, new Set(['w']), { always: true }).folded).toEqual(['c1']);
  });

  it('folds the frozen BatchNorm of every backbone conv of a ResNet-50-FPN export', () => {
    const model = buildResnetFpn({
      arch: 'resnet50-fpn',
      widthMult: 0.125,
      fpnChannels: 16,
      height: 64,
      width: 64,
    });
    const convs = model.graph.nodes.filter((n) => n.opType === 'Conv');
    const trainable = new Set(convs.flatMap((n) => n.inputs.slice(1).filter(Boolean)));
    const { folded } = foldFrozenAffine(model, trainable, { always: true });
    const backbone = convs.filter((n) => n.name.startsWith('/body/'));
    // conv1, 16 bottlenecks × 3 convs and 4 downsample convs; the FPN convs have biases and no BatchNorm.
    expect(backbone).toHaveLength(53);
    expect(folded.sort()).toEqual(backbone.map((n) => n.name).sort());
  });

  it('by default folds where maps outweigh weights (early layers), not in the deep layers', () => {
    const model = buildResnetFpn({ arch: 'resnet50-fpn', height: 224, width: 224 });
    const convs = model.graph.nodes.filter((n) => n.opType === 'Conv');
    const trainable = new Set(convs.flatMap((n) => n.inputs.slice(1).filter(Boolean)));
    const { folded } = foldFrozenAffine(model, trainable);
    const stage = (name: string): string => /\/body\/(layer\d|conv1)/.exec(name)?.[1] ?? '?';
    const count = (s: string): number => folded.filter((n) => stage(n) === s).length;
    // 3·C·H·W ≥ 2·|W|: the stem and all of layer1 (56², ≤ 64·256 weights) fold, layer4 (7², wide) none.
    expect(count('conv1')).toBe(1);
    expect(count('layer1')).toBe(10);
    expect(count('layer4')).toBe(0);
  });
});

describe('unfoldFrozenAffine', () => {
  const x: HostTensor = { data: values(2 * 3 * 9 * 7), dims: [2, 3, 9, 7] };
  const ops = (m: OnnxModel): string[] =>
    m.graph.nodes.filter((n) => n.opType !== 'Identity').map((n) => n.opType);

  /** x → Conv(w, b) → Mul(s [1,3,1,1]) → Add(t [3,1,1]) → y: the fold's bias-and-shift case. */
  function biasAndShift(): OnnxModel {
    const b = new GraphBuilder({ name: 'bias-shift', opset: 17 });
    const input = b.input('x', DataType.FLOAT, ['N', 3, 9, 7]);
    const init = (name: string, dims: number[], data: Float32Array): string =>
      b.initializer({ name, dataType: DataType.FLOAT, dims, data }, { exactName: true });
    const c = b.op(
      'Conv',
      [input, init('w', [3, 3, 3, 3], values(81, 0.3)), init('b', [3], values(3, 0.2))],
      { pads: [1, 1, 1, 1] },
      { name: 'c' },
    );
    const m = b.op('Mul', [c, init('s', [1, 3, 1, 1], Float32Array.of(0.5, -2, 1.5))]);
    b.output(
      b.op('Add', [m, init('t', [3, 1, 1], Float32Array.of(0.3, 0.1, -0.4))], {}, { outputs: ['y'] }),
      DataType.FLOAT,
      ['N', 3, 9, 7],
    );
    return b.build();
  }

  it.each([
    ['no bias + shift, bias without shift', chain, TRAINABLE, ['conv1', 'conv2']],
    ['bias + shift', biasAndShift, new Set(['w', 'b']), ['c']],
  ] as const)(
    'restores the structure and outputs folding changed (%s)',
    async (_what, make, trainable, names) => {
      const model = make();
      const folded = foldFrozenAffine(model, trainable, { always: true }).model;
      const { model: back, folded: unfolded } = unfoldFrozenAffine(folded);
      expect(unfolded).toEqual(names);
      expect(ops(back)).toEqual(ops(model));
      // The weights are read by Conv again: the parameter classification is the original model's.
      const trainableNames = (m: OnnxModel): string[] =>
        classifyParameters(m)
          .trainable.map((e) => e.name)
          .sort();
      expect(trainableNames(back)).toEqual(trainableNames(model));
      expect(back.graph.initializers.some((t) => t.name.endsWith('frozen_scale_flat'))).toBe(false);
      const a = await createSession(model);
      const c = await createSession(back);
      const ya = await a.run({ x });
      const yc = await c.run({ x });
      for (const k of Object.keys(ya))
        expect(relativeL2(yc[k].data as Float32Array, ya[k].data as Float32Array)).toBeLessThan(1e-6);
      await a.release();
      await c.release();
      // Nothing folded: the same model object comes back.
      expect(unfoldFrozenAffine(model).model).toBe(model);
    },
  );

  it("makes a trained session's exported ResNet-FPN read its weights directly again", async () => {
    const model = buildResnetFpn({
      arch: 'resnet18-fpn',
      widthMult: 1 / 16,
      fpnChannels: 8,
      height: 32,
      width: 32,
    });
    const artifacts = generateArtifacts(model, {
      loss: { type: 'mse' },
      optimizer: { type: 'sgd', lr: 0.1 },
    });
    // The training graph did fold (so the export had something to undo).
    const forward = artifactModel(artifacts, 'forward');
    expect(forward.graph.nodes.filter((n) => n.name.endsWith('/fold_scale')).length).toBeGreaterThan(3);
    const s = await TrainingSession.create({ artifacts });
    const exported = await s.exportModelForInference();
    await s.release();
    const names = (m: OnnxModel): string[] =>
      classifyParameters(m)
        .trainable.map((e) => e.name)
        .sort();
    expect(names(exported)).toEqual(names(model));
    expect(ops(exported)).toEqual(ops(classifyParameters(model).model));
  });
});
