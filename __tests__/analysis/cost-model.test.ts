import { DataType, GraphBuilder, floatTensor } from '../../src/onnx';
import { inferShapes } from '../../src/onnx/shape-inference';
import { computeCostModel, nodeCost } from '../../src/analysis';
import { buildGradientGraph } from '../../src/autodiff/gradient-graph';
import { TINY_FPN_MACS, seeded, tinyFpn } from './tiny-fpn';

describe('computeCostModel', () => {
  it('splits the tiny FPN into exclusive and shared MACs as computed by hand', () => {
    const cost = computeCostModel(tinyFpn(), { height: 64, width: 64 });
    expect(cost.levels.map((l) => [l.name, l.macs])).toEqual([
      ['P2', TINY_FPN_MACS.P2], // 26,624
      ['P3', TINY_FPN_MACS.P3], // 9,216
    ]);
    expect(cost.sharedMacs).toBe(TINY_FPN_MACS.shared); // 133,120
    expect(cost.totalMacs).toBe(TINY_FPN_MACS.total); // 168,960: the Gemm head is not a level's
    expect(cost.levels[0].costShare).toBeCloseTo(26_624 / 168_960, 12);
    expect(cost.levels[1].costShare).toBeCloseTo(9_216 / 168_960, 12);
    expect(cost.unknownNodes).toEqual([]);
  });

  it('gives distillation-cost shares from the work of one distillation step, counted by hand, summing to 1', () => {
    const cost = computeCostModel(tinyFpn(), { height: 64, width: 64 });
    // One step on a level runs its exclusive convs forward, input-gradient and weight-gradient (each as many
    // MACs as the forward: the next test measures that on the autodiff's graphs) and the MSE over the
    // level's features (difference, square-accumulate and gradient: 3 ops per element).
    // P2: (8,192 + 18,432) · 3 + 3 · (4·16·16) = 79,872 + 3,072 = 82,944
    // P3: 9,216 · 3 + 3 · (4·8·8) = 27,648 + 768 = 28,416
    const w2 = 82_944;
    const w3 = 28_416;
    expect(cost.levels[0].lossElements).toBe(1024);
    expect(cost.levels[1].lossElements).toBe(256);
    expect(cost.levels[0].distillCost).toBeCloseTo(w2 / (w2 + w3), 12);
    expect(cost.levels[1].distillCost).toBeCloseTo(w3 / (w2 + w3), 12);
    expect(cost.levels[0].distillCost + cost.levels[1].distillCost).toBeCloseTo(1, 12);
  });

  it("charges three forward passes per exclusive conv: the autodiff's dX and dW each cost one forward", () => {
    // [kernel, stride, Cin, Cout, H=W] and the forward MACs by hand, Cout·Ho·Wo·Cin·k·k.
    const cases = [
      { k: 3, stride: 1, cin: 4, cout: 4, hw: 8, macs: 4 * 64 * 4 * 9 }, // 9,216
      { k: 1, stride: 1, cin: 8, cout: 4, hw: 16, macs: 4 * 256 * 8 }, // 8,192
      { k: 3, stride: 2, cin: 4, cout: 6, hw: 8, macs: 6 * 16 * 4 * 9 }, // 3,456
    ];
    for (const c of cases) {
      const b = new GraphBuilder({ name: 'one-conv', opset: 17 });
      const x = b.input('x', DataType.FLOAT, [1, c.cin, c.hw, c.hw]);
      const w = b.input('w', DataType.FLOAT, [c.cout, c.cin, c.k, c.k]);
      const pad = (c.k - 1) / 2;
      const y = b.op('Conv', [x, w], { pads: [pad, pad, pad, pad], strides: [c.stride, c.stride] });
      const t = b.input('t', DataType.FLOAT, []);
      b.output(b.op('ReduceSum', [b.op('Mul', [y, t])], { keepdims: 0 }, { outputs: ['loss'] }));
      const grad = buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['x', 'w'] }] });
      const info = inferShapes(grad.model);
      const macs = grad.model.graph.nodes.map((n) => nodeCost(n, info).macs).filter((m) => m > 0);
      expect(macs).toEqual([c.macs, c.macs, c.macs]); // forward, dX, dW
    }
  });

  it('charges a level computed from another level (max-pooled P4) to the shared part', () => {
    const cost = computeCostModel(tinyFpn({ pooledLevel: true }), { height: 64, width: 64 });
    // layer_blocks.1 (9,216) now feeds both P3 and P4: P3 keeps nothing exclusive, P4 has only a MaxPool.
    expect(cost.levels.map((l) => [l.name, l.macs])).toEqual([
      ['P2', 26_624],
      ['P3', 0],
      ['P4', 0],
    ]);
    expect(cost.sharedMacs).toBe(133_120 + 9_216);
    expect(cost.levels[2].elementOps).toBe(4 * 4 * 4); // MaxPool 1×1 window over a 4×4×4 output
  });

  it('scales with the input size (MACs per image, symbolic batch ignored)', () => {
    const model = tinyFpn({ input: ['batch', 3, 'h', 'w'] });
    const small = computeCostModel(model, { height: 64, width: 64 });
    const big = computeCostModel(model, { height: 128, width: 128 });
    expect(small.totalMacs).toBe(TINY_FPN_MACS.total);
    expect(big.totalMacs).toBe(4 * TINY_FPN_MACS.total);
  });

  it('does not let a shape-only dependency make a node shared', () => {
    // p_b is resized to the size of a_conv's output; with static shapes only a_conv's shape is needed.
    const b = new GraphBuilder({ name: 'shape-dep', opset: 13 });
    const x = b.input('x', DataType.FLOAT, [1, 2, 8, 8]);
    const w = (name: string, dims: number[]): string =>
      b.initializer(floatTensor(name, dims, seeded(dims.reduce((p, q) => p * q, 1))));
    const a = b.op('Conv', [x, w('a.weight', [3, 2, 3, 3])], { pads: [1, 1, 1, 1] }); // 3·64·18 = 3,456
    const small = b.op('Conv', [x, w('b.weight', [3, 2, 1, 1])], { strides: [2, 2] }); // 3·16·2 = 96
    const sizes = b.op('Shape', [a]);
    b.output(b.op('Identity', [a], {}, { outputs: ['pa'] }));
    b.output(b.op('Resize', [small, '', '', sizes], { mode: 'nearest' }, { outputs: ['pb'] }));
    const cost = computeCostModel(b.build(), { height: 8, width: 8 });
    expect(cost.levels.map((l) => [l.output, l.macs])).toEqual([
      ['pa', 3_456],
      ['pb', 96],
    ]);
    expect(cost.sharedMacs).toBe(0);
  });
});

describe('nodeCost', () => {
  it('counts ConvTranspose, Gemm (transA) and batched MatMul MACs, and element ops', () => {
    const b = new GraphBuilder({ name: 'ops', opset: 13 });
    const x = b.input('x', DataType.FLOAT, ['batch', 4, 5, 5]);
    const w = (name: string, dims: number[]): string =>
      b.initializer(floatTensor(name, dims, seeded(dims.reduce((p, q) => p * q, 1))));
    const ct = b.op('ConvTranspose', [x, w('ct.w', [4, 3, 3, 3])], { strides: [2, 2] });
    const a = b.input('a', DataType.FLOAT, [6, 7]);
    const gemm = b.op('Gemm', [a, w('g.w', [6, 9])], { transA: 1 });
    const m = b.input('m', DataType.FLOAT, [2, 3, 5, 6]);
    const mm = b.op('MatMul', [m, w('mm.w', [6, 8])]);
    const relu = b.op('Relu', [ct]);
    const pool = b.op('MaxPool', [x], { kernel_shape: [3, 3] });
    for (const o of [ct, gemm, mm, relu, pool]) b.output(o);
    const model = b.build();
    const info = inferShapes(model, { x: [1, 4, 5, 5] });
    const byOut = (o: string) =>
      nodeCost(
        model.graph.nodes.find((n) => n.outputs[0] === o)!,
        info,
      );
    // ConvTranspose: every input pixel scatters Cout·kh·kw: 4·5·5 · 3·3·3 = 2,700.
    expect(byOut(ct)).toEqual({ macs: 2_700, elementOps: 0, known: true });
    // Gemm with transA: A is [K=6, M=7], B [6, 9] → 7·9·6 = 378.
    expect(byOut(gemm).macs).toBe(378);
    // MatMul [2,3,5,6]·[6,8] → 2·3·5·8 outputs × 6 = 1,440.
    expect(byOut(mm).macs).toBe(1_440);
    // ConvTranspose output is 3×11×11: one element op per output of Relu.
    expect(byOut(relu)).toEqual({ macs: 0, elementOps: 363, known: true });
    // MaxPool 3×3 over 5×5 → 3×3 outputs × 4 channels × 9 window elements.
    expect(byOut(pool).elementOps).toBe(324);
  });
});
