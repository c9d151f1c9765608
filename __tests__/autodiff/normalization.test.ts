/**
 * BatchNormalization (inference form) gradient rule against central finite differences of the float64
 * reference, for X, scale, B, mean and var, with the batch dynamic.
 */
import { rules } from '../../src/autodiff/rules/normalization';
import { GraphError } from '../../src/errors';
import type { Dim } from '../../src/onnx';
import { buildRuleGraph } from '../helpers/rule-harness';
import type { Rng } from '../../src/util/rng';
import { ops } from '../helpers/reference/normalization';
import { formatReport } from '../helpers/grad-check';
import { checkOpCase } from '../helpers/tiny-models';
import { checkRule, worstGrad } from './rule-check';

const bn = rules[0];
const positive = (n: number, rng: Rng) => Array.from({ length: n }, () => rng.uniform(0.2, 1.5));
const offCentre = (n: number, rng: Rng) => Array.from({ length: n }, () => rng.uniform(-2, 2));

describe('BatchNormalization gradient', () => {
  test.each([
    ['NCHW', ['N', 3, 5, 4]],
    ['NC (after Flatten)', ['N', 4]],
    ['NCL (1-D)', ['N', 2, 7]],
  ] as [string, Dim[]][])('%s: X, scale, B, mean, var', async (_name, x) => {
    const c = x[1] as number;
    const r = await checkRule(bn, ops, {
      opType: 'BatchNormalization',
      attributes: { epsilon: 1e-3 },
      inputs: [
        { name: 'x', shape: x, init: offCentre },
        { name: 'scale', shape: [c] },
        { name: 'bias', shape: [c] },
        { name: 'mean', shape: [c] },
        { name: 'var', shape: [c], init: positive },
      ],
      batches: [1, 2],
      h: 1e-4,
    });
    console.log(
      `BatchNormalization ${_name}: forward ${r.forwardError.toExponential(2)}, grads`,
      r.gradErrors,
    );
    expect(r.forwardError).toBeLessThan(1e-5);
    expect(worstGrad(r)).toBeLessThan(1e-4);
    expect(Object.keys(r.gradErrors)).toHaveLength(10);
  });

  test('only X and scale asked for: no work for mean/var', async () => {
    const r = await checkRule(bn, ops, {
      opType: 'BatchNormalization',
      inputs: [
        { name: 'x', shape: ['N', 3, 4, 4] },
        { name: 'scale', shape: [3] },
        { name: 'bias', shape: [3] },
        { name: 'mean', shape: [3] },
        { name: 'var', shape: [3], init: positive },
      ],
      needs: [true, true, false, false, false],
      batches: [2],
    });
    expect(Object.keys(r.gradErrors).sort()).toEqual(['scale@N=2', 'x@N=2']);
    expect(worstGrad(r)).toBeLessThan(1e-4);
  });

  test('training_mode=1 is refused with a message naming the node', () => {
    const build = () =>
      buildRuleGraph(
        {
          opType: 'BatchNormalization',
          name: 'layer1.bn1',
          attributes: { training_mode: 1 },
          inputs: ['x', 's', 'b', 'm', 'v'].map((name, i) => ({
            name,
            shape: i === 0 ? ['N', 3, 4, 4] : [3],
          })),
          outputs: [['N', 3, 4, 4]],
        },
        bn,
      );
    expect(build).toThrow(GraphError);
    expect(build).toThrow(/BatchNormalization 'layer1.bn1'.*training-mode/);
  });
});

describe('BatchNormalization through the autodiff driver', () => {
  test('X, scale, B, mean, var (checkOpCase)', async () => {
    const r = await checkOpCase({
      name: 'driver-bn',
      opType: 'BatchNormalization',
      inputs: [
        { name: 'x', shape: [2, 3, 4, 5], role: 'input', range: [-2, 2] },
        { name: 'scale', shape: [3] },
        { name: 'bias', shape: [3] },
        { name: 'mean', shape: [3] },
        { name: 'var', shape: [3], range: [0.3, 1.5] },
      ],
      opset: 15,
    });
    console.log(`driver BatchNormalization: ${formatReport(r)}`);
    expect(r.params.every((p) => p.ok)).toBe(true);
  });
});
