/**
 * Elementwise gradient rules against central finite differences of the float64 reference, run in
 * onnxruntime-node. Broadcasting is exercised on every axis, with scalars and rank mismatches.
 */
import { buildGradientGraph } from '../../src/autodiff';
import { DataType, GraphBuilder, floatTensor, int64Tensor } from '../../src/onnx';
import { FLOAT32_GRADIENT_RTOL, runOrt } from '../helpers/grad-check';
import { checkOpCase, opCaseModel, type OpCase, type TensorSpec } from '../helpers/tiny-models';

const P = (name: string, shape: number[], extra: Partial<TensorSpec> = {}): TensorSpec => ({
  name,
  shape,
  ...extra,
});
const positive: Partial<TensorSpec> = { range: [0.5, 2] };
const constF = (name: string, shape: number[], values?: number[]): TensorSpec => ({
  name,
  shape,
  role: 'const',
  ...(values ? { values } : {}),
});
const constI = (name: string, values: number[], shape = [values.length]): TensorSpec => ({
  name,
  shape,
  role: 'const',
  dtype: DataType.INT64,
  values,
});
const constB = (name: string, shape: number[], values: number[]): TensorSpec => ({
  name,
  shape,
  role: 'const',
  dtype: DataType.BOOL,
  values,
});

const cases: OpCase[] = [
  { name: 'Add same shape', opType: 'Add', inputs: [P('a', [2, 3]), P('b', [2, 3])] },
  {
    name: 'Add broadcast on every axis [2,1,3,1]+[1,4,1,5]',
    opType: 'Add',
    inputs: [P('a', [2, 1, 3, 1]), P('b', [1, 4, 1, 5])],
  },
  { name: 'Add scalar + [2,3]', opType: 'Add', inputs: [P('a', []), P('b', [2, 3])] },
  { name: 'Add rank mismatch [3] + [2,4,3]', opType: 'Add', inputs: [P('a', [3]), P('b', [2, 4, 3])] },
  { name: 'Add x + x (same tensor twice)', opType: 'Add', inputs: [P('a', [2, 3]), P('a', [2, 3])] },
  { name: 'Sub broadcast [4,1]-[1,3]', opType: 'Sub', inputs: [P('a', [4, 1]), P('b', [1, 3])] },
  {
    name: 'Sub [2,3,4] - [1] (graph input)',
    opType: 'Sub',
    inputs: [P('a', [2, 3, 4]), P('b', [1], { role: 'input' })],
  },
  {
    name: 'Mul broadcast on every axis',
    opType: 'Mul',
    inputs: [P('a', [2, 1, 3, 1]), P('b', [1, 4, 1, 5])],
  },
  { name: 'Mul x * x', opType: 'Mul', inputs: [P('a', [3, 2]), P('a', [3, 2])] },
  { name: 'Mul by frozen constant', opType: 'Mul', inputs: [P('a', [2, 3]), constF('c', [3])] },
  { name: 'Div broadcast [2,3,1]/[4]', opType: 'Div', inputs: [P('a', [2, 3, 1]), P('b', [4], positive)] },
  { name: 'Div scalar numerator', opType: 'Div', inputs: [P('a', []), P('b', [2, 2], positive)] },
  { name: 'Pow constant 2', opType: 'Pow', inputs: [P('x', [2, 3]), constF('e', [], [2])] },
  { name: 'Pow constant 3', opType: 'Pow', inputs: [P('x', [2, 3]), constF('e', [], [3])] },
  { name: 'Pow constant 0.5', opType: 'Pow', inputs: [P('x', [2, 3], positive), constF('e', [], [0.5])] },
  { name: 'Pow constant 1', opType: 'Pow', inputs: [P('x', [2, 3]), constF('e', [], [1])] },
  { name: 'Pow int64 exponent 3', opType: 'Pow', inputs: [P('x', [4]), constI('e', [3], [])] },
  {
    name: 'Pow constant tensor exponent broadcast',
    opType: 'Pow',
    inputs: [P('x', [2, 3], positive), constF('e', [3], [1.5, 2, -0.5])],
  },
  { name: 'Pow trained exponent', opType: 'Pow', inputs: [P('x', [2, 3], positive), P('e', [1, 3])] },
  { name: 'Abs', opType: 'Abs', inputs: [P('x', [3, 4])] },
  { name: 'Neg', opType: 'Neg', inputs: [P('x', [3, 4])] },
  { name: 'Exp', opType: 'Exp', inputs: [P('x', [3, 4])] },
  { name: 'Log', opType: 'Log', inputs: [P('x', [3, 4], positive)] },
  { name: 'Sqrt', opType: 'Sqrt', inputs: [P('x', [3, 4], positive)] },
  { name: 'Reciprocal', opType: 'Reciprocal', inputs: [P('x', [3, 4], positive)] },
  { name: 'Erf', opType: 'Erf', inputs: [P('x', [3, 4], { range: [-2.5, 2.5] })] },
  { name: 'Sin', opType: 'Sin', inputs: [P('x', [5])] },
  { name: 'Cos', opType: 'Cos', inputs: [P('x', [5])] },
  { name: 'Identity', opType: 'Identity', inputs: [P('x', [2, 2])] },
  {
    name: 'Clip min and max inputs',
    opType: 'Clip',
    inputs: [P('x', [4, 5]), constF('lo', [], [-0.4]), constF('hi', [], [0.5])],
  },
  { name: 'Clip max only', opType: 'Clip', inputs: [P('x', [4, 5]), null, constF('hi', [], [0.3])] },
  { name: 'Clip no bounds', opType: 'Clip', inputs: [P('x', [4])] },
  {
    name: 'Clip trained bounds',
    opType: 'Clip',
    inputs: [P('x', [4, 5]), P('lo', [], { values: [-0.4] }), P('hi', [], { values: [0.5] })],
  },
  {
    name: 'Where broadcast cond [2,1,3], a [2,4,3], b scalar',
    opType: 'Where',
    inputs: [constB('c', [2, 1, 3], [1, 0, 1, 0, 0, 1]), P('a', [2, 4, 3]), P('b', [])],
  },
  {
    name: 'Where a [3] b [2,1]',
    opType: 'Where',
    inputs: [constB('c', [2, 3], [1, 0, 1, 0, 1, 1]), P('a', [3]), P('b', [2, 1])],
  },
  { name: 'Dropout (inference, no mode input)', opType: 'Dropout', inputs: [P('x', [2, 3])] },
  {
    name: 'Dropout training_mode=false, ratio given',
    opType: 'Dropout',
    inputs: [P('x', [2, 3]), constF('ratio', [], [0.3]), constB('mode', [], [0])],
  },
  {
    name: 'Sum of 3 with broadcasting',
    opType: 'Sum',
    inputs: [P('a', [2, 3]), P('b', [3]), P('c', [2, 1])],
  },
  { name: 'Sum of 1', opType: 'Sum', inputs: [P('a', [2, 3])] },
  { name: 'Mean of 3', opType: 'Mean', inputs: [P('a', [2, 3]), P('b', [1, 3]), P('c', [])] },
  {
    name: 'Max of 3 with broadcasting',
    opType: 'Max',
    inputs: [P('a', [2, 3]), P('b', [3]), P('c', [2, 1])],
  },
  { name: 'Min of 2', opType: 'Min', inputs: [P('a', [4, 3]), P('b', [4, 3])] },
];

const summary: string[] = [];
afterAll(() => console.log(`elementwise gradient checks (worst relL2 per case):\n${summary.join('\n')}`));

describe('elementwise gradients vs finite differences', () => {
  test.each(cases)('$name', async (c) => {
    const report = await checkOpCase(c);
    const worst = Math.max(...report.params.map((p) => p.relL2));
    summary.push(`  ${c.name}: ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(FLOAT32_GRADIENT_RTOL);
  });
});

describe('elementwise gradients: special cases', () => {
  it('Max splits the gradient evenly among ties (as torch.maximum)', async () => {
    const built = opCaseModel({
      name: 'max ties',
      opType: 'Max',
      inputs: [
        { name: 'a', shape: [3], values: [1, 2, 3] },
        { name: 'b', shape: [3], values: [1, 5, 0] },
        { name: 'c', shape: [3], values: [1, 2, -1] },
      ],
    });
    const g = buildGradientGraph(built.model, { targets: [{ loss: built.loss, wrt: ['a', 'b', 'c'] }] });
    const out = await runOrt(g.model, built.feeds);
    const r = built.model.graph.initializers.find((t) => t.name === 'R0')!.data as Float32Array;
    const ga = Array.from(out.a_grad.data as Float32Array);
    const gb = Array.from(out.b_grad.data as Float32Array);
    const gc = Array.from(out.c_grad.data as Float32Array);
    // Element 0: three-way tie; element 1: b wins; element 2: a wins.
    expect(ga[0]).toBeCloseTo(r[0] / 3, 6);
    expect(gb[0]).toBeCloseTo(r[0] / 3, 6);
    expect(gc[0]).toBeCloseTo(r[0] / 3, 6);
    const plain = (v: number[]): number[] => v.map((x) => x + 0); // -0 → 0
    expect(plain([ga[1], gb[1], gc[1]])).toEqual([0, r[1], 0]);
    expect(plain([ga[2], gb[2], gc[2]])).toEqual([r[2], 0, 0]);
  });

  it('Dropout in training mode is refused with a clear error', () => {
    const b = new GraphBuilder({ opset: 17 });
    b.initializer(floatTensor('x', [2, 3], [1, 2, 3, 4, 5, 6]), { exactName: true });
    const mode = b.initializer({
      name: 'mode',
      dataType: DataType.BOOL,
      dims: [],
      data: Uint8Array.from([1]),
    });
    const y = b.op('Dropout', ['x', b.constFloat(0.5), mode], {}, { name: 'drop' });
    b.output(b.op('ReduceSum', [y], { keepdims: 0 }, { outputs: ['loss'] }), DataType.FLOAT, []);
    expect(() => buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['x'] }] })).toThrow(
      /Dropout 'drop'.*training mode.*cannot be differentiated/,
    );
  });

  it('Floor passes no gradient: the parameter gets zeros', async () => {
    const b = new GraphBuilder({ opset: 17 });
    b.initializer(floatTensor('w', [3], [0.3, 1.7, -2.2]), { exactName: true });
    const f = b.op('Floor', ['w']);
    const loss = b.op('ReduceSum', [b.op('Mul', [f, 'w'])], { keepdims: 0 }, { outputs: ['loss'] });
    b.output(loss, DataType.FLOAT, []);
    const g = buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['w'] }] });
    const out = await runOrt(g.model, {});
    // d(floor(w)·w)/dw = floor(w) (the Floor branch contributes 0).
    expect(Array.from(out.w_grad.data as Float32Array)).toEqual([0, 1, -3]);
  });

  it('Cast float→double→float passes the gradient through', async () => {
    const b = new GraphBuilder({ opset: 17 });
    b.initializer(floatTensor('w', [3], [0.5, -1, 2]), { exactName: true });
    const d = b.op('Cast', ['w'], { to: DataType.DOUBLE });
    const sq = b.op('Mul', [d, d]);
    const back = b.op('Cast', [sq], { to: DataType.FLOAT });
    const loss = b.op('ReduceSum', [back, b.constInt64([0])], { keepdims: 0 }, { outputs: ['loss'] });
    b.output(loss, DataType.FLOAT, []);
    const g = buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['w'] }] });
    const out = await runOrt(g.model, {});
    expect(Array.from(out.w_grad.data as Float32Array)).toEqual([1, -2, 4]);
    expect(g.model.graph.nodes.filter((n) => n.opType === 'Cast').length).toBeGreaterThanOrEqual(3);
  });

  it('an int64 tensor on the path is not differentiated (Cast to int passes nothing)', async () => {
    const b = new GraphBuilder({ opset: 17 });
    b.initializer(floatTensor('w', [2], [1.5, 2.5]), { exactName: true });
    const asInt = b.op('Cast', ['w'], { to: DataType.INT64 });
    const back = b.op('Cast', [asInt], { to: DataType.FLOAT });
    const loss = b.op('ReduceSum', [b.op('Add', [back, 'w'])], { keepdims: 0 }, { outputs: ['loss'] });
    b.output(loss, DataType.FLOAT, []);
    b.initializer(int64Tensor('unused', [1], [0]));
    const g = buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['w'] }] });
    const out = await runOrt(g.model, {});
    expect(Array.from(out.w_grad.data as Float32Array)).toEqual([1, 1]);
  });
});
