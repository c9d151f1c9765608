/**
 * Resize gradient rule against central finite differences of the float64 reference Resize, run in
 * onnxruntime. Cases cover the torchvision FPN situation (nearest with sizes giving non-integer ratios such
 * as 7→13 and 13→25), both torch-export conventions and linear mode.
 */
import { rules } from '../../src/autodiff/rules/resize';
import { GraphError } from '../../src/errors';
import { DataType } from '../../src/onnx';
import { buildRuleGraph } from '../helpers/rule-harness';
import { createSession } from '../../src/runtime';
import { ops } from '../helpers/reference/resize';
import { formatReport } from '../helpers/grad-check';
import { checkOpCase } from '../helpers/tiny-models';
import { checkRule, relErr, worstGrad, type CaseInput } from './rule-check';

const resize = rules[0];

interface ResizeCase {
  name: string;
  x: number[];
  attributes: Record<string, string | number | number[]>;
  /** Sizes (for `axes` when given) or scales (full rank). */
  sizes?: number[];
  scales?: number[];
  roi?: number[];
  opset?: number;
}

const NEAREST_TORCH = {
  mode: 'nearest',
  coordinate_transformation_mode: 'asymmetric',
  nearest_mode: 'floor',
};

const cases: ResizeCase[] = [
  {
    name: 'nearest 7→13 sizes, half_pixel/round_prefer_floor (default)',
    x: [3, 7, 7],
    attributes: { axes: [2, 3] },
    sizes: [13, 13],
    opset: 18,
  },
  {
    name: 'nearest 13→25 sizes, default modes',
    x: [2, 13, 13],
    attributes: { axes: [2, 3] },
    sizes: [25, 25],
    opset: 18,
  },
  {
    name: 'nearest 7x9→13x17 sizes, asymmetric/floor (torch export)',
    x: [2, 7, 9],
    attributes: { ...NEAREST_TORCH, axes: [2, 3] },
    sizes: [13, 17],
    opset: 18,
  },
  {
    name: 'nearest 13→25 sizes, asymmetric/floor',
    x: [2, 13, 13],
    attributes: { ...NEAREST_TORCH, axes: [2, 3] },
    sizes: [25, 25],
    opset: 18,
  },
  {
    name: 'nearest 2x scales, asymmetric/floor (fast path)',
    x: [3, 5, 6],
    attributes: NEAREST_TORCH,
    scales: [1, 1, 2, 2],
    opset: 13,
  },
  {
    name: 'nearest 2x scales, default modes (fast path)',
    x: [3, 5, 6],
    attributes: { mode: 'nearest' },
    scales: [1, 1, 2, 2],
    opset: 17,
  },
  {
    name: 'nearest scales [1,1,3,2]',
    x: [2, 4, 5],
    attributes: { mode: 'nearest' },
    scales: [1, 1, 3, 2],
    opset: 17,
  },
  {
    name: 'nearest scale 1.5 (7→10)',
    x: [2, 7, 7],
    attributes: { mode: 'nearest' },
    scales: [1, 1, 1.5, 1.5],
    opset: 17,
  },
  {
    name: 'nearest downsample 13→7 sizes',
    x: [2, 13, 13],
    attributes: { axes: [2, 3] },
    sizes: [7, 7],
    opset: 18,
  },
  {
    name: 'nearest align_corners/round_prefer_ceil 5→8',
    x: [2, 5, 5],
    attributes: {
      coordinate_transformation_mode: 'align_corners',
      nearest_mode: 'round_prefer_ceil',
      axes: [2, 3],
    },
    sizes: [8, 8],
    opset: 18,
  },
  {
    name: 'nearest pytorch_half_pixel/ceil 6→9',
    x: [2, 6, 6],
    attributes: { coordinate_transformation_mode: 'pytorch_half_pixel', nearest_mode: 'ceil', axes: [2, 3] },
    sizes: [9, 9],
    opset: 18,
  },
  {
    name: 'nearest tf_crop_and_resize with roi (extrapolation)',
    x: [2, 6, 6],
    attributes: { coordinate_transformation_mode: 'tf_crop_and_resize', axes: [2, 3] },
    sizes: [5, 7],
    roi: [0.3, -0.2, 0.9, 0.7],
    opset: 18,
  },
  {
    name: 'nearest half_pixel_symmetric 5→8',
    x: [2, 5, 5],
    attributes: { coordinate_transformation_mode: 'half_pixel_symmetric', axes: [2, 3] },
    sizes: [8, 8],
    opset: 19,
  },
  {
    name: 'linear 2x scales, half_pixel',
    x: [2, 5, 6],
    attributes: { mode: 'linear' },
    scales: [1, 1, 2, 2],
    opset: 17,
  },
  {
    name: 'linear 7→13 align_corners',
    x: [2, 7, 7],
    attributes: { mode: 'linear', coordinate_transformation_mode: 'align_corners', axes: [2, 3] },
    sizes: [13, 13],
    opset: 18,
  },
  {
    name: 'linear 5x6→8x9 pytorch_half_pixel',
    x: [2, 5, 6],
    attributes: { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel', axes: [2, 3] },
    sizes: [8, 9],
    opset: 18,
  },
  {
    name: 'linear downsample 9→4 asymmetric',
    x: [2, 9, 9],
    attributes: { mode: 'linear', coordinate_transformation_mode: 'asymmetric', axes: [2, 3] },
    sizes: [4, 4],
    opset: 18,
  },
];

function constInput(name: string, dataType: DataType, values: number[]): CaseInput {
  return { name, shape: [values.length], constant: { dataType, values } };
}

describe('Resize gradient', () => {
  test.each(cases)('$name', async (rc) => {
    const batched = rc.scales !== undefined || rc.attributes.axes !== undefined;
    const r = await checkRule(resize, ops, {
      opType: 'Resize',
      attributes: rc.attributes,
      opset: rc.opset,
      inputs: [
        { name: 'x', shape: ['N', ...rc.x] },
        rc.roi ? constInput('roi', DataType.FLOAT, rc.roi) : undefined,
        rc.scales ? constInput('scales', DataType.FLOAT, rc.scales) : undefined,
        rc.sizes ? constInput('sizes', DataType.INT64, rc.sizes) : undefined,
      ],
      needs: [true, false, false, false],
      batches: batched ? [1, 2] : [2],
      maxChecks: 300,
    });
    console.log(`Resize ${rc.name}: forward ${r.forwardError.toExponential(2)}, grads`, r.gradErrors);
    expect(r.forwardError).toBeLessThan(1e-6);
    expect(worstGrad(r)).toBeLessThan(1e-5);
  });

  test('integer 2x nearest uses Reshape + ReduceSum, 7→13 uses MatMuls', () => {
    const build = (x: number, y: number) =>
      buildRuleGraph(
        {
          opType: 'Resize',
          attributes: { ...NEAREST_TORCH, axes: [2, 3] },
          opset: 18,
          inputs: [
            { name: 'x', shape: ['N', 4, x, x] },
            undefined,
            undefined,
            {
              name: 'sizes',
              shape: [2],
              value: {
                name: 'sizes',
                dataType: DataType.INT64,
                dims: [2],
                data: BigInt64Array.from([BigInt(y), BigInt(y)]),
              },
            },
          ],
          outputs: [['N', 4, y, y]],
          needs: [true, false, false, false],
        },
        resize,
      ).model.graph.nodes.map((n) => n.opType);
    expect(build(7, 14)).toEqual(expect.arrayContaining(['Reshape', 'ReduceSum']));
    expect(build(7, 14)).not.toContain('MatMul');
    expect(build(7, 13).filter((t) => t === 'MatMul')).toHaveLength(2);
  });

  test('sizes computed at run time (torchvision FPN export): output shape taken from static shapes', async () => {
    // sizes is a graph input here, as when it comes from Shape→Gather→Concat; the rule reads the static
    // output shape instead of the sizes value.
    const g = buildRuleGraph(
      {
        opType: 'Resize',
        attributes: NEAREST_TORCH,
        opset: 13,
        inputs: [
          { name: 'x', shape: [2, 3, 7, 7] },
          undefined,
          undefined,
          { name: 'sizes', shape: [4], dataType: DataType.INT64 },
        ],
        outputs: [[2, 3, 13, 13]],
        needs: [true, false, false, false],
      },
      resize,
    );
    const s = await createSession(g.model);
    const x = Float32Array.from({ length: 2 * 3 * 49 }, (_, i) => Math.sin(i));
    const dy = Float32Array.from({ length: 2 * 3 * 169 }, (_, i) => Math.cos(i * 0.7));
    const out = await s.run({
      x: { data: x, dims: [2, 3, 7, 7] },
      sizes: { data: BigInt64Array.from([2n, 3n, 13n, 13n]), dims: [4] },
      dy0: { data: dy, dims: [2, 3, 13, 13] },
    });
    await s.release();
    // Reference adjoint: dX[h, w] = Σ dY[i, j] over i, j whose floor source is (h, w).
    const src = (i: number) => Math.floor((i * 7) / 13);
    const want = new Float64Array(2 * 3 * 49);
    for (let p = 0; p < 6; p++)
      for (let i = 0; i < 13; i++)
        for (let j = 0; j < 13; j++) want[p * 49 + src(i) * 7 + src(j)] += dy[p * 169 + i * 13 + j];
    const err = relErr(out[g.inputGradOutputs[0] as string].data as Float32Array, want);
    console.log(`Resize run-time sizes 7→13: rel. error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-6);
  });

  test.each([
    [{ mode: 'cubic' }, /cubic Resize is not supported/],
    [{ mode: 'linear', antialias: 1 }, /antialiased Resize is not supported/],
  ] as const)('refuses %j', (attributes, message) => {
    const build = () =>
      buildRuleGraph(
        {
          opType: 'Resize',
          name: 'fpn.up',
          attributes,
          opset: 18,
          inputs: [
            { name: 'x', shape: ['N', 2, 4, 4] },
            undefined,
            {
              name: 'scales',
              shape: [4],
              value: {
                name: 'scales',
                dataType: DataType.FLOAT,
                dims: [4],
                data: Float32Array.from([1, 1, 2, 2]),
              },
            },
          ],
          outputs: [['N', 2, 8, 8]],
          needs: [true, false, false],
        },
        resize,
      );
    expect(build).toThrow(GraphError);
    expect(build).toThrow(message);
    expect(build).toThrow(/Resize 'fpn.up'/);
  });
});

describe('Resize through the autodiff driver', () => {
  test.each([
    ['nearest 7→13 half_pixel', { mode: 'nearest' }, [1, 2, 13, 13]],
    ['nearest 6x5→12x10 asymmetric/floor', NEAREST_TORCH, [1, 2, 12, 10]],
    [
      'linear 7→11 pytorch_half_pixel',
      { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' },
      [1, 2, 11, 11],
    ],
  ] as const)('%s (checkOpCase)', async (_name, attributes, sizes) => {
    const x = sizes[2] === 12 ? [1, 2, 6, 5] : [1, 2, 7, 7];
    const r = await checkOpCase({
      name: `driver-resize-${_name}`,
      opType: 'Resize',
      inputs: [
        { name: 'x', shape: x, role: 'input' },
        null,
        null,
        { name: 'sizes', shape: [4], dtype: DataType.INT64, values: [...sizes] },
      ],
      attributes: { ...attributes },
      opset: 13,
    });
    console.log(`driver Resize ${_name}: ${formatReport(r)}`);
    expect(r.params[0].ok).toBe(true);
  });
});
