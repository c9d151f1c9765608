/**
 * Reduce* gradient rules against central finite differences of the float64 reference: keepdims 0/1, axes
 * as attribute (opset < 18) or input (ReduceSum from 13, others from 18), negative axes, all axes,
 * noop_with_empty_axes, and axes only known at run time.
 */
import { buildGradientGraph } from '../../src/autodiff';
import { DataType, GraphBuilder, floatTensor } from '../../src/onnx';
import { FLOAT32_GRADIENT_RTOL, runOrt } from '../helpers/grad-check';
import { checkOpCase, type OpCase, type TensorSpec } from '../helpers/tiny-models';

const X = (shape: number[], extra: Partial<TensorSpec> = {}): TensorSpec => ({ name: 'x', shape, ...extra });
const axesIn = (values: number[]): TensorSpec => ({
  name: 'axes',
  shape: [values.length],
  role: 'const',
  dtype: DataType.INT64,
  values,
});
const axesFeed = (values: number[]): TensorSpec => ({ ...axesIn(values), role: 'feed' });

const cases: OpCase[] = [
  { name: 'ReduceSum axes input [1] keepdims 1', opType: 'ReduceSum', inputs: [X([2, 3, 4]), axesIn([1])] },
  {
    name: 'ReduceSum axes [-1, 0] keepdims 0',
    opType: 'ReduceSum',
    inputs: [X([2, 3, 4]), axesIn([-1, 0])],
    attributes: { keepdims: 0 },
  },
  {
    name: 'ReduceSum all axes keepdims 0',
    opType: 'ReduceSum',
    inputs: [X([2, 3])],
    attributes: { keepdims: 0 },
  },
  { name: 'ReduceSum all axes keepdims 1', opType: 'ReduceSum', inputs: [X([2, 3])] },
  {
    name: 'ReduceSum noop_with_empty_axes',
    opType: 'ReduceSum',
    inputs: [X([2, 3])],
    attributes: { noop_with_empty_axes: 1 },
  },
  {
    name: 'ReduceSum run-time axes keepdims 0',
    opType: 'ReduceSum',
    inputs: [X([2, 3, 4]), axesFeed([2])],
    attributes: { keepdims: 0 },
  },
  {
    name: 'ReduceSum run-time axes keepdims 1',
    opType: 'ReduceSum',
    inputs: [X([2, 3, 4]), axesFeed([0, 2])],
  },
  {
    name: 'ReduceMean attr axes [2,3] (opset 17)',
    opType: 'ReduceMean',
    inputs: [X([2, 3, 4, 5])],
    attributes: { axes: [2, 3] },
  },
  {
    name: 'ReduceMean attr axes keepdims 0',
    opType: 'ReduceMean',
    inputs: [X([2, 3, 4])],
    attributes: { axes: [1], keepdims: 0 },
  },
  {
    name: 'ReduceMean all axes keepdims 0',
    opType: 'ReduceMean',
    inputs: [X([3, 4])],
    attributes: { keepdims: 0 },
  },
  {
    name: 'ReduceMean axes input (opset 18)',
    opType: 'ReduceMean',
    inputs: [X([2, 3, 4]), axesIn([-2])],
    opset: 18,
    attributes: { keepdims: 0 },
  },
  {
    name: 'ReduceMean run-time axes (opset 18)',
    opType: 'ReduceMean',
    inputs: [X([2, 3, 4]), axesFeed([1])],
    opset: 18,
  },
  {
    name: 'ReduceMax attr axes [1] keepdims 0',
    opType: 'ReduceMax',
    inputs: [X([3, 4, 2])],
    attributes: { axes: [1], keepdims: 0 },
  },
  { name: 'ReduceMax all axes', opType: 'ReduceMax', inputs: [X([3, 4])], attributes: { keepdims: 0 } },
  {
    name: 'ReduceMax axes input (opset 18)',
    opType: 'ReduceMax',
    inputs: [X([3, 4, 2]), axesIn([0, 2])],
    opset: 18,
  },
  { name: 'ReduceMin attr axes', opType: 'ReduceMin', inputs: [X([3, 4])], attributes: { axes: [0] } },
  {
    name: 'ReduceL2 attr axes keepdims 1',
    opType: 'ReduceL2',
    inputs: [X([2, 3, 4])],
    attributes: { axes: [2] },
  },
  {
    name: 'ReduceL2 attr axes keepdims 0',
    opType: 'ReduceL2',
    inputs: [X([2, 3, 4])],
    attributes: { axes: [0, 2], keepdims: 0 },
  },
  {
    name: 'ReduceL2 all axes keepdims 0',
    opType: 'ReduceL2',
    inputs: [X([2, 3])],
    attributes: { keepdims: 0 },
  },
  {
    name: 'ReduceL2 axes input (opset 18)',
    opType: 'ReduceL2',
    inputs: [X([2, 3]), axesIn([1])],
    opset: 18,
    attributes: { keepdims: 0 },
  },
  { name: 'ReduceL1', opType: 'ReduceL1', inputs: [X([2, 3])], attributes: { axes: [1] } },
  {
    name: 'ReduceSumSquare',
    opType: 'ReduceSumSquare',
    inputs: [X([2, 3])],
    attributes: { axes: [0], keepdims: 0 },
  },
  { name: 'ReduceLogSumExp', opType: 'ReduceLogSumExp', inputs: [X([2, 3, 2])], attributes: { axes: [1] } },
  {
    name: 'ReduceLogSum',
    opType: 'ReduceLogSum',
    inputs: [X([2, 3], { range: [0.5, 2] })],
    attributes: { axes: [1], keepdims: 0 },
  },
  ...[
    'ReduceMean',
    'ReduceMax',
    'ReduceL2',
    'ReduceL1',
    'ReduceSumSquare',
    'ReduceLogSumExp',
    'ReduceLogSum',
  ].map((opType): OpCase => ({
    name: `${opType} noop_with_empty_axes (opset 18: an elementwise map in onnxruntime)`,
    opType,
    inputs: [X([2, 3], opType === 'ReduceLogSum' ? { range: [0.5, 2] } : {})],
    attributes: { noop_with_empty_axes: 1 },
    opset: 18,
  })),
];

const summary: string[] = [];
afterAll(() => console.log(`reduction gradient checks (worst relL2 per case):\n${summary.join('\n')}`));

describe('reduction gradients vs finite differences', () => {
  test.each(cases)('$name', async (c) => {
    const report = await checkOpCase(c);
    const worst = Math.max(...report.params.map((p) => p.relL2));
    summary.push(`  ${c.name}: ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(FLOAT32_GRADIENT_RTOL);
  });
});

describe('reduction gradients: ties and zeros', () => {
  async function gradOf(
    opType: string,
    values: number[],
    dims: number[],
    attributes = {},
  ): Promise<number[]> {
    const b = new GraphBuilder({ opset: 17 });
    b.initializer(floatTensor('x', dims, values), { exactName: true });
    const y = b.op(opType, ['x'], attributes);
    b.output(b.op('ReduceSum', [y], { keepdims: 0 }, { outputs: ['loss'] }), DataType.FLOAT, []);
    const g = buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['x'] }] });
    const out = await runOrt(g.model, {});
    return Array.from(out.x_grad.data as Float32Array);
  }

  it('ReduceMax splits dy evenly among tied maxima (as torch.amax)', async () => {
    const g = await gradOf('ReduceMax', [1, 3, 3, 2, 5, 5, 5, 0], [2, 4], { axes: [1] });
    expect(g.map((v) => v + 0)).toEqual([0, 0.5, 0.5, 0, 1 / 3, 1 / 3, 1 / 3, 0].map((v) => Math.fround(v)));
  });

  it('ReduceMin routes dy to the minimum', async () => {
    const g = await gradOf('ReduceMin', [4, -1, 2, 7], [4], { keepdims: 0 });
    expect(g.map((v) => v + 0)).toEqual([0, 1, 0, 0]);
  });

  it('ReduceL2 of an all-zero row gives a zero gradient, not NaN', async () => {
    const g = await gradOf('ReduceL2', [0, 0, 3, 4], [2, 2], { axes: [1] });
    expect(g.map((v) => v + 0)).toEqual([0, 0, 0.6, 0.8].map((v) => Math.fround(v)));
  });
});
