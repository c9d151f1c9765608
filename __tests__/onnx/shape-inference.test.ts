/**
 * Shape inference checked against onnxruntime: every intermediate tensor of each small graph is made a graph
 * output, the graph is run, and the runtime's shapes (and values, for folded constants) must match what
 * inference says. Symbolic dims must equal the fed size of that axis; null dims are allowed only where the
 * test says so.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DataType,
  GraphBuilder,
  loadModel,
  attr,
  floatTensor,
  int64Tensor,
  type Dim,
  type OnnxModel,
  type TensorData,
} from '../../src/onnx';
import { inferShapes, type TensorInfo } from '../../src/onnx/shape-inference';
import { createSession, type HostTensor } from '../../src/runtime';
import { findTorchPython } from '../../src/tools/python';
import { optionalReference, TORCH_INSTALL_HINT } from '../helpers/optional-reference';

/** Deterministic pseudo-random floats (LCG), so every run feeds the same data. */
function seeded(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function feedFor(shape: number[], seed: number): HostTensor {
  return {
    data: seeded(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
    dims: shape,
  };
}

interface CheckOptions {
  /** Concrete shapes fed to onnxruntime, by input name. */
  feeds: Record<string, number[]>;
  /** Values of symbolic dims in those feeds (e.g. { batch: 2 }). */
  symbols?: Record<string, number>;
  /** Shapes passed to inferShapes instead of the declared ones. */
  inferWith?: Record<string, Dim[]>;
  /** Tensors whose shapes may legitimately stay (partly) unknown. */
  allowUnknown?: string[];
}

/** Runs the model with every tensor as an output and compares with inference; returns the inference. */
async function checkAgainstOrt(model: OnnxModel, opts: CheckOptions): Promise<Map<string, TensorInfo>> {
  const info = inferShapes(model, opts.inferWith);
  const g = model.graph;
  for (const o of g.outputs) o.dataType = info.get(o.name)?.dataType ?? o.dataType;
  const outputs = new Set(g.outputs.map((o) => o.name));
  for (const n of g.nodes) {
    for (const o of n.outputs) {
      if (!o || outputs.has(o)) continue;
      const t = info.get(o);
      expect({ tensor: o, dataType: t?.dataType ?? DataType.UNDEFINED }).not.toEqual({
        tensor: o,
        dataType: DataType.UNDEFINED,
      });
      g.outputs.push({ name: o, dataType: t!.dataType });
      outputs.add(o);
    }
  }
  const session = await createSession(model, { graphOptimizationLevel: 'disabled' });
  const feeds: Record<string, HostTensor> = {};
  Object.entries(opts.feeds).forEach(([name, shape], i) => (feeds[name] = feedFor(shape, i + 7)));
  const result = await session.run(feeds);
  await session.release();
  const allow = new Set(opts.allowUnknown ?? []);
  for (const [name, actual] of Object.entries(result)) {
    const t = info.get(name);
    const inferred = t?.shape;
    if (!allow.has(name)) {
      expect({
        name,
        shape: inferred?.map((d) => (typeof d === 'string' ? (opts.symbols?.[d] ?? d) : d)),
      }).toEqual({
        name,
        shape: [...actual.dims],
      });
    } else if (inferred) {
      expect(inferred.length).toBe(actual.dims.length);
      inferred.forEach((d, i) => {
        if (typeof d === 'number') expect({ name, axis: i, d }).toEqual({ name, axis: i, d: actual.dims[i] });
      });
    }
    if (t?.value) {
      expect({ name, value: numbers(t.value) }).toEqual({ name, value: numbers(actual.data) });
    }
  }
  return info;
}

function numbers(d: TensorData): number[] {
  return Array.from(d as ArrayLike<number | bigint>, (x) => Number(x));
}

function builder(opset = 17): GraphBuilder {
  return new GraphBuilder({ name: 'shape-test', opset });
}

function weight(b: GraphBuilder, name: string, dims: number[]): string {
  return b.initializer(
    floatTensor(
      name,
      dims,
      seeded(
        dims.reduce((a, c) => a * c, 1),
        dims.length,
      ),
    ),
  );
}

describe('inferShapes against onnxruntime', () => {
  it('Conv: pads, asymmetric pads, strides, dilations, groups, auto_pad, odd sizes', async () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, ['batch', 4, 13, 11]);
    const w3 = weight(b, 'w3', [6, 4, 3, 3]);
    const wg = weight(b, 'wg', [8, 2, 3, 3]);
    const wd = weight(b, 'wd', [4, 1, 3, 3]);
    const bias = weight(b, 'bias', [6]);
    const outs = [
      b.op('Conv', [x, w3, bias], { pads: [1, 1, 1, 1], strides: [2, 2] }),
      b.op('Conv', [x, w3], { pads: [0, 1, 2, 0], strides: [2, 3], kernel_shape: [3, 3] }),
      b.op('Conv', [x, w3], { dilations: [2, 3], strides: [1, 2] }),
      b.op('Conv', [x, wg], { group: 2, pads: [1, 1, 1, 1] }),
      b.op('Conv', [x, wd], { group: 4, strides: [2, 2], pads: [1, 1, 1, 1] }),
      b.op('Conv', [x, w3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }),
      b.op('Conv', [x, w3], { auto_pad: 'SAME_LOWER', strides: [3, 2] }),
      b.op('Conv', [x, w3], { auto_pad: 'VALID', strides: [2, 2] }),
    ];
    for (const o of outs) b.output(o);
    const info = await checkAgainstOrt(b.build(), { feeds: { x: [2, 4, 13, 11] }, symbols: { batch: 2 } });
    // floor((13 + 2 - 3) / 2) + 1 = 7, floor((11 + 2 - 3) / 2) + 1 = 6
    expect(info.get(outs[0])!.shape).toEqual(['batch', 6, 7, 6]);
  });

  it('Conv 1-D and a same-padded stride-1 conv on symbolic spatial dims', async () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, ['batch', 3, 'len']);
    const w = weight(b, 'w', [5, 3, 3]);
    const y = b.op('Conv', [x, w], { pads: [1, 1] });
    b.output(y);
    const info = await checkAgainstOrt(b.build(), { feeds: { x: [1, 3, 9] }, symbols: { batch: 1, len: 9 } });
    expect(info.get(y)!.shape).toEqual(['batch', 5, 'len']);
  });

  it('ConvTranspose: strides, pads, output_padding, output_shape, groups', async () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, [1, 4, 5, 7]);
    const w = weight(b, 'w', [4, 3, 3, 3]);
    const outs = [
      b.op('ConvTranspose', [x, w], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0] }),
      b.op('ConvTranspose', [x, w], { strides: [2, 3], output_shape: [12, 20] }),
      b.op('ConvTranspose', [x, w], { group: 2, dilations: [2, 1] }),
      b.op('ConvTranspose', [x, w], { strides: [2, 2], auto_pad: 'SAME_UPPER' }),
    ];
    for (const o of outs) b.output(o);
    await checkAgainstOrt(b.build(), { feeds: { x: [1, 4, 5, 7] } });
  });

  it('MaxPool (ceil_mode, dilations, Indices), AveragePool, global pools', async () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, ['batch', 2, 9, 10]);
    const [mp, idx] = b.node(
      'MaxPool',
      [x],
      { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
      { outputs: 2 },
    );
    const outs = [
      mp,
      idx,
      b.op('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }),
      // The last window would start in the padding: onnxruntime drops it (9 + 2 - 2 = 9 → ceil 6 → 5).
      b.op('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }),
      b.op('MaxPool', [x], { kernel_shape: [2, 3], strides: [1, 2], dilations: [2, 2], ceil_mode: 1 }),
      b.op('MaxPool', [x], { kernel_shape: [3, 3], auto_pad: 'SAME_UPPER', strides: [2, 2] }),
      b.op('AveragePool', [x], { kernel_shape: [3, 2], strides: [2, 2], pads: [1, 0, 1, 0], ceil_mode: 1 }),
      b.op('AveragePool', [x], { kernel_shape: [3, 3], strides: [3, 3], count_include_pad: 1 }),
      b.op('GlobalAveragePool', [x]),
      b.op('GlobalMaxPool', [x]),
    ];
    for (const o of outs) if (o !== mp && o !== idx) b.output(o);
    b.output(mp);
    b.output(idx, DataType.INT64);
    const info = await checkAgainstOrt(b.build(), { feeds: { x: [3, 2, 9, 10] }, symbols: { batch: 3 } });
    expect(info.get(idx)!.dataType).toBe(DataType.INT64);
  });

  it('Resize by scales and by sizes (opset 11 and 13), symbolic batch kept', async () => {
    for (const opset of [11, 13, 18]) {
      const b = builder(opset);
      const x = b.input('x', DataType.FLOAT, ['batch', 2, 5, 7]);
      const scales = b.constFloat([1, 1, 2, 1.5]);
      const sizes = b.constInt64([2, 2, 11, 3]);
      const roi = b.constFloat([]);
      const outs = [
        b.op('Resize', [x, roi, scales], { mode: 'nearest' }),
        b.op('Resize', [x, roi, opset < 13 ? b.constFloat([]) : '', sizes], {
          mode: 'nearest',
          coordinate_transformation_mode: 'asymmetric',
          nearest_mode: 'floor',
        }),
        b.op('Resize', [x, roi, scales], { mode: 'linear' }),
      ];
      for (const o of outs) b.output(o);
      const info = await checkAgainstOrt(b.build(), { feeds: { x: [2, 2, 5, 7] }, symbols: { batch: 2 } });
      expect(info.get(outs[0])!.shape).toEqual(['batch', 2, 10, 10]);
    }
  });

  it('folds the torchvision FPN top-down chain: Shape→Gather→Unsqueeze→Concat→Cast + Shape→Slice→Resize(sizes)', async () => {
    const b = builder(13);
    const x = b.input('x', DataType.FLOAT, ['batch', 3, 30, 30]);
    const c3 = b.op('Conv', [x, weight(b, 'w1', [4, 3, 3, 3])], { strides: [2, 2], pads: [1, 1, 1, 1] }); // 15×15
    const c4 = b.op('Conv', [c3, weight(b, 'w2', [4, 4, 3, 3])], { strides: [2, 2], pads: [1, 1, 1, 1] }); // 8×8
    const s3 = b.op('Shape', [c3]);
    const h = b.op('Gather', [s3, b.constInt64(2, [])], { axis: 0 });
    const w = b.op('Gather', [b.op('Shape', [c3]), b.constInt64(3, [])], { axis: 0 });
    const hw = b.op(
      'Concat',
      [b.op('Unsqueeze', [h, b.constInt64([0])]), b.op('Unsqueeze', [w, b.constInt64([0])])],
      {
        axis: 0,
      },
    );
    const s4 = b.op('Shape', [c4]);
    const nc = b.op('Slice', [s4, b.constInt64([0]), b.constInt64([2]), b.constInt64([0])]);
    const sizes = b.op('Concat', [nc, b.op('Cast', [hw], { to: DataType.INT64 })], { axis: 0 });
    const up = b.op('Resize', [c4, '', '', sizes], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
    const sum = b.op('Add', [c3, up]);
    // Slice[2:4] of the shape, as the brief's example, and a Slice to INT64_MAX.
    const tail = b.op('Slice', [s4, b.constInt64([2]), b.constInt64([4])]);
    const rest = b.op('Slice', [s4, b.constInt64([1]), b.initializer(int64Tensor('big', [1], [0]))]);
    b.output(sum);
    const model = b.build();
    // INT64_MAX as Slice end ("to the end").
    model.graph.initializers.find((t) => t.name === 'big')!.data = new BigInt64Array([2n ** 63n - 1n]);
    const info = await checkAgainstOrt(model, { feeds: { x: [2, 3, 30, 30] }, symbols: { batch: 2 } });
    expect(info.get(up)!.shape).toEqual(['batch', 4, 15, 15]);
    expect(info.get(sum)!.shape).toEqual(['batch', 4, 15, 15]);
    expect(numbers(info.get(hw)!.value!)).toEqual([15, 15]);
    expect(numbers(info.get(tail)!.value!)).toEqual([8, 8]);
    expect(numbers(info.get(rest)!.value!)).toEqual([4, 8, 8]);
    expect(info.get(sizes)!.value).toBeUndefined(); // the batch element is symbolic
    expect(info.get(nc)!.shape).toEqual([2]);
    // With a static batch the whole sizes vector is a constant.
    const fixed = inferShapes(model, { x: [2, 3, 30, 30] });
    expect(numbers(fixed.get(sizes)!.value!)).toEqual([2, 4, 15, 15]);
  });

  it('element-wise broadcasting, activations and comparisons', async () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, ['batch', 3, 1, 5]);
    const y = b.input('y', DataType.FLOAT, [4, 1]);
    const z = b.input('z', DataType.FLOAT, [3, 1, 1]);
    const sum = b.op('Add', [x, y]);
    const outs = [
      sum,
      b.op('Sub', [y, x]),
      b.op('Mul', [x, z]),
      b.op('Div', [sum, b.constFloat(2)]),
      b.op('Pow', [b.op('Abs', [x]), b.constFloat(1.5)]),
      b.op('Relu', [sum]),
      b.op('LeakyRelu', [sum], { alpha: attr.float(0.2) }),
      b.op('Sigmoid', [sum]),
      b.op('Tanh', [sum]),
      b.op('Softmax', [sum], { axis: 1 }),
      b.op('LogSoftmax', [sum]),
      b.op('Exp', [sum]),
      b.op('Log', [b.op('Exp', [x])]),
      b.op('Sqrt', [b.op('Abs', [x])]),
      b.op('Neg', [y]),
      b.op('Clip', [sum, b.constFloat(-0.1), b.constFloat(0.1)]),
      b.op('Erf', [sum]),
      b.op('Where', [b.op('Greater', [x, z]), x, y]),
      b.op('Not', [b.op('Less', [x, y])]),
      b.op('Equal', [b.op('Cast', [x], { to: DataType.INT64 }), b.constInt64(0)]),
      b.op('Max', [x, y, z]),
      b.op('Dropout', [sum]),
      b.op('Identity', [z]),
    ];
    for (const o of outs) b.output(o);
    await checkAgainstOrt(b.build(), {
      feeds: { x: [2, 3, 1, 5], y: [4, 1], z: [3, 1, 1] },
      symbols: { batch: 2 },
    });
  });

  it('BatchNormalization, MatMul (1-D, batched broadcast) and Gemm (transposes)', async () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, ['batch', 3, 4, 5]);
    const v = b.input('v', DataType.FLOAT, [5]);
    const m = b.input('m', DataType.FLOAT, [2, 1, 5, 6]);
    const a = b.input('a', DataType.FLOAT, [7, 5]);
    const ones = b.constFloat([1, 1, 1]);
    const zeros = b.constFloat([0, 0, 0]);
    const outs = [
      b.op('BatchNormalization', [x, ones, zeros, zeros, ones]),
      b.op('MatMul', [x, v]),
      b.op('MatMul', [v, m]),
      b.op('MatMul', [x, m]),
      b.op('Gemm', [a, weight(b, 'gw', [6, 5]), weight(b, 'gb', [6])], { transB: 1, alpha: attr.float(0.5) }),
      b.op('Gemm', [a, weight(b, 'gw2', [7, 3])], { transA: 1 }),
    ];
    for (const o of outs) b.output(o);
    await checkAgainstOrt(b.build(), {
      feeds: { x: [2, 3, 4, 5], v: [5], m: [2, 1, 5, 6], a: [7, 5] },
      symbols: { batch: 2 },
      allowUnknown: [outs[3]], // [batch,3] vs [2,1] broadcast: batch may be 1 or 2
    });
  });

  it('Reshape (0, -1, symbolic batch), Flatten, Transpose, Concat, Expand, Tile, Pad', async () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, ['batch', 4, 3, 2]);
    const r1 = b.op('Reshape', [x, b.constInt64([0, -1])]);
    const r2 = b.op('Reshape', [x, b.constInt64([-1, 6])]);
    const r3 = b.op('Reshape', [x, b.constInt64([0, 2, 2, -1])]);
    const outs = [
      r1,
      r2,
      r3,
      b.op('Flatten', [x], { axis: 2 }),
      b.op('Flatten', [x], { axis: 0 }),
      b.op('Flatten', [x], { axis: -1 }),
      b.op('Transpose', [x], { perm: [0, 2, 3, 1] }),
      b.op('Transpose', [b.op('Reshape', [x, b.constInt64([-1, 24])])]),
      b.op('Concat', [x, x, b.op('Relu', [x])], { axis: 1 }),
      b.op('Concat', [x, x], { axis: 0 }),
      b.op('Expand', [b.constFloat([1, 2, 3], [3, 1]), b.constInt64([2, 1, 4])]),
      b.op('Expand', [x, b.constInt64([1, 1, 1])]),
      b.op('Tile', [x, b.constInt64([1, 2, 1, 3])]),
      b.op('Pad', [x, b.constInt64([0, 1, 0, 2, 0, 0, 3, 1])]),
    ];
    for (const o of outs) b.output(o);
    const info = await checkAgainstOrt(b.build(), {
      feeds: { x: [5, 4, 3, 2] },
      symbols: { batch: 5 },
      allowUnknown: [r2, outs[3], outs[4], outs[5], outs[9]],
    });
    expect(info.get(r1)!.shape).toEqual(['batch', 24]);
    expect(info.get(r2)!.shape).toEqual([null, 6]); // batch·4 rows: not one symbol
    expect(info.get(r3)!.shape).toEqual(['batch', 2, 2, 6]);
  });

  it('Split (attribute form at opset 11, input form at 13, equal and uneven at 18), Slice, Gather', async () => {
    for (const opset of [11, 13, 18]) {
      const b = builder(opset);
      const x = b.input('x', DataType.FLOAT, ['batch', 6, 7]);
      const parts =
        opset === 11
          ? b.node('Split', [x], { axis: 1, split: [1, 5] }, { outputs: 2 })
          : b.node('Split', [x, b.constInt64([2, 4])], { axis: 1 }, { outputs: 2 });
      const even = b.node(
        'Split',
        [x],
        { axis: -1, ...(opset >= 18 ? { num_outputs: 3 } : {}) },
        { outputs: opset >= 18 ? 3 : 7 },
      );
      const outs = [
        ...parts,
        ...even,
        b.op('Gather', [x, b.constInt64([[2, 0, 5]].flat(), [1, 3])], { axis: 1 }),
        b.op('Gather', [x, b.constInt64(-1, [])], { axis: 2 }),
      ];
      if (opset >= 10) {
        outs.push(
          b.op('Slice', [x, b.constInt64([1, -3]), b.constInt64([5, 100]), b.constInt64([1, 2])]),
          b.op('Slice', [x, b.constInt64([-1]), b.constInt64([-100]), b.constInt64([2]), b.constInt64([-2])]),
          b.op('Slice', [
            x,
            b.constInt64([0, 6]),
            b.constInt64([3, 0]),
            b.constInt64([2, 1]),
            b.constInt64([1, -3]),
          ]),
        );
      }
      for (const o of outs) b.output(o);
      await checkAgainstOrt(b.build(), { feeds: { x: [2, 6, 7] }, symbols: { batch: 2 } });
    }
  });

  it('Squeeze/Unsqueeze in attribute (opset 11) and input (opset 13) forms', async () => {
    for (const opset of [11, 13]) {
      const b = builder(opset);
      const x = b.input('x', DataType.FLOAT, ['batch', 1, 3, 1]);
      const axes = (v: number[]): Record<string, number[]> => (opset < 13 ? { axes: v } : {});
      const inp = (v: number[]): string[] => (opset < 13 ? [] : [b.constInt64(v)]);
      const outs = [
        b.op('Squeeze', [x, ...inp([1, -1])], axes([1, -1])),
        b.op('Unsqueeze', [x, ...inp([0, -1])], axes([0, -1])),
        b.op('Unsqueeze', [x, ...inp([2])], axes([2])),
        b.op('Squeeze', [b.constFloat([1, 2, 3], [1, 3, 1])]),
      ];
      for (const o of outs) b.output(o);
      await checkAgainstOrt(b.build(), { feeds: { x: [2, 1, 3, 1] }, symbols: { batch: 2 } });
    }
  });

  it('reductions: ReduceSum axes input (13), ReduceMean/Max/L2 attribute (13) and input (18) forms', async () => {
    for (const opset of [13, 18]) {
      const b = builder(opset);
      const x = b.input('x', DataType.FLOAT, ['batch', 3, 4, 5]);
      const red = (op: string, axes: number[], keepdims = 1): string =>
        opset >= 18 || op === 'ReduceSum'
          ? b.op(op, [x, b.constInt64(axes)], { keepdims })
          : b.op(op, [x], { axes, keepdims });
      const outs = [
        red('ReduceSum', [1, -1]),
        red('ReduceSum', [2], 0),
        b.op('ReduceSum', [x], { keepdims: 0 }),
        red('ReduceMean', [2, 3]),
        red('ReduceMax', [1], 0),
        red('ReduceL2', [-2, -1], 0),
        b.op('ArgMax', [x], { axis: 2, keepdims: 0 }),
      ];
      for (const o of outs) b.output(o);
      await checkAgainstOrt(b.build(), { feeds: { x: [2, 3, 4, 5] }, symbols: { batch: 2 } });
    }
  });

  it('integer folding: Shape(start/end), Size, Cast, Mul/Div/Floor, ConstantOfShape, Range, Where, ScatterElements', async () => {
    const b = builder(17);
    const x = b.input('x', DataType.FLOAT, ['batch', 4, 6, 10]);
    const hw = b.op('Shape', [x], { start: -2 });
    const half = b.op('Div', [hw, b.constInt64(2)]);
    const scaled = b.op(
      'Cast',
      [b.op('Floor', [b.op('Mul', [b.op('Cast', [hw], { to: DataType.FLOAT }), b.constFloat(0.75)])])],
      { to: DataType.INT64 },
    );
    const c = b.op('Shape', [x], { start: 1, end: 2 });
    const target = b.op('Concat', [c, half], { axis: 0 });
    const zeros = b.op('ConstantOfShape', [target], { value: floatTensor('v', [1], [0.5]) });
    const rng = b.op('Range', [b.constInt64(1, []), b.op('Size', [hw]), b.constInt64(1, [])]);
    const sel = b.op('Where', [b.op('Equal', [hw, b.constInt64([6, 0])]), scaled, half]);
    const sub = b.op('Sub', [b.op('Add', [hw, b.constInt64(1)]), b.constInt64([1, 2])]);
    const batchOnly = b.op('Shape', [x], { end: 1 });
    // Slicing [0:1] of a symbolic batch has an unknown length (the batch may be 0).
    const upd = b.op('Slice', [x, b.constInt64([0, 0, 0, 0]), b.constInt64([1, 2, 1, 1])]);
    const scat = b.op('ScatterElements', [x, b.constInt64([0, 1], [1, 2, 1, 1]), upd], { axis: 1 });
    const ceil = b.op('Ceil', [b.op('Div', [b.op('Cast', [hw], { to: DataType.FLOAT }), b.constFloat(4)])]);
    for (const o of [zeros, rng, sel, sub, batchOnly, scat, ceil, target]) b.output(o);
    const info = await checkAgainstOrt(b.build(), {
      feeds: { x: [2, 4, 6, 10] },
      symbols: { batch: 2 },
      allowUnknown: [upd],
    });
    expect(numbers(info.get(half)!.value!)).toEqual([3, 5]);
    expect(numbers(info.get(scaled)!.value!)).toEqual([4, 7]);
    expect(numbers(info.get(target)!.value!)).toEqual([4, 3, 5]);
    expect(info.get(zeros)!.shape).toEqual([4, 3, 5]);
    expect(numbers(info.get(rng)!.value!)).toEqual([1]);
    expect(numbers(info.get(sel)!.value!)).toEqual([4, 5]);
    expect(numbers(info.get(sub)!.value!)).toEqual([6, 9]);
    expect(numbers(info.get(ceil)!.value!)).toEqual([2, 3]);
    expect(info.get(batchOnly)!.value).toBeUndefined();
  });

  it('Constant nodes (tensor, value_int(s), value_float(s)) and Range', async () => {
    const b = builder(13);
    const k = b.op('Constant', [], { value: int64Tensor('k', [2], [3, 4]) });
    const vi = b.op('Constant', [], { value_ints: [1, 2, 3] });
    const vf = b.op('Constant', [], { value_float: attr.float(2.5) });
    const r = b.op('Range', [
      b.op('Constant', [], { value_float: attr.float(0) }),
      vf,
      b.constFloat(0.5, []),
    ]);
    const cos = b.op('ConstantOfShape', [k]);
    for (const o of [k, vi, vf, r, cos]) b.output(o);
    const info = await checkAgainstOrt(b.build(), { feeds: {} });
    expect(info.get(r)!.shape).toEqual([5]);
    expect(info.get(cos)!.shape).toEqual([3, 4]);
  });
});

describe('inferShapes without a runtime', () => {
  it('leaves unknown ops undefined instead of throwing, and keeps declared shapes for them', () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, ['batch', 3]);
    const [y] = b.node('MyCustomOp', [x], {}, { domain: 'com.example' });
    const z = b.op('Relu', [y]);
    const [u] = b.node('NotAnOnnxOp', [x]);
    b.output(z);
    b.output(u, DataType.FLOAT, ['batch', 7]);
    const model = b.build();
    model.opsetImports.push({ domain: 'com.example', version: 1 });
    const info = inferShapes(model);
    expect(info.get(y)!.shape).toBeUndefined();
    expect(info.get(z)!.shape).toBeUndefined();
    expect(info.get(u)).toEqual({ dataType: DataType.FLOAT, shape: ['batch', 7] });
  });

  it('prefers inferred numbers over symbolic declared output dims, and input overrides over declarations', () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, ['batch', 3, 'h', 'w']);
    const y = b.op('Conv', [x, weight(b, 'w', [8, 3, 3, 3])], { strides: [2, 2], pads: [1, 1, 1, 1] });
    b.output(y, DataType.FLOAT, ['batch', 8, 'y_h', 'y_w']);
    const info = inferShapes(b.build(), { x: ['batch', 3, 64, 48] });
    expect(info.get(y)!.shape).toEqual(['batch', 8, 32, 24]);
    const symbolic = inferShapes(b.build());
    expect(symbolic.get(y)!.shape).toEqual(['batch', 8, 'y_h', 'y_w']);
  });

  it('reports malformed nodes with the node and the problem', () => {
    const b = builder();
    const x = b.input('x', DataType.FLOAT, [1, 3, 8, 8]);
    b.output(b.op('Conv', [x, weight(b, 'w', [8, 3, 3, 3])], { pads: [1, 1] }, { name: 'body.conv1' }));
    expect(() => inferShapes(b.build())).toThrow("Conv 'body.conv1': pads must have 4 values, got 2");
    const c = builder();
    const p = c.input('p', DataType.FLOAT, [2, 3]);
    const q = c.input('q', DataType.FLOAT, [4, 3]);
    c.output(c.op('Add', [p, q], {}, { name: 'bad_add' }));
    expect(() => inferShapes(c.build())).toThrow("Add 'bad_add': cannot broadcast dims 2 and 4");
  });

  it('rejects input-shape overrides for inputs the graph does not have', () => {
    const b = builder();
    b.output(b.op('Relu', [b.input('x', DataType.FLOAT, [1, 2])]));
    expect(() => inferShapes(b.build(), { images: [1, 3, 8, 8] })).toThrow(
      "inferShapes: graph 'shape-test' has no input 'images' (inputs: x)",
    );
  });

  it('gives initializers their values and hides overridable ones (initializer listed as an input)', () => {
    const b = builder();
    const w = b.initializer(floatTensor('w', [2], [1, 2]));
    const d = b.initializer(floatTensor('d', [2], [3, 4]));
    b.inputs.push({ name: 'd', dataType: DataType.FLOAT, shape: [2] });
    b.output(b.op('Add', [w, d]));
    const info = inferShapes(b.build());
    expect(Array.from(info.get('w')!.value as Float32Array)).toEqual([1, 2]);
    expect(info.get('d')!.value).toBeUndefined();
  });
});

const python = optionalReference(
  'shape inference on a torchvision export',
  findTorchPython(),
  TORCH_INSTALL_HINT,
);
const torchIt = python ? it : it.skip;

describe('inferShapes on a real torchvision ResNet-18-FPN export (needs PyTorch)', () => {
  torchIt(
    'matches onnxruntime on every tensor at a non-square size, with a symbolic batch',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-shapes-'));
      try {
        const file = path.join(dir, 'r18.onnx');
        const exporter = path.join(__dirname, '..', '..', 'tools', 'export_fpn.py');
        const args = [
          '--arch',
          'resnet18',
          '--height',
          '200',
          '--width',
          '232',
          '--p6',
          '--out',
          file,
          '--quiet',
        ];
        const exp = spawnSync(python!, [exporter, ...args], { encoding: 'utf8', timeout: 300_000 });
        expect(exp.status).toBe(0);
        const model = loadModel(file);
        const input = model.graph.inputs[0];
        expect(input.shape).toEqual(['batch', 3, 200, 232]);
        const info = await checkAgainstOrt(model, {
          feeds: { [input.name]: [2, 3, 200, 232] },
          symbols: { batch: 2 },
        });
        // 200×232 → 50×58 → 25×29 → 13×15 → 7×8: the top-down Resize sizes are not 2× ratios.
        expect(info.get('p2')!.shape).toEqual(['batch', 256, 50, 58]);
        expect(info.get('p5')!.shape).toEqual(['batch', 256, 7, 8]);
        expect(info.get('p6')!.shape).toEqual(['batch', 256, 4, 4]);
        const resizes = model.graph.nodes.filter((n) => n.opType === 'Resize');
        expect(resizes).toHaveLength(3);
        for (const r of resizes) expect(info.get(r.outputs[0])!.shape![0]).toBe('batch');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    300_000,
  );
});
