import { RlpkdError } from '../../src/errors';
import { DataType, GraphBuilder, floatTensor } from '../../src/onnx';
import { tieIdenticalInitializers } from '../../src/onnx/shared-initializers';
import { classifyParameters, matchesNamePattern } from '../../src/analysis';
import { TINY_FPN_TRAINABLE, seeded, tinyFpn } from './tiny-fpn';

describe('classifyParameters', () => {
  it('takes conv/Gemm weights and biases as trainable and batch-norm constants as constants', () => {
    const c = classifyParameters(tinyFpn());
    expect(c.trainableElements).toBe(TINY_FPN_TRAINABLE); // 1,890 by hand
    expect(c.trainable.map((p) => p.name)).toContain('fpn.layer_blocks.0.0.weight');
    expect(c.trainable.find((p) => p.name === 'head.fc.bias')!.role).toBe('Gemm bias');
    expect(c.trainable.find((p) => p.name === 'body.conv1.weight')!.role).toBe('Conv weight');
    const constants = c.constants.map((p) => p.name);
    expect(constants).toEqual(expect.arrayContaining(['onnx::Mul_1', 'onnx::Add_2']));
    expect(c.constants.every((p) => p.role === 'constant')).toBe(true);
    expect(c.constantElements).toBe(
      8 + 8 + c.constants.filter((p) => p.dataType === DataType.INT64).reduce((a, p) => a + p.elements, 0),
    );
    expect(c.counting).toBe('after-untying');
    expect(c.storedTrainableElements).toBe(c.trainableElements);
  });

  it('counts tied (deduplicated) biases once as stored and once per consumer after untying', () => {
    // Zero biases of 4 elements: four FPN convs share one initializer through Identity nodes.
    const tied = tieIdenticalInitializers(tinyFpn({ zeroBiases: true }), {
      filter: (t) => t.name.endsWith('.bias') && t.dims[0] === 4,
    });
    expect(
      tied.graph.nodes.filter((n) => n.opType === 'Identity' && n.outputs[0].endsWith('.bias')),
    ).toHaveLength(3);
    const c = classifyParameters(tied);
    expect(c.counting).toBe('after-untying');
    expect(c.trainableElements).toBe(TINY_FPN_TRAINABLE);
    expect(c.storedTrainableElements).toBe(TINY_FPN_TRAINABLE - 3 * 4);
    expect(c.untiedCopies).toHaveLength(3);
    expect(c.sharedInitializers.filter((g) => g.kind === 'parameter')).toHaveLength(1);
    expect(c.trainable.map((p) => p.name)).toEqual(
      expect.arrayContaining([
        'fpn.inner_blocks.0.0.bias',
        'fpn.layer_blocks.0.0.bias',
        'fpn.layer_blocks.1.0.bias',
      ]),
    );
    const asStored = classifyParameters(tied, { untie: false });
    expect(asStored.counting).toBe('as-stored');
    expect(asStored.trainableElements).toBe(TINY_FPN_TRAINABLE - 12);
  });

  it('finds parameters read through Identity and a MatMul bias added after the MatMul', () => {
    const b = new GraphBuilder({ name: 'mlp' });
    const x = b.input('x', DataType.FLOAT, ['batch', 5]);
    const w = b.initializer(floatTensor('fc.weight', [5, 3], seeded(15)));
    const bias = b.initializer(floatTensor('fc.bias', [3], [0.1, 0.2, 0.3]));
    const scale = b.initializer(floatTensor('scale', [3], [1, 2, 3]));
    const alias = b.op('Identity', [w]);
    const y = b.op('Add', [b.op('MatMul', [x, alias]), bias]);
    b.output(b.op('Mul', [y, scale]));
    const c = classifyParameters(b.build());
    expect(c.trainable.map((p) => [p.name, p.role])).toEqual([
      ['fc.weight', 'MatMul B'],
      ['fc.bias', 'MatMul bias (Add)'],
    ]);
    expect(c.constants.map((p) => p.name)).toEqual(['scale']);
  });

  it('lets name patterns add and freeze parameters (frozen wins), with globs and /regex/', () => {
    const model = tinyFpn();
    const c = classifyParameters(model, {
      trainable: ['onnx::Mul_*'],
      frozen: ['body.*', '/^head\\.fc\\.(weight|bias)$/'],
    });
    const names = c.trainable.map((p) => p.name);
    expect(names).toContain('onnx::Mul_1');
    expect(c.trainable.find((p) => p.name === 'onnx::Mul_1')!.role).toBe('pattern');
    expect(names.some((n) => n.startsWith('body.') || n.startsWith('head.'))).toBe(false);
    // Everything but body (216 + 8 + 1152 + 16) and head (160 + 10), plus the 8-element Mul constant.
    expect(c.trainableElements).toBe(TINY_FPN_TRAINABLE - 1392 - 170 + 8);
    expect(c.constants.find((p) => p.name === 'body.conv1.weight')!.role).toBe('frozen');
  });

  it('rejects patterns that match nothing and invalid regular expressions, naming them', () => {
    expect(() => classifyParameters(tinyFpn(), { frozen: ['backbone.*'] })).toThrow(
      "parameter pattern 'backbone.*' matches no initializer of graph 'tiny-fpn'",
    );
    expect(() => classifyParameters(tinyFpn(), { trainable: ['/(/'] })).toThrow(RlpkdError);
    expect(() => classifyParameters(tinyFpn(), { trainable: ['/(/'] })).toThrow(
      /'\/\(\/' is not a valid regular expression/,
    );
  });
});

describe('matchesNamePattern', () => {
  it('matches globs against the whole name, dots included, and regexes anywhere', () => {
    expect(matchesNamePattern('body.layer1.0.conv1.weight', 'body.layer1.*')).toBe(true);
    expect(matchesNamePattern('body.layer10.0.conv1.weight', 'body.layer1.*')).toBe(false);
    expect(matchesNamePattern('fpn.inner_blocks.0.0.bias', '*.bias')).toBe(true);
    expect(matchesNamePattern('fpn.inner_blocks.0.0.bias', 'fpn.inner_blocks.?.0.bias')).toBe(true);
    expect(matchesNamePattern('fpnXinner', 'fpn.inner')).toBe(false); // '.' is literal in globs
    expect(matchesNamePattern('a.layer_blocks.3.b', '/layer_blocks\\.[0-3]/')).toBe(true);
    expect(matchesNamePattern('BODY.x', '/^body/i')).toBe(true);
  });
});
