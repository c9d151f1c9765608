/**
 * Shape and indexing gradient rules against central finite differences of the float64 reference: Slice
 * with negative/INT64_MAX ends and negative steps, Gather with repeated and negative indices, Concat/Split
 * with static and run-time sizes.
 */
import { buildGradientGraph } from '../../src/autodiff';
import { DataType, GraphBuilder, floatTensor } from '../../src/onnx';
import { FLOAT32_GRADIENT_RTOL, runOrt } from '../helpers/grad-check';
import { checkOpCase, type OpCase, type TensorSpec } from '../helpers/tiny-models';

const X = (shape: number[], extra: Partial<TensorSpec> = {}): TensorSpec => ({ name: 'x', shape, ...extra });
const P = (name: string, shape: number[]): TensorSpec => ({ name, shape });
const ints = (name: string, values: number[], shape = [values.length]): TensorSpec => ({
  name,
  shape,
  role: 'const',
  dtype: DataType.INT64,
  values,
});
const feedInts = (name: string, values: number[], shape = [values.length]): TensorSpec => ({
  ...ints(name, values, shape),
  role: 'feed',
});
const INT64_MAX = 2 ** 63; // stored saturated as INT64_MAX (and -2^63 as INT64_MIN)

const slice = (
  name: string,
  shape: number[],
  s: number[],
  e: number[],
  axes?: number[],
  steps?: number[],
): OpCase => ({
  name,
  opType: 'Slice',
  inputs: [
    X(shape),
    ints('starts', s),
    ints('ends', e),
    axes ? ints('axes', axes) : null,
    steps ? ints('steps', steps) : null,
  ].filter((t, i, all) => t !== null || all.slice(i).some((u) => u !== null)),
});

const cases: OpCase[] = [
  { name: 'Reshape with -1 and 0', opType: 'Reshape', inputs: [X([2, 3, 4]), ints('shape', [0, -1])] },
  { name: 'Flatten axis 2', opType: 'Flatten', inputs: [X([2, 3, 2, 2])], attributes: { axis: 2 } },
  {
    name: 'Transpose perm [2,0,1]',
    opType: 'Transpose',
    inputs: [X([2, 3, 4])],
    attributes: { perm: [2, 0, 1] },
  },
  { name: 'Transpose default (reverse)', opType: 'Transpose', inputs: [X([2, 3, 4])] },
  { name: 'Squeeze axes [1, -1]', opType: 'Squeeze', inputs: [X([2, 1, 3, 1]), ints('axes', [1, -1])] },
  { name: 'Unsqueeze axes [0, 3]', opType: 'Unsqueeze', inputs: [X([2, 3]), ints('axes', [0, 3])] },
  { name: 'Expand [3,1] → [2,3,4]', opType: 'Expand', inputs: [X([3, 1]), ints('shape', [2, 3, 4])] },
  { name: 'Expand scalar → [2,2]', opType: 'Expand', inputs: [X([]), ints('shape', [2, 2])] },
  {
    name: 'Expand [2,1,3] by [4,1] (output [2,4,3])',
    opType: 'Expand',
    inputs: [X([2, 1, 3]), ints('shape', [4, 1])],
  },
  {
    name: 'Concat 3 inputs axis 1',
    opType: 'Concat',
    inputs: [P('a', [2, 1, 3]), P('b', [2, 2, 3]), P('c', [2, 3, 3])],
    attributes: { axis: 1 },
  },
  {
    name: 'Concat axis -1 with a frozen input',
    opType: 'Concat',
    inputs: [P('a', [2, 2]), { name: 'k', shape: [2, 3], role: 'const' }],
    attributes: { axis: -1 },
  },
  {
    name: 'Split sizes input [1,3] axis 1',
    opType: 'Split',
    inputs: [X([2, 4]), ints('split', [1, 3])],
    attributes: { axis: 1 },
    outputs: 2,
  },
  { name: 'Split equal, 3 outputs', opType: 'Split', inputs: [X([6, 2])], outputs: 3 },
  {
    name: 'Split num_outputs=2 (opset 18) uneven',
    opType: 'Split',
    inputs: [X([5, 2])],
    attributes: { num_outputs: 2 },
    outputs: 2,
    opset: 18,
  },
  slice('Slice step 1, one axis', [4, 5], [1], [3], [1]),
  slice('Slice negative start, INT64_MAX end', [4, 5], [-3], [INT64_MAX], [0]),
  slice('Slice two axes, negative end, default axes', [4, 5, 2], [0, 1], [-1, 4]),
  slice('Slice step 2, odd length', [7, 3], [0], [7], [0], [2]),
  slice('Slice step 3 from 1, axis -1', [2, 8], [1], [INT64_MAX], [-1], [3]),
  slice('Slice reverse (step -1, INT64_MIN end)', [5, 2], [-1], [-INT64_MAX], [0], [-1]),
  slice('Slice step -2 on two axes', [6, 5], [5, 4], [0, -INT64_MAX], [0, 1], [-2, -2]),
  slice('Slice start past the end (clamped) and step 2', [6, 4], [1, 10], [100, -100], [0, 1], [2, -1]),
  {
    name: 'Slice with run-time starts/ends',
    opType: 'Slice',
    inputs: [
      X([5, 4]),
      feedInts('starts', [1, -3]),
      feedInts('ends', [5, 4]),
      ints('axes', [0, 1]),
      ints('steps', [2, 1]),
    ],
  },
  {
    name: 'Gather axis 0 repeated indices',
    opType: 'Gather',
    inputs: [X([4, 3]), ints('idx', [0, 2, 0, 3, 0])],
  },
  {
    name: 'Gather axis 1, 2-D indices with negatives',
    opType: 'Gather',
    inputs: [X([2, 5, 3]), ints('idx', [-1, 0, 4, -1], [2, 2])],
    attributes: { axis: 1 },
  },
  {
    name: 'Gather scalar index, axis -1',
    opType: 'Gather',
    inputs: [X([3, 4]), ints('idx', [2], [])],
    attributes: { axis: -1 },
  },
  {
    name: 'Gather with run-time indices',
    opType: 'Gather',
    inputs: [X([5, 2]), feedInts('idx', [4, -5, 1, 4])],
  },
  {
    name: 'Gather opset 13 (the driver raises the opset to 16)',
    opType: 'Gather',
    inputs: [X([4, 3]), ints('idx', [1, 1, 2])],
    opset: 13,
  },
  {
    name: 'GatherElements axis 1 repeated',
    opType: 'GatherElements',
    inputs: [X([3, 4]), ints('idx', [0, 0, 3, 1, 1, 2, -1, 0, 0], [3, 3])],
    attributes: { axis: 1 },
  },
];

const summary: string[] = [];
afterAll(() => console.log(`shape-op gradient checks (worst relL2 per case):\n${summary.join('\n')}`));

describe('shape-op gradients vs finite differences', () => {
  test.each(cases)('$name', async (c) => {
    const report = await checkOpCase(c);
    const worst = Math.max(...report.params.map((p) => p.relL2));
    summary.push(`  ${c.name}: ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(FLOAT32_GRADIENT_RTOL);
    if (c.opType === 'Gather' && c.opset === 13) {
      expect(report.gradientModel.opsetImports.find((o) => o.domain === '')!.version).toBe(16);
    }
  });
});

describe('shape-op gradients: structure', () => {
  it('Split gives zeros to outputs the loss does not read', async () => {
    const b = new GraphBuilder({ opset: 17 });
    b.initializer(floatTensor('x', [4], [1, 2, 3, 4]), { exactName: true });
    const [y0] = b.node('Split', ['x', b.constInt64([1, 3])], { axis: 0 }, { outputs: 2 });
    b.output(
      b.op('ReduceSum', [b.op('Mul', [y0, y0])], { keepdims: 0 }, { outputs: ['loss'] }),
      DataType.FLOAT,
      [],
    );
    const g = buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['x'] }] });
    const out = await runOrt(g.model, {});
    expect(Array.from(out.x_grad.data as Float32Array)).toEqual([2, 0, 0, 0]);
  });

  it('Slice with step 1 and static dims becomes one Pad; with steps a ScatterElements', () => {
    const build = (steps: number): string[] => {
      const b = new GraphBuilder({ opset: 17 });
      b.initializer(floatTensor('x', [6], [1, 2, 3, 4, 5, 6]), { exactName: true });
      const y = b.op('Slice', [
        'x',
        b.constInt64([1]),
        b.constInt64([5]),
        b.constInt64([0]),
        b.constInt64([steps]),
      ]);
      b.output(b.op('ReduceSum', [y], { keepdims: 0 }, { outputs: ['loss'] }), DataType.FLOAT, []);
      const g = buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['x'] }] });
      return g.model.graph.nodes.map((n) => n.opType);
    };
    expect(build(1)).toContain('Pad');
    expect(build(1)).not.toContain('ScatterElements');
    expect(build(2)).toContain('ScatterElements');
  });
});
