/**
 * Conv gradient rule against central finite differences of the float64 reference Conv, run in onnxruntime
 * with the batch dynamic (the same gradient graph runs with batch 1 and 2).
 */
import {
  convShape,
  defaultWeightGradMethod,
  emitConvInputGrad,
  emitConvWeightGrad,
  rules,
  type ConvInputGradMethod,
  type ConvWeightGradMethod,
} from '../../src/autodiff/rules/conv';
import { GraphError } from '../../src/errors';
import { buildRuleGraph } from '../helpers/rule-harness';
import { DataType, GraphBuilder, floatTensor } from '../../src/onnx';
import { createRng, type Rng } from '../../src/util/rng';
import { checkGradients, formatReport } from '../helpers/grad-check';
import { ops } from '../helpers/reference/conv';
import { checkOpCase } from '../helpers/tiny-models';
import { checkRule, worstGrad, type RuleCase } from './rule-check';

const conv = rules.find((r) => r.opType === 'Conv')!;

/** `w(name, dims, scale?)`: a trainable initializer with seeded values uniform in ±scale. */
function uniformInitializer(b: GraphBuilder, rng: Rng, defaultScale: number) {
  return (name: string, dims: number[], scale = defaultScale): string =>
    b.initializer(
      floatTensor(
        name,
        dims,
        Array.from({ length: dims.reduce((a, c) => a * c, 1) }, () => rng.uniform(-scale, scale)),
      ),
      { exactName: true },
    );
}

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  bias?: boolean;
  attributes?: RuleCase['attributes'];
  /** Finite-difference a random sample of this many elements per input (large cases). */
  maxChecks?: number;
}

const cases: ConvCase[] = [
  {
    name: '3x3 stride 1 pad 1 with bias',
    x: [3, 7, 7],
    w: [4, 3, 3, 3],
    bias: true,
    attributes: { pads: [1, 1, 1, 1] },
  },
  {
    name: 'stride 2, odd sizes 9x7',
    x: [3, 9, 7],
    w: [4, 3, 3, 3],
    bias: true,
    attributes: { strides: [2, 2], pads: [1, 1, 1, 1] },
  },
  {
    name: 'stride 2, even size 8x8 (unused last row)',
    x: [2, 8, 8],
    w: [3, 2, 3, 3],
    attributes: { strides: [2, 2] },
  },
  {
    name: 'asymmetric pads [0,1,2,0] stride 2',
    x: [2, 8, 7],
    w: [3, 2, 3, 3],
    bias: true,
    attributes: { strides: [2, 2], pads: [0, 1, 2, 0] },
  },
  {
    name: 'auto_pad SAME_UPPER stride 2',
    x: [2, 7, 8],
    w: [3, 2, 3, 3],
    attributes: { auto_pad: 'SAME_UPPER', strides: [2, 2] },
  },
  {
    name: 'auto_pad SAME_LOWER stride 2',
    x: [2, 7, 8],
    w: [3, 2, 4, 4],
    attributes: { auto_pad: 'SAME_LOWER', strides: [2, 2] },
  },
  {
    name: 'auto_pad VALID stride 2',
    x: [2, 8, 9],
    w: [3, 2, 3, 3],
    attributes: { auto_pad: 'VALID', strides: [2, 2] },
  },
  {
    name: 'dilation 2, pad 2',
    x: [2, 9, 9],
    w: [3, 2, 3, 3],
    bias: true,
    attributes: { dilations: [2, 2], pads: [2, 2, 2, 2] },
  },
  {
    name: 'dilation 2, stride 2, asymmetric pads',
    x: [2, 10, 9],
    w: [3, 2, 3, 3],
    attributes: { dilations: [2, 2], strides: [2, 2], pads: [1, 2, 2, 1] },
  },
  {
    name: 'groups 2',
    x: [4, 6, 6],
    w: [6, 2, 3, 3],
    bias: true,
    attributes: { group: 2, pads: [1, 1, 1, 1] },
  },
  {
    name: 'depthwise stride 2',
    x: [4, 7, 7],
    w: [4, 1, 3, 3],
    bias: true,
    attributes: { group: 4, strides: [2, 2], pads: [1, 1, 1, 1] },
  },
  {
    name: 'depthwise multiplier 2',
    x: [3, 6, 5],
    w: [6, 1, 3, 3],
    attributes: { group: 3, pads: [1, 1, 1, 1] },
  },
  {
    name: 'depthwise 5x5 stride 2 pad 2 (MobileNetV3)',
    x: [6, 9, 8],
    w: [6, 1, 5, 5],
    bias: true,
    attributes: { group: 6, strides: [2, 2], pads: [2, 2, 2, 2] },
  },
  { name: '1x1 stride 1', x: [6, 5, 5], w: [5, 6, 1, 1], bias: true },
  {
    name: '1x1 stride 2 on odd size (ResNet downsample)',
    x: [6, 7, 7],
    w: [5, 6, 1, 1],
    attributes: { strides: [2, 2] },
  },
  {
    name: '7x7 stride 2 pad 3 (stem)',
    x: [3, 11, 12],
    w: [4, 3, 7, 7],
    attributes: { strides: [2, 2], pads: [3, 3, 3, 3] },
    maxChecks: 200,
  },
  {
    name: '16 input channels (per-tap GEMMs), stride 2, odd size',
    x: [16, 7, 9],
    w: [4, 16, 3, 3],
    bias: true,
    attributes: { strides: [2, 2], pads: [1, 1, 1, 1] },
    maxChecks: 250,
  },
  {
    name: 'groups 2 with 16 channels per group',
    x: [32, 5, 5],
    w: [4, 16, 3, 3],
    attributes: { group: 2, pads: [0, 1, 1, 0] },
    maxChecks: 250,
  },
  {
    name: '5x5 kernel on 2 channels (swapped-conv), stride 2',
    x: [2, 9, 8],
    w: [3, 2, 5, 5],
    attributes: { strides: [2, 2], pads: [2, 1, 2, 2] },
  },
  {
    name: 'rectangular kernel 1x3, strides [1,2]',
    x: [2, 5, 9],
    w: [3, 2, 1, 3],
    attributes: { strides: [1, 2], pads: [0, 1, 0, 1] },
  },
  {
    name: '1-D conv stride 2',
    x: [3, 10],
    w: [2, 3, 3],
    bias: true,
    attributes: { strides: [2], pads: [1, 0] },
  },
  {
    name: 'kernel_shape attribute given',
    x: [2, 6, 6],
    w: [2, 2, 3, 3],
    attributes: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
  },
];

describe('Conv gradient', () => {
  test.each(cases)('$name', async (cc) => {
    const c: RuleCase = {
      opType: 'Conv',
      attributes: cc.attributes,
      inputs: [
        { name: 'x', shape: ['N', ...cc.x] },
        { name: 'w', shape: cc.w },
        cc.bias ? { name: 'b', shape: [cc.w[0]] } : undefined,
      ],
      batches: [1, 2],
      maxChecks: cc.maxChecks,
    };
    const r = await checkRule(conv, ops, c);
    console.log(`Conv ${cc.name}: forward ${r.forwardError.toExponential(2)}, grads`, r.gradErrors);
    expect(r.forwardError).toBeLessThan(1e-5);
    expect(worstGrad(r)).toBeLessThan(1e-4);
    expect(Object.keys(r.gradErrors)).toHaveLength((cc.bias ? 3 : 2) * 2);
  });

  test('only the requested gradients are emitted', () => {
    const g = buildRuleGraph(
      {
        opType: 'Conv',
        attributes: { pads: [1, 1, 1, 1] },
        inputs: [
          { name: 'x', shape: ['N', 2, 5, 5] },
          { name: 'w', shape: [3, 2, 3, 3] },
        ],
        outputs: [['N', 3, 5, 5]],
        needs: [false, true],
      },
      conv,
    );
    const types = g.model.graph.nodes.map((n) => n.opType);
    expect(types).not.toContain('ConvTranspose');
    expect(g.inputGradOutputs[0]).toBeUndefined();
    expect(g.inputGradOutputs[1]).toBeDefined();
  });

  test('a dynamic spatial size is a clear error naming the node', () => {
    expect(() =>
      buildRuleGraph(
        {
          opType: 'Conv',
          name: 'body.conv1',
          inputs: [
            { name: 'x', shape: ['N', 2, 'H', 5] },
            { name: 'w', shape: [3, 2, 3, 3] },
          ],
          outputs: [['N', 3, null, 3]],
        },
        conv,
      ),
    ).toThrow(GraphError);
    expect(() =>
      buildRuleGraph(
        {
          opType: 'Conv',
          name: 'body.conv1',
          inputs: [
            { name: 'x', shape: ['N', 2, 'H', 5] },
            { name: 'w', shape: [3, 2, 3, 3] },
          ],
          outputs: [['N', 3, null, 3]],
        },
        conv,
      ),
    ).toThrow(/Conv 'body.conv1'.*axis 2/);
  });
});

describe('every Conv gradient formulation', () => {
  const formulations: [ConvInputGradMethod, ConvWeightGradMethod][] = [
    ['conv-transpose', 'im2col'],
    ['flipped-conv', 'im2col-gemm'],
    ['conv-transpose', 'swapped-conv'],
    ['flipped-conv', 'im2col-folded'],
  ];
  test.each(formulations)('dX %s, dW %s', async (dxMethod, dwMethod) => {
    const r = await checkRule(
      {
        opType: 'Conv',
        rule: (ctx) => {
          const s = convShape(ctx);
          const dY = ctx.dY[0] as string;
          return [
            emitConvInputGrad(ctx, dY, 'w', s, dxMethod),
            emitConvWeightGrad(ctx, 'x', dY, s, dwMethod),
          ];
        },
      },
      ops,
      {
        opType: 'Conv',
        attributes: { pads: [1, 0, 2, 1], dilations: [1, 2] },
        inputs: [
          { name: 'x', shape: ['N', 3, 7, 8] },
          { name: 'w', shape: [4, 3, 3, 3] },
        ],
        batches: [1, 2],
      },
    );
    console.log(`Conv dX ${dxMethod} dW ${dwMethod}: grads`, r.gradErrors);
    expect(worstGrad(r)).toBeLessThan(1e-4);
  });

  test.each([
    [
      'groups 2, stride 2, asymmetric pads, odd sizes',
      { group: 2, strides: [2, 2], pads: [1, 0, 0, 1] },
      [6, 2, 3, 3],
      4,
    ],
    ['1x1 stride 2', { strides: [2, 2] }, [5, 4, 1, 1], 4],
    ['3x3 dilation 2', { pads: [2, 2, 2, 2], dilations: [2, 2] }, [3, 5, 3, 3], 5],
  ] as [string, Record<string, number | number[]>, number[], number][])(
    'dW im2col-folded (batch inside the GEMM): %s',
    async (_name, attributes, w, cin) => {
      const r = await checkRule(
        {
          opType: 'Conv',
          rule: (ctx) => {
            const s = convShape(ctx);
            const dY = ctx.dY[0] as string;
            return [emitConvInputGrad(ctx, dY, 'w', s), emitConvWeightGrad(ctx, 'x', dY, s, 'im2col-folded')];
          },
        },
        ops,
        {
          opType: 'Conv',
          attributes: { ...attributes },
          inputs: [
            { name: 'x', shape: ['N', cin, 7, 9] },
            { name: 'w', shape: [...w] },
          ],
          batches: [1, 3],
        },
      );
      expect(worstGrad(r)).toBeLessThan(1e-4);
    },
  );

  test.each([
    ['3x3 512→512 at 7x7', [512, 512, 3, 3], 1, 'im2col-folded', 7],
    ['1x1 2048→512 at 7x7', [512, 2048, 1, 1], 1, 'im2col-folded', 7],
    ['3x3 128→128 at 28x28', [128, 128, 3, 3], 1, 'per-tap', 28],
    ['1x1 256→64 at 56x56', [64, 256, 1, 1], 1, 'per-tap', 56],
    ['7x7 stem 3→64', [64, 3, 7, 7], 1, 'swapped-conv'],
    ['3x3 on 8 channels', [64, 8, 3, 3], 1, 'im2col'],
    ['depthwise 3x3', [32, 1, 3, 3], 32, 'im2col'],
  ] as [string, number[], number, string, number?][])(
    'the rule picks the measured-fastest dW method: %s → %s',
    (_name, w, group, want, size = 12) => {
      let got = '';
      buildRuleGraph(
        {
          opType: 'Conv',
          attributes: { group },
          inputs: [
            { name: 'x', shape: ['N', w[1] * group, size, size] },
            { name: 'w', shape: [...w] },
          ],
          outputs: [['N', w[0], size - w[2] + 1, size - w[3] + 1]],
        },
        {
          opType: 'Conv',
          rule: (ctx) => {
            got = defaultWeightGradMethod(convShape(ctx));
            return [];
          },
        },
      );
      expect(got).toBe(want);
    },
  );

  test('1x1 conv with pads 1 (adjoint pads negative) falls back to ConvTranspose', async () => {
    const r = await checkRule(conv, ops, {
      opType: 'Conv',
      attributes: { pads: [1, 1, 1, 1] },
      inputs: [
        { name: 'x', shape: ['N', 3, 4, 5] },
        { name: 'w', shape: [2, 3, 1, 1] },
      ],
      batches: [2],
    });
    expect(worstGrad(r)).toBeLessThan(1e-4);
  });
});

const convTranspose = rules.find((r) => r.opType === 'ConvTranspose')!;

const transposeCases: ConvCase[] = [
  {
    name: 'stride 2, output_padding 1, pads 1',
    x: [3, 4, 5],
    w: [3, 2, 3, 3],
    bias: true,
    attributes: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0] },
  },
  {
    name: 'asymmetric pads, dilation 2',
    x: [2, 4, 4],
    w: [2, 3, 3, 3],
    attributes: { pads: [0, 1, 2, 0], dilations: [2, 2] },
  },
  {
    name: 'groups 2, stride 2',
    x: [4, 3, 4],
    w: [4, 2, 2, 2],
    bias: true,
    attributes: { group: 2, strides: [2, 2] },
  },
];

describe('ConvTranspose gradient', () => {
  test.each(transposeCases)('$name', async (cc) => {
    const r = await checkRule(convTranspose, ops, {
      opType: 'ConvTranspose',
      attributes: cc.attributes,
      inputs: [
        { name: 'x', shape: ['N', ...cc.x] },
        { name: 'w', shape: cc.w },
        cc.bias
          ? { name: 'b', shape: [cc.w[1] * ((cc.attributes?.group as number | undefined) ?? 1)] }
          : undefined,
      ],
      batches: [1, 2],
    });
    console.log(`ConvTranspose ${cc.name}: forward ${r.forwardError.toExponential(2)}, grads`, r.gradErrors);
    expect(r.forwardError).toBeLessThan(1e-5);
    expect(worstGrad(r)).toBeLessThan(1e-4);
  });
});

describe('through the autodiff driver', () => {
  test('Conv with asymmetric pads, stride 2 (checkOpCase)', async () => {
    const r = await checkOpCase({
      name: 'conv-asym',
      opType: 'Conv',
      inputs: [
        { name: 'x', shape: [2, 3, 7, 8], role: 'input' },
        { name: 'w', shape: [4, 3, 3, 3] },
        { name: 'b', shape: [4] },
      ],
      attributes: { strides: [2, 2], pads: [1, 0, 0, 1] },
    });
    console.log(`driver Conv: ${formatReport(r)}`);
  });

  test.each([
    ['opset 13: Hardswish exported as x·HardSigmoid(x)', 13],
    ['opset 17: HardSwish', 17],
  ] as const)('mini MobileNetV3 block, dynamic batch, %s', async (_name, opset) => {
    // torchvision's InvertedResidual with squeeze-excitation: 1x1 expand → Hardswish → depthwise 3x3 →
    // SE (GlobalAveragePool → 1x1 → Relu → 1x1 → HardSigmoid α=1/6 → Mul broadcast over H, W) →
    // Hardswish → 1x1 project → residual Add; loss = weighted sum of the block's output.
    const rng = createRng(`mini-mobilenet-${opset}`);
    const b = new GraphBuilder({ opset });
    const x = b.input('x', DataType.FLOAT, ['N', 4, 7, 5]);
    const w = uniformInitializer(b, rng, 0.4);
    const hardSwish = (t: string): string =>
      opset >= 14
        ? b.op('HardSwish', [t])
        : b.op('Mul', [t, b.op('HardSigmoid', [t], { alpha: 1 / 6, beta: 0.5 })]);
    // Expand weights scaled up so Hardswish inputs spread past ±3 (its flat parts), not only its curve.
    const expand = hardSwish(b.op('Conv', [x, w('w_expand', [12, 4, 1, 1], 2.5), w('b_expand', [12])]));
    const dw = b.op('Conv', [expand, w('w_dw', [12, 1, 3, 3]), w('b_dw', [12])], {
      group: 12,
      pads: [1, 1, 1, 1],
    });
    const squeeze = b.op('Relu', [
      b.op('Conv', [b.op('GlobalAveragePool', [dw]), w('w_fc1', [4, 12, 1, 1]), w('b_fc1', [4])]),
    ]);
    const scale = b.op(
      'HardSigmoid',
      [b.op('Conv', [squeeze, w('w_fc2', [12, 4, 1, 1], 3), w('b_fc2', [12], 2)])],
      {
        alpha: 1 / 6,
      },
    );
    const excited = hardSwish(b.op('Mul', [scale, dw]));
    const project = b.op('Conv', [excited, w('w_project', [4, 12, 1, 1]), w('b_project', [4])]);
    const out = b.op('Add', [project, x]);
    const r = w('r', [1, 4, 7, 5], 1);
    const loss = b.op('ReduceSum', [b.op('Mul', [out, r])], { keepdims: 0 }, { outputs: ['loss'] });
    b.output(loss, DataType.FLOAT, []);
    const params = ['w_expand', 'b_expand', 'w_dw', 'b_dw', 'w_fc1', 'b_fc1', 'w_fc2', 'b_fc2'];
    params.push('w_project', 'b_project');
    const model = b.build();
    for (const batch of [1, 2]) {
      const feeds = {
        x: {
          data: Float32Array.from({ length: batch * 4 * 7 * 5 }, () => rng.uniform(-1, 1)),
          dims: [batch, 4, 7, 5],
        },
      };
      const rep = await checkGradients({ model, loss, params, feeds });
      console.log(`mini MobileNetV3 block opset ${opset} batch ${batch}: ${formatReport(rep)}`);
      expect(rep.params).toHaveLength(params.length);
      if (opset >= 14) expect(rep.gradientModel.graph.nodes.some((n) => n.opType === 'HardSwish')).toBe(true);
    }
  });

  test('mini ResNet-FPN chain, dynamic batch, odd non-square input', async () => {
    // stem conv 7x7/2 → Relu → MaxPool 3/2 → conv 3x3 → BN → Relu (c2) → conv 1x1/2 (c3) → nearest Resize
    // of c3 to c2's size (5x4 from 3x2: non-integer ratios, sizes from Shape ops) + lateral 1x1 conv →
    // 3x3 output conv → AveragePool → GlobalAveragePool → Gemm; loss = weighted sums of the head and P2.
    const rng = createRng('mini-fpn');
    const b = new GraphBuilder({ opset: 13 });
    const x = b.input('x', DataType.FLOAT, ['N', 2, 18, 13]);
    const w = uniformInitializer(b, rng, 0.3);
    const stem = b.op('Relu', [
      b.op('Conv', [x, w('w1', [4, 2, 7, 7]), w('b1', [4])], { strides: [2, 2], pads: [3, 3, 3, 3] }),
    ]);
    const pool = b.op('MaxPool', [stem], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    const conv2 = b.op('Conv', [pool, w('w2', [6, 4, 3, 3])], { pads: [1, 1, 1, 1] });
    const bnVar = b.initializer(
      floatTensor(
        'bn_var',
        [6],
        Array.from({ length: 6 }, () => rng.uniform(0.5, 1.5)),
      ),
      { exactName: true },
    );
    const bn = b.op('BatchNormalization', [
      conv2,
      w('bn_scale', [6], 1),
      w('bn_bias', [6]),
      w('bn_mean', [6]),
      bnVar,
    ]);
    const c2 = b.op('Relu', [bn]);
    const c3 = b.op('Conv', [c2, w('w3', [5, 6, 1, 1])], { strides: [2, 2] });
    const nc = b.op('Slice', [b.op('Shape', [c3]), b.constInt64([0]), b.constInt64([2])]);
    const hw = b.op('Slice', [b.op('Shape', [c2]), b.constInt64([2]), b.constInt64([4])]);
    const sizes = b.op('Concat', [nc, hw], { axis: 0 });
    const up = b.op('Resize', [c3, '', '', sizes], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
    const lateral = b.op('Conv', [c2, w('w4', [5, 6, 1, 1])]);
    const p2 = b.op('Conv', [b.op('Add', [lateral, up]), w('w5', [4, 5, 3, 3])], { pads: [1, 1, 1, 1] });
    const avg = b.op('AveragePool', [p2], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 });
    const head = b.op('Flatten', [b.op('GlobalAveragePool', [avg])]);
    const logits = b.op('Gemm', [head, w('fc_w', [5, 4]), w('fc_b', [5])], { transB: 1 });
    const r1 = w('r1', [2, 5], 1);
    const r2 = w('r2', [1, 4, 5, 4], 1);
    const l1 = b.op('ReduceSum', [b.op('Mul', [logits, r1])], { keepdims: 0 });
    const l2 = b.op('ReduceSum', [b.op('Mul', [p2, r2])], { keepdims: 0 });
    const loss = b.op('Add', [l1, l2], {}, { outputs: ['loss'] });
    b.output(loss, DataType.FLOAT, []);
    const params = ['w1', 'b1', 'w2', 'bn_scale', 'bn_bias', 'w3', 'w4', 'w5', 'fc_w', 'fc_b'];
    const feeds = {
      x: {
        data: Float32Array.from({ length: 2 * 2 * 18 * 13 }, () => rng.uniform(-1, 1)),
        dims: [2, 2, 18, 13],
      },
    };
    const r = await checkGradients({ model: b.build(), loss, params, feeds });
    console.log(`mini ResNet-FPN chain: ${formatReport(r)}`);
    expect(r.params).toHaveLength(params.length);
  });
});
