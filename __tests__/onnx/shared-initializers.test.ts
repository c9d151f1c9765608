import {
  DataType,
  GraphBuilder,
  findGraphProblems,
  floatTensor,
  int64Tensor,
  type OnnxModel,
  type OnnxNode,
} from '../../src/onnx';
import {
  assertNoSharedParameters,
  derivedParameterName,
  findSharedInitializers,
  tieIdenticalInitializers,
  untieSharedInitializers,
  untieSharedInitializersDetailed,
} from '../../src/onnx/shared-initializers';
import { createSession, type HostTensor } from '../../src/runtime';

const CONV = { kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1] };

/**
 * A torch.onnx.export-shaped graph: three 1x1 Convs whose zero biases were deduplicated into
 * `fpn.inner_blocks.0.0.bias` (read directly by the first Conv and through Identity by the others), and a
 * batch-norm scale `onnx::Mul_10` shared by two Muls through an Identity.
 */
function tiedModel(): OnnxModel {
  const b = new GraphBuilder({ name: 'tied' });
  b.input('x', DataType.FLOAT, ['batch', 2, 3, 3]);
  const w = (name: string, seed: number): string =>
    b.initializer(
      floatTensor(
        name,
        [2, 2, 1, 1],
        [0, 1, 2, 3].map((i) => Math.sin(seed + i)),
      ),
      { exactName: true },
    );
  b.initializer(floatTensor('fpn.inner_blocks.0.0.bias', [2], [0, 0]), { exactName: true });
  b.initializer(floatTensor('onnx::Mul_10', [1, 2, 1, 1], [0.5, 2]), { exactName: true });
  b.node(
    'Identity',
    ['fpn.inner_blocks.0.0.bias'],
    {},
    { name: 'Identity_0', outputs: ['fpn.layer_blocks.0.0.bias'] },
  );
  b.node(
    'Identity',
    ['fpn.inner_blocks.0.0.bias'],
    {},
    { name: 'Identity_1', outputs: ['fpn.inner_blocks.1.0.bias'] },
  );
  b.node('Identity', ['onnx::Mul_10'], {}, { name: 'Identity_2', outputs: ['onnx::Mul_20'] });
  const c0 = b.op('Conv', ['x', w('fpn.inner_blocks.0.0.weight', 1), 'fpn.inner_blocks.0.0.bias'], CONV, {
    name: '/fpn/inner_blocks.0/inner_blocks.0.0/Conv',
  });
  const m0 = b.op('Mul', [c0, 'onnx::Mul_10'], {}, { name: '/fpn/bn0/Mul' });
  const c1 = b.op('Conv', [m0, w('fpn.layer_blocks.0.0.weight', 2), 'fpn.layer_blocks.0.0.bias'], CONV, {
    name: '/fpn/layer_blocks.0/layer_blocks.0.0/Conv',
  });
  const m1 = b.op('Mul', [c1, 'onnx::Mul_20'], {}, { name: '/fpn/bn1/Mul' });
  const c2 = b.op('Conv', [m1, w('fpn.inner_blocks.1.0.weight', 3), 'fpn.inner_blocks.1.0.bias'], CONV, {
    name: '/fpn/inner_blocks.1/inner_blocks.1.0/Conv',
  });
  b.output(c2, DataType.FLOAT, ['batch', 2, 3, 3]);
  return b.build();
}

function opCounts(model: OnnxModel): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of model.graph.nodes) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return h;
}

async function runModel(model: OnnxModel, x: Float32Array): Promise<Float32Array> {
  const s = await createSession(model);
  try {
    const out = await s.run({ x: { data: x, dims: [1, 2, 3, 3] } as HostTensor });
    return Float32Array.from(out[s.outputNames[0]].data as Float32Array);
  } finally {
    await s.release();
  }
}

describe('findSharedInitializers', () => {
  it('reports the deduplicated bias as a parameter group and the BN scale as a constant group', () => {
    const groups = findSharedInitializers(tiedModel());
    expect(groups.map((g) => [g.initializer, g.kind, g.aliases])).toEqual([
      ['fpn.inner_blocks.0.0.bias', 'parameter', ['fpn.layer_blocks.0.0.bias', 'fpn.inner_blocks.1.0.bias']],
      ['onnx::Mul_10', 'constant', ['onnx::Mul_20']],
    ]);
    expect(groups[0].uses.map((u) => [u.opType, u.input, u.via, u.parameter])).toEqual([
      ['Conv', 2, 'fpn.inner_blocks.0.0.bias', true],
      ['Conv', 2, 'fpn.layer_blocks.0.0.bias', true],
      ['Conv', 2, 'fpn.inner_blocks.1.0.bias', true],
    ]);
    expect(groups[0].dims).toEqual([2]);
  });

  it('ignores initializers read once and integer constants read directly by several non-parameter slots', () => {
    const b = new GraphBuilder();
    b.input('x', DataType.FLOAT, [2, 3]);
    b.initializer(int64Tensor('shape', [1], [6]), { exactName: true });
    const r1 = b.op('Reshape', ['x', 'shape']);
    const r2 = b.op('Reshape', ['x', 'shape']);
    b.output(b.op('Add', [r1, r2]));
    expect(findSharedInitializers(b.build())).toEqual([]);
    expect(findSharedInitializers(tiedModel()).some((g) => g.initializer.endsWith('weight'))).toBe(false);
  });

  it('follows Identity chains, and leaves initializers that are also graph inputs alone', () => {
    const b = new GraphBuilder();
    b.input('x', DataType.FLOAT, [2]);
    b.initializer(floatTensor('c', [2], [1, 2]), { exactName: true });
    b.node('Identity', ['c'], {}, { outputs: ['c1'] });
    b.node('Identity', ['c1'], {}, { outputs: ['c2'] });
    const y = b.op('Add', ['x', 'c1']);
    b.output(b.op('Mul', [y, 'c2']));
    const groups = findSharedInitializers(b.build());
    expect(groups).toHaveLength(1);
    expect(groups[0].aliases).toEqual(['c1', 'c2']);
    expect(groups[0].uses.map((u) => u.via)).toEqual(['c1', 'c2']);

    const m = b.build();
    m.graph.inputs.push({ name: 'c', dataType: DataType.FLOAT, shape: [2] });
    expect(findSharedInitializers(m)).toEqual([]);
  });
});

describe('untieSharedInitializers', () => {
  it('gives each consumer its own copy named as the Identity output, removes the Identities, keeps outputs', async () => {
    const tied = tiedModel();
    const { model, copies } = untieSharedInitializersDetailed(tied);
    expect(findGraphProblems(model)).toEqual([]);
    expect(opCounts(model)).toEqual({ Conv: 3, Mul: 2 });
    expect(copies).toEqual([
      { name: 'fpn.layer_blocks.0.0.bias', from: 'fpn.inner_blocks.0.0.bias', reason: 'identity' },
      { name: 'onnx::Mul_20', from: 'onnx::Mul_10', reason: 'identity' },
      { name: 'fpn.inner_blocks.1.0.bias', from: 'fpn.inner_blocks.0.0.bias', reason: 'identity' },
    ]);
    const names = model.graph.initializers.map((t) => t.name);
    expect(names).toEqual([
      'fpn.inner_blocks.0.0.bias',
      'fpn.layer_blocks.0.0.bias',
      'fpn.inner_blocks.1.0.bias',
      'onnx::Mul_10',
      'onnx::Mul_20',
      'fpn.inner_blocks.0.0.weight',
      'fpn.layer_blocks.0.0.weight',
      'fpn.inner_blocks.1.0.weight',
    ]);
    expect(findSharedInitializers(model)).toEqual([]);
    // Copies own their data: changing one leaves the others alone.
    const byName = new Map(model.graph.initializers.map((t) => [t.name, t]));
    (byName.get('fpn.layer_blocks.0.0.bias')!.data as Float32Array)[0] = 5;
    expect(byName.get('fpn.inner_blocks.0.0.bias')!.data[0]).toBe(0);
    (byName.get('fpn.layer_blocks.0.0.bias')!.data as Float32Array)[0] = 0;
    // The input model is untouched.
    expect(opCounts(tied)).toEqual({ Identity: 3, Conv: 3, Mul: 2 });
    // Same numbers from onnxruntime.
    const x = Float32Array.from({ length: 18 }, (_, i) => Math.cos(i));
    expect(await runModel(model, x)).toEqual(await runModel(tied, x));
  });

  it('splits an initializer read directly by several parameter slots, naming copies after the module', () => {
    const b = new GraphBuilder();
    b.input('x', DataType.FLOAT, ['batch', 2, 3, 3]);
    b.initializer(floatTensor('w', [2, 2, 1, 1], [1, 0, 0, 1]), { exactName: true });
    b.initializer(floatTensor('fpn.inner_blocks.0.0.bias', [2], [0.5, -1]), { exactName: true });
    const c0 = b.op('Conv', ['x', 'w', 'fpn.inner_blocks.0.0.bias'], CONV, { name: 'plain_conv' });
    const c1 = b.op('Conv', [c0, 'w', 'fpn.inner_blocks.0.0.bias'], CONV, {
      name: '/fpn/inner_blocks.1/inner_blocks.1.0/Conv',
    });
    b.output(c1);
    const before = b.build();
    const groups = findSharedInitializers(before);
    expect(groups.map((g) => g.initializer)).toEqual(['w', 'fpn.inner_blocks.0.0.bias']);
    const { model, copies } = untieSharedInitializersDetailed(before);
    expect(copies).toEqual([
      { name: 'fpn.inner_blocks.1.0.weight', from: 'w', reason: 'direct' },
      { name: 'fpn.inner_blocks.1.0.bias', from: 'fpn.inner_blocks.0.0.bias', reason: 'direct' },
    ]);
    const convs = model.graph.nodes.filter((n: OnnxNode) => n.opType === 'Conv');
    expect(convs.map((n) => n.inputs.slice(1))).toEqual([
      ['w', 'fpn.inner_blocks.0.0.bias'],
      ['fpn.inner_blocks.1.0.weight', 'fpn.inner_blocks.1.0.bias'],
    ]);
    expect(findGraphProblems(model)).toEqual([]);

    // Without exporter-style node names, copies are numbered.
    before.graph.nodes[1].name = 'second';
    const plain = untieSharedInitializersDetailed(before);
    expect(plain.copies.map((c) => c.name)).toEqual(['w_1', 'fpn.inner_blocks.0.0.bias_1']);
    // A filter keeps some groups tied.
    const onlyBias = untieSharedInitializersDetailed(before, { filter: (g) => g.initializer !== 'w' });
    expect(onlyBias.copies.map((c) => c.name)).toEqual(['fpn.inner_blocks.0.0.bias_1']);
  });

  it('keeps an Identity alias that is a graph output and unties the rest of its chain', () => {
    const b = new GraphBuilder();
    b.input('x', DataType.FLOAT, [2]);
    b.initializer(floatTensor('c', [2], [1, 2]), { exactName: true });
    b.node('Identity', ['c'], {}, { outputs: ['c1'] });
    b.node('Identity', ['c1'], {}, { outputs: ['c2'] });
    b.output(b.op('Add', ['x', 'c1']));
    b.output('c2');
    const m = untieSharedInitializers(b.build());
    expect(findGraphProblems(m)).toEqual([]);
    expect(opCounts(m)).toEqual({ Identity: 1, Add: 1 });
    expect(m.graph.nodes.find((n) => n.opType === 'Identity')!.inputs).toEqual(['c1']);
    expect(m.graph.initializers.map((t) => t.name)).toEqual(['c1']);
  });

  it('returns the same model object when nothing is shared', () => {
    const b = new GraphBuilder();
    b.input('x', DataType.FLOAT, [2]);
    b.output(b.op('Relu', ['x']));
    const m = b.build();
    expect(untieSharedInitializers(m)).toBe(m);
  });
});

describe('tieIdenticalInitializers', () => {
  it('reproduces the exporter trap, and untying recovers the original graph', async () => {
    const tied = tiedModel();
    const clean = untieSharedInitializers(tied);
    const retied = tieIdenticalInitializers(clean);
    expect(opCounts(retied)).toEqual(opCounts(tied));
    expect(findSharedInitializers(retied).map((g) => [g.initializer, g.aliases.sort()])).toEqual([
      ['fpn.inner_blocks.0.0.bias', ['fpn.inner_blocks.1.0.bias', 'fpn.layer_blocks.0.0.bias']],
      ['onnx::Mul_10', ['onnx::Mul_20']],
    ]);
    expect(retied.graph.nodes.slice(0, 3).map((n) => n.opType)).toEqual(['Identity', 'Identity', 'Identity']);
    const again = untieSharedInitializers(retied);
    const sortedNames = (m: OnnxModel): string[] => m.graph.initializers.map((t) => t.name).sort();
    expect(sortedNames(again)).toEqual(sortedNames(clean));
    expect(again.graph.nodes.map((n) => [n.name, n.inputs])).toEqual(
      clean.graph.nodes.map((n) => [n.name, n.inputs]),
    );
    const x = Float32Array.from({ length: 18 }, (_, i) => i / 7 - 1);
    expect(await runModel(retied, x)).toEqual(await runModel(clean, x));
  });

  it('leaves distinct tensors alone', () => {
    const b = new GraphBuilder();
    b.input('x', DataType.FLOAT, [2]);
    b.initializer(floatTensor('a', [2], [1, 2]), { exactName: true });
    b.initializer(floatTensor('b', [2], [1, 3]), { exactName: true });
    b.initializer(floatTensor('c', [1, 2], [1, 2]), { exactName: true });
    b.output(b.op('Add', [b.op('Add', ['x', 'a']), b.op('Add', ['b', 'c'])]));
    const m = b.build();
    expect(tieIdenticalInitializers(m)).toBe(m);
  });
});

describe('helpers', () => {
  it('derives PyTorch parameter names from exporter scopes', () => {
    const node = (name: string, opType = 'Conv'): OnnxNode => ({
      name,
      opType,
      domain: '',
      inputs: [],
      outputs: [],
      attributes: {},
    });
    expect(derivedParameterName(node('/fpn/layer_blocks.3/layer_blocks.3.0/Conv'), 2)).toBe(
      'fpn.layer_blocks.3.0.bias',
    );
    expect(derivedParameterName(node('/body/layer1/layer1.0/conv1/Conv'), 1)).toBe(
      'body.layer1.0.conv1.weight',
    );
    expect(derivedParameterName(node('/body/layer1/layer1.0/downsample/downsample.0/Conv'), 1)).toBe(
      'body.layer1.0.downsample.0.weight',
    );
    expect(derivedParameterName(node('/head/fc/Gemm', 'Gemm'), 2)).toBe('head.fc.bias');
    expect(derivedParameterName(node('Conv_12'), 1)).toBeUndefined();
    expect(derivedParameterName(node('/Conv'), 1)).toBeUndefined();
    expect(derivedParameterName(node('/a/Relu', 'Relu'), 0)).toBeUndefined();
  });

  it('assertNoSharedParameters names the tied parameter', () => {
    expect(() => assertNoSharedParameters(tiedModel())).toThrow(
      /1 shared parameter initializer\(s\): 'fpn.inner_blocks.0.0.bias' \(read as fpn.inner_blocks.0.0.bias, fpn.layer_blocks.0.0.bias, fpn.inner_blocks.1.0.bias\)/,
    );
    expect(() => assertNoSharedParameters(untieSharedInitializers(tiedModel()))).not.toThrow();
  });
});
