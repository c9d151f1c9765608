/**
 * A tiny two-level FPN built the way torchvision exports one (frozen batch-norm as Mul/Add constants,
 * nearest Resize with sizes from Shape → Gather → Unsqueeze → Concat → Cast), with hand-computed costs.
 */
import { DataType, GraphBuilder, floatTensor, type Dim, type OnnxModel } from '../../src/onnx';

/** Deterministic values in [-0.5, 0.5). */
export function seeded(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

export interface TinyFpnOptions {
  /** Input shape (default ['batch', 3, 64, 64]). */
  input?: Dim[];
  /** Also output a P4 computed by max-pooling p3 (k=1, s=2), as torchvision's LastLevelMaxPool. */
  pooledLevel?: boolean;
  /** Give every bias the value 0 (so identical biases can be tied). */
  zeroBiases?: boolean;
}

/**
 * MACs per image at 64×64, by hand (Conv MACs = Cout·Ho·Wo·(Cin/g)·kh·kw):
 * - body.conv1  3→8, 3×3, stride 4 → 16×16: 8·256·3·9   = 55,296 (shared)
 * - body.conv2  8→16, 3×3, stride 2 → 8×8:  16·64·8·9   = 73,728 (shared)
 * - fpn.inner_blocks.1 16→4, 1×1 → 8×8:     4·64·16     = 4,096  (shared: P3 and the top-down path to P2)
 * - fpn.layer_blocks.1 4→4, 3×3 → 8×8:      4·64·4·9    = 9,216  (P3 only)
 * - fpn.inner_blocks.0 8→4, 1×1 → 16×16:    4·256·8     = 8,192  (P2 only)
 * - fpn.layer_blocks.0 4→4, 3×3, group 2:   4·256·2·9   = 18,432 (P2 only)
 * - head.fc (Gemm 16→10) feeds `logits`, which no level needs: not counted.
 */
export const TINY_FPN_MACS = {
  shared: 55_296 + 73_728 + 4_096,
  P2: 8_192 + 18_432,
  P3: 9_216,
  total: 55_296 + 73_728 + 4_096 + 8_192 + 18_432 + 9_216,
};

/**
 * Trainable elements by hand (weight + bias per conv, see the dims below): conv1 216 + 8, conv2 1152 + 16,
 * inner_blocks.1 64 + 4, layer_blocks.1 144 + 4, inner_blocks.0 32 + 4, layer_blocks.0 72 + 4, head 160 + 10.
 */
export const TINY_FPN_TRAINABLE = 216 + 8 + 1152 + 16 + 64 + 4 + 144 + 4 + 32 + 4 + 72 + 4 + 160 + 10;

export function tinyFpn(options: TinyFpnOptions = {}): OnnxModel {
  const b = new GraphBuilder({ name: 'tiny-fpn', opset: 13 });
  let seed = 1;
  const param = (name: string, dims: number[]): string => {
    const n = dims.reduce((a, c) => a * c, 1);
    const zero = options.zeroBiases && name.endsWith('.bias');
    return b.initializer(floatTensor(name, dims, zero ? new Float32Array(n) : seeded(n, seed++)), {
      exactName: true,
    });
  };
  const x = b.input('images', DataType.FLOAT, options.input ?? ['batch', 3, 64, 64]);
  const conv = (name: string, input: string, w: number[], attrs: Record<string, number[] | number>): string =>
    b.op('Conv', [input, param(`${name}.weight`, w), param(`${name}.bias`, [w[0]])], attrs, {
      name: `/${name.replace(/\./g, '/')}/Conv`,
    });
  const c1 = conv('body.conv1', x, [8, 3, 3, 3], { strides: [4, 4], pads: [1, 1, 1, 1] });
  const bn = b.op('Add', [
    b.op('Mul', [c1, b.constFloat(seeded(8, 99), [1, 8, 1, 1], 'onnx::Mul_1')]),
    b.constFloat(seeded(8, 98), [1, 8, 1, 1], 'onnx::Add_2'),
  ]);
  const r1 = b.op('Relu', [bn]);
  const r2 = b.op('Relu', [conv('body.conv2', r1, [16, 8, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] })]);
  const inner3 = conv('fpn.inner_blocks.1.0', r2, [4, 16, 1, 1], {});
  const p3 = conv('fpn.layer_blocks.1.0', inner3, [4, 4, 3, 3], { pads: [1, 1, 1, 1] });
  const lat2 = conv('fpn.inner_blocks.0.0', r1, [4, 8, 1, 1], {});
  const dim = (t: string, i: number): string =>
    b.op('Unsqueeze', [
      b.op('Gather', [b.op('Shape', [t]), b.constInt64(i, [])], { axis: 0 }),
      b.constInt64([0]),
    ]);
  const hw = b.op('Cast', [b.op('Concat', [dim(lat2, 2), dim(lat2, 3)], { axis: 0 })], {
    to: DataType.INT64,
  });
  const nc = b.op('Slice', [
    b.op('Shape', [inner3]),
    b.constInt64([0]),
    b.constInt64([2]),
    b.constInt64([0]),
  ]);
  const sizes = b.op('Concat', [nc, hw], { axis: 0 });
  const up = b.op('Resize', [inner3, '', '', sizes], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
  const p2 = conv('fpn.layer_blocks.0.0', b.op('Add', [lat2, up]), [4, 2, 3, 3], {
    pads: [1, 1, 1, 1],
    group: 2,
  });
  b.output(b.op('Identity', [p2], {}, { outputs: ['p2'] }), DataType.FLOAT, ['batch', 4, 'h2', 'w2']);
  b.output(b.op('Identity', [p3], {}, { outputs: ['p3'] }), DataType.FLOAT, ['batch', 4, 'h3', 'w3']);
  if (options.pooledLevel) {
    b.output(b.op('MaxPool', [p3], { kernel_shape: [1, 1], strides: [2, 2] }, { outputs: ['p4'] }));
  }
  const pooled = b.op('Flatten', [b.op('GlobalAveragePool', [r2])]);
  const logits = b.op(
    'Gemm',
    [pooled, param('head.fc.weight', [10, 16]), param('head.fc.bias', [10])],
    { transB: 1 },
    {
      outputs: ['logits'],
    },
  );
  b.output(logits, DataType.FLOAT, ['batch', 10]);
  return b.build();
}
