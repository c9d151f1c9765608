/** Activation gradient rules against central finite differences of the float64 reference. */
import { buildGradientGraph } from '../../src/autodiff';
import { DataType, GraphBuilder, floatTensor } from '../../src/onnx';
import { FLOAT32_GRADIENT_RTOL, runOrt } from '../helpers/grad-check';
import { checkOpCase, type OpCase, type TensorSpec } from '../helpers/tiny-models';

const P = (name: string, shape: number[], extra: Partial<TensorSpec> = {}): TensorSpec => ({
  name,
  shape,
  ...extra,
});
const wide: Partial<TensorSpec> = { range: [-3, 3] };

const cases: OpCase[] = [
  { name: 'Relu', opType: 'Relu', inputs: [P('x', [3, 5])] },
  { name: 'LeakyRelu default alpha', opType: 'LeakyRelu', inputs: [P('x', [3, 5])] },
  { name: 'LeakyRelu alpha 0.2', opType: 'LeakyRelu', inputs: [P('x', [3, 5])], attributes: { alpha: 0.2 } },
  { name: 'Sigmoid', opType: 'Sigmoid', inputs: [P('x', [3, 5], wide)] },
  { name: 'Tanh', opType: 'Tanh', inputs: [P('x', [3, 5], wide)] },
  { name: 'Softmax default axis (-1)', opType: 'Softmax', inputs: [P('x', [2, 3, 4], wide)] },
  { name: 'Softmax axis 1', opType: 'Softmax', inputs: [P('x', [2, 3, 4], wide)], attributes: { axis: 1 } },
  {
    name: 'Softmax axis 0, opset 13',
    opType: 'Softmax',
    inputs: [P('x', [3, 2], wide)],
    attributes: { axis: 0 },
    opset: 13,
  },
  { name: 'LogSoftmax default axis', opType: 'LogSoftmax', inputs: [P('x', [2, 5], wide)] },
  {
    name: 'LogSoftmax axis -2',
    opType: 'LogSoftmax',
    inputs: [P('x', [2, 3, 4], wide)],
    attributes: { axis: -2 },
  },
  { name: 'Softplus', opType: 'Softplus', inputs: [P('x', [3, 4], wide)] },
  { name: 'Elu alpha 0.7', opType: 'Elu', inputs: [P('x', [3, 4], wide)], attributes: { alpha: 0.7 } },
  { name: 'HardSigmoid', opType: 'HardSigmoid', inputs: [P('x', [4, 5], { range: [-4, 4] })] },
  {
    name: 'HardSigmoid alpha 1/6 (torchvision Hardsigmoid)',
    opType: 'HardSigmoid',
    inputs: [P('x', [2, 3, 4, 4], { range: [-5, 5] })],
    attributes: { alpha: 1 / 6 },
  },
  { name: 'HardSwish', opType: 'HardSwish', inputs: [P('x', [2, 4, 3, 5], { range: [-5, 5] })] },
  {
    name: 'HardSwish, opset 14',
    opType: 'HardSwish',
    inputs: [P('x', [3, 7], { range: [-4, 4] })],
    opset: 14,
  },
  { name: 'PRelu slope [3,1,1]', opType: 'PRelu', inputs: [P('x', [2, 3, 2, 2]), P('s', [3, 1, 1])] },
  { name: 'PRelu scalar-like slope [1]', opType: 'PRelu', inputs: [P('x', [2, 4]), P('s', [1])] },
];

const summary: string[] = [];
afterAll(() => console.log(`activation gradient checks (worst relL2 per case):\n${summary.join('\n')}`));

describe('activation gradients vs finite differences', () => {
  test.each(cases)('$name', async (c) => {
    const report = await checkOpCase(c);
    const worst = Math.max(...report.params.map((p) => p.relL2));
    summary.push(`  ${c.name}: ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(FLOAT32_GRADIENT_RTOL);
  });

  it('HardSwish takes the side PyTorch takes at its kinks: x/3 + 1/2 on the closed interval [-3, 3]', async () => {
    // Hand-computed: 0 below -3, -1/2 at -3, 0 at -3/2, 1/2 at 0, 3/2 at 3, 1 above 3.
    const b = new GraphBuilder({ opset: 17 });
    b.initializer(floatTensor('x', [7], [-4, -3, -1.5, 0, 1, 3, 4]), { exactName: true });
    const y = b.op('HardSwish', ['x'], {}, { name: 'hswish', outputs: ['y'] });
    b.output(b.op('ReduceSum', [y], { keepdims: 0 }, { outputs: ['loss'] }), DataType.FLOAT, []);
    const g = buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['x'] }] });
    const out = await runOrt(g.model, {});
    const want = [0, -0.5, 0, 0.5, 5 / 6, 1.5, 1];
    Array.from(out.x_grad.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
  });

  it('Relu passes no gradient at x = 0 (PyTorch convention) and reads Y, not X', async () => {
    const b = new GraphBuilder({ opset: 17 });
    b.initializer(floatTensor('x', [4], [-1, 0, 0.5, 2]), { exactName: true });
    const y = b.op('Relu', ['x'], {}, { name: 'relu', outputs: ['y'] });
    b.output(b.op('ReduceSum', [y], { keepdims: 0 }, { outputs: ['loss'] }), DataType.FLOAT, []);
    const g = buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['x'] }] });
    const out = await runOrt(g.model, {});
    expect(Array.from(out.x_grad.data as Float32Array)).toEqual([0, 0, 1, 1]);
    const greater = g.model.graph.nodes.find((n) => n.opType === 'Greater')!;
    expect(greater.inputs[0]).toBe('y');
  });
});
