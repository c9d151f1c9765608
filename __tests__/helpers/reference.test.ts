/**
 * The float64 reference interpreter agrees with onnxruntime on the forward pass of the ops the gradient
 * checks use (every gradient check also compares the loss; this covers ops no loss exercises alone).
 */
import type { AttributeInput } from '../../src/onnx';
import { DataType, GraphBuilder, floatTensor, int64Tensor, type OnnxTensor } from '../../src/onnx';
import { createRng } from '../../src/util';
import { runOrt } from './grad-check';
import { erf } from './reference/elementwise';
import { runReference } from './reference';

interface ForwardCase {
  name: string;
  opType: string;
  inputs: OnnxTensor[];
  attributes?: Record<string, AttributeInput>;
  outputs?: number;
  opset?: number;
}

const rng = createRng('reference');
const f = (name: string, dims: number[], range: [number, number] = [-2, 2]): OnnxTensor =>
  floatTensor(
    name,
    dims,
    Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(range[0], range[1])),
  );
const i64 = (name: string, values: number[], dims = [values.length]): OnnxTensor =>
  int64Tensor(name, dims, values);

const cases: ForwardCase[] = [
  {
    name: 'Pad reflect',
    opType: 'Pad',
    inputs: [f('x', [2, 4]), i64('pads', [0, 2, 1, 1])],
    attributes: { mode: 'reflect' },
  },
  {
    name: 'Pad edge',
    opType: 'Pad',
    inputs: [f('x', [3, 3]), i64('pads', [1, 0, 0, 2])],
    attributes: { mode: 'edge' },
  },
  {
    name: 'Pad constant with value',
    opType: 'Pad',
    inputs: [f('x', [2, 2]), i64('pads', [1, 1, 1, 1]), floatTensor('v', [], [0.5])],
  },
  { name: 'Tile', opType: 'Tile', inputs: [f('x', [2, 3]), i64('r', [2, 3])] },
  {
    name: 'ArgMax keepdims 0',
    opType: 'ArgMax',
    inputs: [f('x', [3, 4])],
    attributes: { axis: 1, keepdims: 0 },
  },
  { name: 'ArgMin', opType: 'ArgMin', inputs: [f('x', [3, 4])] },
  { name: 'ReduceProd', opType: 'ReduceProd', inputs: [f('x', [2, 3])], attributes: { axes: [1] } },
  {
    name: 'Mod fmod',
    opType: 'Mod',
    inputs: [f('a', [5]), floatTensor('b', [1], [0.7])],
    attributes: { fmod: 1 },
  },
  {
    name: 'Range float',
    opType: 'Range',
    inputs: [floatTensor('s', [], [1]), floatTensor('l', [], [3.5]), floatTensor('d', [], [0.75])],
  },
  {
    name: 'ScatterElements add',
    opType: 'ScatterElements',
    inputs: [f('x', [3, 2]), i64('i', [0, 0, 2, 0], [2, 2]), f('u', [2, 2])],
    attributes: { axis: 0, reduction: 'add' },
  },
  {
    name: 'Shape start/end',
    opType: 'Shape',
    inputs: [f('x', [2, 3, 4])],
    attributes: { start: 1, end: -1 },
  },
  {
    name: 'Round half to even',
    opType: 'Round',
    inputs: [floatTensor('x', [6], [0.5, 1.5, 2.5, -0.5, -1.5, 2.4])],
  },
  {
    name: 'Split attribute form (opset 12)',
    opType: 'Split',
    inputs: [f('x', [5, 2])],
    attributes: { split: [2, 3] },
    outputs: 2,
    opset: 12,
  },
  { name: 'Softmax opset 11 (2-D coercion)', opType: 'Softmax', inputs: [f('x', [2, 3, 4])], opset: 11 },
  {
    name: 'Erf wide range',
    opType: 'Erf',
    inputs: [floatTensor('x', [7], [-7, -3, -2.6, -0.1, 0.7, 2.4, 5])],
  },
];

describe('reference interpreter vs onnxruntime (forward)', () => {
  test.each(cases)('$name', async (c) => {
    const b = new GraphBuilder({ opset: c.opset ?? 17 });
    for (const t of c.inputs) b.initializer(t, { exactName: true });
    const outs = b.node(
      c.opType,
      c.inputs.map((t) => t.name),
      c.attributes ?? {},
      { outputs: c.outputs ?? 1 },
    );
    for (const o of outs) b.output(o, DataType.UNDEFINED);
    const model = b.build();
    const ort = await runOrt(model, {});
    const ref = runReference(model, {});
    for (const o of outs) {
      expect(ref.get(o)!.dims).toEqual([...ort[o].dims]);
      const got = Array.from(ort[o].data as ArrayLike<number | bigint>, Number);
      const want = Array.from(ref.get(o)!.data);
      want.forEach((v, k) => expect(got[k]).toBeCloseTo(v, 5));
    }
  });

  it('erf matches known values to 1e-14', () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(erf(2.5)).toBeCloseTo(0.999593047982555, 14);
    expect(erf(-3.2)).toBeCloseTo(-0.9999939742388483, 14);
  });
});
