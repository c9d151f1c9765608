import { GRADIENT_RULES } from '../../src/autodiff/rules';
import { DataType, GraphBuilder, floatTensor } from '../../src/onnx';
import { findUnsupportedOps, inspectModel, opHistogram } from '../../src/analysis';
import { TINY_FPN_MACS, TINY_FPN_TRAINABLE, seeded, tinyFpn } from './tiny-fpn';

describe('inspectModel', () => {
  it('reports inputs, outputs, opset, ops, parameters and levels of the tiny FPN', () => {
    const r = inspectModel(tinyFpn(), { height: 64, width: 64 });
    expect(r.inputs).toEqual([{ name: 'images', dataType: 'float32', shape: ['batch', 3, 64, 64] }]);
    expect(r.outputs).toEqual([
      { name: 'p2', dataType: 'float32', shape: ['batch', 4, 16, 16] },
      { name: 'p3', dataType: 'float32', shape: ['batch', 4, 8, 8] },
      { name: 'logits', dataType: 'float32', shape: ['batch', 10] },
    ]);
    expect(r.opset).toBe(13);
    expect(r.ops.Conv).toBe(6);
    expect(r.ops.Shape).toBe(3);
    expect(Object.values(r.ops).reduce((a, b) => a + b, 0)).toBe(r.nodes);
    expect(r.trainableParameters).toBe(TINY_FPN_TRAINABLE);
    expect(r.trainableTensors).toBe(14);
    expect(r.parameterCounting).toBe('after-untying');
    expect(r.sharedInitializers).toEqual([]);
    expect(r.levels.map((l) => [l.name, l.output, l.stride, l.channels, l.macs])).toEqual([
      ['P2', 'p2', 4, 4, TINY_FPN_MACS.P2],
      ['P3', 'p3', 8, 4, TINY_FPN_MACS.P3],
    ]);
    expect(r.totalMacs).toBe(TINY_FPN_MACS.total);
    expect(r.levels[0].costShare).toBeCloseTo(TINY_FPN_MACS.P2 / TINY_FPN_MACS.total, 12);
  });

  it('lists exactly the ops on a trainable path that have no gradient rule', () => {
    const r = inspectModel(tinyFpn(), { height: 64, width: 64 });
    // Ops on a path from a parameter to an output (float data path; Shape/Gather/Cast chains excluded).
    const onPath = [
      'Conv',
      'Mul',
      'Add',
      'Relu',
      'Resize',
      'Identity',
      'GlobalAveragePool',
      'Flatten',
      'Gemm',
    ];
    const expected = onPath.filter((op) => !GRADIENT_RULES.has(op)).sort();
    expect(r.unsupportedOps.map((u) => u.opType).sort()).toEqual(expected);
    for (const u of r.unsupportedOps) expect(u.count).toBeGreaterThan(0);
    for (const op of ['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Cast', 'Slice']) {
      expect(r.unsupportedOps.map((u) => u.opType)).not.toContain(op);
    }
  });

  it('flags a custom op on the trainable path but not one fed only by constants or inputs', () => {
    const b = new GraphBuilder({ name: 'custom' });
    const x = b.input('x', DataType.FLOAT, [1, 2, 4, 4]);
    const w = b.initializer(floatTensor('conv.weight', [2, 2, 1, 1], seeded(4)));
    const y = b.op('Conv', [x, w]);
    const [odd] = b.node('FancyNorm', [y], {}, { domain: 'com.example', name: 'head.fancy' });
    const [side] = b.node('FancyNorm', [x], {}, { domain: 'com.example', name: 'side.fancy' });
    b.output(odd, DataType.FLOAT);
    b.output(side, DataType.FLOAT);
    const model = b.build();
    model.opsetImports.push({ domain: 'com.example', version: 1 });
    const unsupported = findUnsupportedOps(model, ['conv.weight']);
    const custom = unsupported.find((u) => u.opType === 'com.example.FancyNorm');
    expect(custom).toEqual({ opType: 'com.example.FancyNorm', count: 1, example: 'head.fancy' });
  });

  it('does not flag ops after a parameter whose result never reaches an output', () => {
    const b = new GraphBuilder({ name: 'dead' });
    const x = b.input('x', DataType.FLOAT, [1, 2, 4, 4]);
    const w = b.initializer(floatTensor('conv.weight', [2, 2, 1, 1], seeded(4)));
    b.node('FancyNorm', [b.op('Conv', [x, w])], {}, { domain: 'com.example' });
    b.output(b.op('Relu', [x]));
    const model = b.build();
    model.opsetImports.push({ domain: 'com.example', version: 1 });
    expect(findUnsupportedOps(model, ['conv.weight'])).toEqual([]);
  });
});

describe('opHistogram', () => {
  it('counts op types, most frequent first, qualifying non-default domains', () => {
    const b = new GraphBuilder({ name: 'h' });
    const x = b.input('x', DataType.FLOAT, [2]);
    const r = b.op('Relu', [b.op('Relu', [x])]);
    const [c] = b.node('Foo', [r], {}, { domain: 'com.example' });
    b.output(b.op('Abs', [c]));
    expect(Object.entries(opHistogram(b.build()))).toEqual([
      ['Relu', 2],
      ['Abs', 1],
      ['com.example.Foo', 1],
    ]);
  });
});
