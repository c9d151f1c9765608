import { GraphBuilder } from '../../src/onnx/graph-builder';
import { modelToBytes } from '../../src/onnx/model-io';
import { bypassOutputCopies } from '../../src/onnx/output-copies';
import { DataType } from '../../src/onnx/types';

/** x → Relu → Identity 'y' (also read by Neg 'z'); x → Mul → Reshape 'r' (flattened). */
function graphWithCopies() {
  const b = new GraphBuilder({ name: 'copies', opset: 17 });
  const x = b.input('x', DataType.FLOAT, [2, 3]);
  const relu = b.op('Relu', [x], {}, { name: 'relu' });
  b.output(b.op('Identity', [relu], {}, { outputs: ['y'] }), DataType.FLOAT, [2, 3]);
  b.output(b.op('Neg', [relu], {}, { outputs: ['z'] }), DataType.FLOAT, [2, 3]);
  const mul = b.op('Mul', [x, x], {}, { name: 'mul' });
  b.output(b.op('Reshape', [mul, b.constInt64([-1], [1])], {}, { outputs: ['r'] }), DataType.FLOAT, [6]);
  return b.build();
}

describe('bypassOutputCopies', () => {
  it('lets producers write outputs directly, leaving the given model unchanged', () => {
    const model = graphWithCopies();
    const before = modelToBytes(model);
    const { model: out, reshaped } = bypassOutputCopies(model, new Set(['r']));
    expect(Buffer.from(modelToBytes(model)).equals(Buffer.from(before))).toBe(true);
    const ops = out.graph.nodes.map((n) => `${n.opType}:${n.inputs.join(',')}->${n.outputs.join(',')}`);
    expect(ops).toEqual(['Relu:x->y', 'Neg:y->z', 'Mul:x,x->r']);
    expect(reshaped).toEqual({ r: [2, 3] });
    expect(out.graph.outputs.find((o) => o.name === 'r')!.shape).toEqual([2, 3]);
    expect(out.graph.initializers).toHaveLength(0); // the Reshape's shape constant is read by nothing now
  });

  it('keeps a Reshape it was not asked to bypass', () => {
    const { model: out, reshaped } = bypassOutputCopies(graphWithCopies());
    expect(out.graph.nodes.some((n) => n.opType === 'Reshape')).toBe(true);
    expect(reshaped).toEqual({});
  });
});
