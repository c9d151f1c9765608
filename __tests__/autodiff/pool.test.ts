/**
 * Pooling gradient rules against central finite differences of the float64 reference pools, run in
 * onnxruntime with the batch dynamic (batch 1 and 2 through the same gradient graph).
 */
import { rules } from '../../src/autodiff/rules/pool';
import { GraphError } from '../../src/errors';
import { buildRuleGraph } from '../helpers/rule-harness';
import type { Rng } from '../../src/util/rng';
import { ops } from '../helpers/reference/pool';
import { formatReport } from '../helpers/grad-check';
import { checkOpCase } from '../helpers/tiny-models';
import { checkRule, worstGrad, type RuleCase } from './rule-check';

const rule = (op: string) => rules.find((r) => r.opType === op)!;

/** Distinct values spaced ≥ 0.01 apart, shuffled, so a finite-difference step never changes an argmax. */
function distinct(n: number, rng: Rng): number[] {
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.01);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
}

interface PoolCase {
  name: string;
  op: 'MaxPool' | 'AveragePool';
  x: number[];
  attributes: RuleCase['attributes'];
}

const cases: PoolCase[] = [
  {
    name: 'k3 s2 p1 (ResNet stem, overlapping windows)',
    op: 'MaxPool',
    x: [3, 9, 9],
    attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
  },
  {
    name: 'k3 s2 p1 even size',
    op: 'MaxPool',
    x: [2, 8, 10],
    attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
  },
  {
    name: 'k3 s2 p1 ceil_mode',
    op: 'MaxPool',
    x: [2, 8, 7],
    attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 },
  },
  {
    name: 'k2 s2 ceil_mode odd size',
    op: 'MaxPool',
    x: [2, 7, 5],
    attributes: { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 },
  },
  {
    name: 'k1 s2 (FPN LastLevelMaxPool)',
    op: 'MaxPool',
    x: [3, 7, 8],
    attributes: { kernel_shape: [1, 1], strides: [2, 2] },
  },
  {
    name: 'k3 s1 asymmetric pads',
    op: 'MaxPool',
    x: [2, 6, 6],
    attributes: { kernel_shape: [3, 3], pads: [0, 1, 2, 0] },
  },
  {
    name: 'k2 dilation 2',
    op: 'MaxPool',
    x: [2, 7, 7],
    attributes: { kernel_shape: [2, 2], dilations: [2, 2], strides: [1, 1] },
  },
  {
    name: 'SAME_UPPER k3 s2',
    op: 'MaxPool',
    x: [2, 7, 8],
    attributes: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' },
  },
  {
    name: '1-D k3 s2 p1',
    op: 'MaxPool',
    x: [3, 11],
    attributes: { kernel_shape: [3], strides: [2], pads: [1, 1] },
  },
  {
    name: 'k3 s2 p1 count_include_pad=0',
    op: 'AveragePool',
    x: [3, 9, 8],
    attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
  },
  {
    name: 'k3 s2 p1 count_include_pad=1',
    op: 'AveragePool',
    x: [3, 9, 8],
    attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 },
  },
  {
    name: 'k3 s2 p1 ceil_mode count_include_pad=1',
    op: 'AveragePool',
    x: [2, 6, 7],
    attributes: {
      kernel_shape: [3, 3],
      strides: [2, 2],
      pads: [1, 1, 1, 1],
      ceil_mode: 1,
      count_include_pad: 1,
    },
  },
  {
    name: 'k3 s2 p1 ceil_mode count_include_pad=0',
    op: 'AveragePool',
    x: [2, 6, 7],
    attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 },
  },
  {
    name: 'k2 s2 ceil_mode, last window starting in padding dropped',
    op: 'AveragePool',
    x: [2, 5, 5],
    attributes: {
      kernel_shape: [2, 2],
      strides: [2, 2],
      pads: [1, 1, 1, 1],
      ceil_mode: 1,
      count_include_pad: 1,
    },
  },
  {
    name: 'asymmetric pads k3 s1 count_include_pad=1',
    op: 'AveragePool',
    x: [2, 5, 6],
    attributes: { kernel_shape: [3, 3], pads: [2, 0, 0, 1], count_include_pad: 1 },
  },
  {
    name: 'k2 s2 no pads',
    op: 'AveragePool',
    x: [2, 8, 6],
    attributes: { kernel_shape: [2, 2], strides: [2, 2] },
  },
  {
    name: 'SAME_LOWER k3 s2',
    op: 'AveragePool',
    x: [2, 7, 8],
    attributes: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_LOWER' },
  },
];

describe('pooling gradients', () => {
  test.each(cases)('$op $name', async (pc) => {
    const r = await checkRule(rule(pc.op), ops, {
      opType: pc.op,
      attributes: pc.attributes,
      inputs: [{ name: 'x', shape: ['N', ...pc.x], init: pc.op === 'MaxPool' ? distinct : undefined }],
      batches: [1, 2],
    });
    console.log(`${pc.op} ${pc.name}: forward ${r.forwardError.toExponential(2)}, grads`, r.gradErrors);
    expect(r.forwardError).toBeLessThan(1e-6);
    expect(worstGrad(r)).toBeLessThan(1e-4);
  });

  test.each([
    ['GlobalAveragePool', [4, 5, 3]],
    ['GlobalMaxPool', [4, 5, 3]],
    ['GlobalAveragePool', [3, 7]],
    ['GlobalMaxPool', [3, 2, 3, 2]],
  ] as const)('%s over %j', async (op, x) => {
    const r = await checkRule(rule(op), ops, {
      opType: op,
      inputs: [{ name: 'x', shape: ['N', ...x], init: distinct }],
      batches: [1, 2],
    });
    console.log(
      `${op} ${JSON.stringify(x)}: forward ${r.forwardError.toExponential(2)}, grads`,
      r.gradErrors,
    );
    expect(r.forwardError).toBeLessThan(1e-6);
    expect(worstGrad(r)).toBeLessThan(1e-4);
  });

  test('MaxPool asks the forward node for its Indices and raises the opset to 16', () => {
    const g = buildRuleGraph(
      {
        opType: 'MaxPool',
        attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
        inputs: [{ name: 'x', shape: ['N', 2, 8, 8] }],
        outputs: [['N', 2, 4, 4]],
        opset: 13,
      },
      rule('MaxPool'),
    );
    const fwd = g.model.graph.nodes.find((n) => n.opType === 'MaxPool')!;
    expect(fwd.outputs).toHaveLength(2);
    expect(g.model.opsetImports[0].version).toBe(16);
    const scatter = g.model.graph.nodes.find((n) => n.opType === 'ScatterElements')!;
    expect(scatter.attributes.reduction).toEqual({ type: 'string', value: 'add' });
  });

  test('MaxPool with storage_order=1 is refused with a clear error', () => {
    expect(() =>
      buildRuleGraph(
        {
          opType: 'MaxPool',
          name: 'stem.pool',
          attributes: { kernel_shape: [2, 2], storage_order: 1 },
          inputs: [{ name: 'x', shape: ['N', 2, 4, 4] }],
          outputs: [['N', 2, 3, 3]],
        },
        rule('MaxPool'),
      ),
    ).toThrow(GraphError);
  });
});

describe('pooling through the autodiff driver', () => {
  const driverCases: [string, Record<string, number | number[]>, number][] = [
    ['MaxPool', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }, 13],
    ['AveragePool', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 }, 17],
    ['GlobalAveragePool', {}, 17],
    ['GlobalMaxPool', {}, 17],
  ];
  test.each(driverCases)('%s (checkOpCase, opset %i)', async (opType, attributes, opset) => {
    const r = await checkOpCase({
      name: `driver-${opType}`,
      opType,
      inputs: [{ name: 'x', shape: [2, 3, 7, 6], role: 'input' }],
      attributes,
      opset,
    });
    console.log(`driver ${opType}: ${formatReport(r)}`);
    expect(r.params[0].ok).toBe(true);
  });
});
