/**
 * MatMul and Gemm gradient rules against central finite differences of the float64 reference, run in
 * onnxruntime: numpy 1-D edge cases, batch broadcasting on every side, every Gemm transA/transB combination
 * with alpha/beta and each C broadcast form.
 */
import { rules } from '../../src/autodiff/rules/linear';
import { attr, type Dim } from '../../src/onnx';
import { ops } from '../helpers/reference/linear';
import { formatReport } from '../helpers/grad-check';
import { checkOpCase } from '../helpers/tiny-models';
import { checkRule, worstGrad, type CaseInput } from './rule-check';

const matMul = rules.find((r) => r.opType === 'MatMul')!;
const gemm = rules.find((r) => r.opType === 'Gemm')!;
const dynamic = (s: Dim[]) => s.includes('N');

const matMulCases: [string, Dim[], Dim[]][] = [
  ['2-D with dynamic rows', ['N', 4], [4, 5]],
  ['3-D by matrix (linear layer over a sequence)', ['N', 3, 4], [4, 5]],
  ['batch broadcast [N,1,3,4]·[2,4,5]', ['N', 1, 3, 4], [2, 4, 5]],
  ['batch broadcast [2,3,4]·[N,1,4,5]', [2, 3, 4], ['N', 1, 4, 5]],
  ['equal batches [N,3,4]·[N,4,2]', ['N', 3, 4], ['N', 4, 2]],
  ['matrix by batched [3,4]·[N,4,2]', [3, 4], ['N', 4, 2]],
  ['1-D by batched [4]·[N,4,5]', [4], ['N', 4, 5]],
  ['batched by 1-D [N,3,4]·[4]', ['N', 3, 4], [4]],
  ['1-D by matrix [4]·[4,5]', [4], [4, 5]],
  ['matrix by 1-D [3,4]·[4]', [3, 4], [4]],
  ['1-D by 1-D (dot)', [4], [4]],
];

describe('MatMul gradient', () => {
  test.each(matMulCases)('%s', async (_name, a, b) => {
    const r = await checkRule(matMul, ops, {
      opType: 'MatMul',
      inputs: [
        { name: 'a', shape: a },
        { name: 'b', shape: b },
      ],
      batches: dynamic(a) || dynamic(b) ? [1, 2] : [2],
    });
    console.log(`MatMul ${_name}: forward ${r.forwardError.toExponential(2)}, grads`, r.gradErrors);
    expect(r.forwardError).toBeLessThan(1e-5);
    expect(worstGrad(r)).toBeLessThan(1e-4);
  });
});

const cShapes: [string, Dim[] | undefined][] = [
  ['C [N] (bias)', [5]],
  ['C [M, N]', ['N', 5]],
  ['C [1, N]', [1, 5]],
  ['C [M, 1]', ['N', 1]],
  ['C scalar', []],
  ['no C', undefined],
];

describe('Gemm gradient', () => {
  const combos = [0, 1].flatMap((ta) => [0, 1].map((tb) => [ta, tb] as const));
  test.each(combos)('transA=%i transB=%i, alpha 0.5, beta 2, C [N]', async (ta, tb) => {
    const a: Dim[] = ta ? [4, 'N'] : ['N', 4];
    const b: Dim[] = tb ? [5, 4] : [4, 5];
    const r = await checkRule(gemm, ops, {
      opType: 'Gemm',
      attributes: { transA: ta, transB: tb, alpha: attr.float(0.5), beta: attr.float(2) },
      inputs: [
        { name: 'a', shape: a },
        { name: 'b', shape: b },
        { name: 'c', shape: [5] },
      ],
      batches: [1, 3],
    });
    console.log(
      `Gemm transA=${ta} transB=${tb}: forward ${r.forwardError.toExponential(2)}, grads`,
      r.gradErrors,
    );
    expect(r.forwardError).toBeLessThan(1e-5);
    expect(worstGrad(r)).toBeLessThan(1e-4);
  });

  test.each(cShapes)('%s', async (_name, c) => {
    const inputs: (CaseInput | undefined)[] = [
      { name: 'a', shape: ['N', 4] },
      { name: 'b', shape: [5, 4] },
      c ? { name: 'c', shape: c } : undefined,
    ];
    const r = await checkRule(gemm, ops, {
      opType: 'Gemm',
      attributes: { transB: 1, beta: attr.float(1.5) },
      inputs,
      batches: [1, 3],
    });
    console.log(`Gemm ${_name}: forward ${r.forwardError.toExponential(2)}, grads`, r.gradErrors);
    expect(r.forwardError).toBeLessThan(1e-5);
    expect(worstGrad(r)).toBeLessThan(1e-4);
  });

  test('beta 0 gives C a zero gradient', async () => {
    const r = await checkRule(gemm, ops, {
      opType: 'Gemm',
      attributes: { beta: attr.float(0) },
      inputs: [
        { name: 'a', shape: ['N', 4] },
        { name: 'b', shape: [4, 5] },
        { name: 'c', shape: [5] },
      ],
      batches: [2],
    });
    expect(worstGrad(r)).toBeLessThan(1e-4);
    expect(Object.keys(r.gradErrors)).toContain('c@N=2');
  });
});

describe('MatMul and Gemm through the autodiff driver', () => {
  test('batched MatMul with broadcasting (checkOpCase)', async () => {
    const r = await checkOpCase({
      name: 'driver-matmul',
      opType: 'MatMul',
      inputs: [
        { name: 'a', shape: [2, 1, 3, 4], role: 'input' },
        { name: 'b', shape: [3, 4, 2] },
      ],
    });
    console.log(`driver MatMul: ${formatReport(r)}`);
    expect(r.params.every((p) => p.ok)).toBe(true);
  });

  test('Gemm transA=1 transB=1 alpha/beta, C [1, N] (checkOpCase)', async () => {
    const r = await checkOpCase({
      name: 'driver-gemm',
      opType: 'Gemm',
      inputs: [
        { name: 'a', shape: [4, 3], role: 'input' },
        { name: 'b', shape: [5, 4] },
        { name: 'c', shape: [1, 5] },
      ],
      attributes: { transA: 1, transB: 1, alpha: attr.float(0.7), beta: attr.float(1.3) },
    });
    console.log(`driver Gemm: ${formatReport(r)}`);
    expect(r.params.every((p) => p.ok)).toBe(true);
  });
});
