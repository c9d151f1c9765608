/**
 * Test fixtures: a tiny ResNet-FPN-like teacher and student built with GraphBuilder (two or three convs,
 * a two-level pyramid p2/p3 with a 1×1 lateral and a nearest 2× top-down path), and seeded data.
 */
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { floatTensor } from '../../src/onnx/tensor-data';
import { DataType, type OnnxModel } from '../../src/onnx/types';
import type { HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';

export interface PyramidOptions {
  seed: number;
  /** Channels of the trunk convs. */
  width: number;
  /** Channels of the pyramid outputs. */
  channels?: number;
  /** Add a third conv to the trunk. */
  deep?: boolean;
  name?: string;
  /** Top-down upsampling: Resize nearest (default, as torchvision's FPN) or Unsqueeze/Expand/Reshape. */
  upsample?: 'resize' | 'expand';
}

/** He-uniform conv weights from a seeded stream. */
function convWeight(b: GraphBuilder, rng: Rng, name: string, cout: number, cin: number, k: number): string {
  const bound = Math.sqrt(6 / (cin * k * k));
  const data = Array.from({ length: cout * cin * k * k }, () => rng.uniform(-bound, bound));
  return b.initializer(floatTensor(name, [cout, cin, k, k], data), { exactName: true });
}

function bias(b: GraphBuilder, rng: Rng, name: string, c: number): string {
  return b.initializer(
    floatTensor(
      name,
      [c],
      Array.from({ length: c }, () => rng.uniform(-0.1, 0.1)),
    ),
    { exactName: true },
  );
}

/**
 * x [N, 3, 16, 16] → c1 (3×3) → c2 (3×3, stride 2) [→ c3 (3×3)] ; p3 = 1×1(c2'), p2 = 1×1(c1) + up2(p3).
 */
export function tinyPyramid(options: PyramidOptions): OnnxModel {
  const rng = new Rng(options.seed);
  const w = options.width;
  const out = options.channels ?? 8;
  const b = new GraphBuilder({ name: options.name ?? 'tiny_pyramid' });
  const x = b.input('x', DataType.FLOAT, ['batch', 3, 16, 16]);
  const conv = (input: string, name: string, cin: number, cout: number, k: number, stride = 1): string =>
    b.op(
      'Conv',
      [input, convWeight(b, rng, `${name}.weight`, cout, cin, k), bias(b, rng, `${name}.bias`, cout)],
      { kernel_shape: [k, k], strides: [stride, stride], pads: k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0] },
      { name },
    );
  const c1 = b.op('Relu', [conv(x, 'body.conv1', 3, w, 3)]);
  let c2 = b.op('Relu', [conv(c1, 'body.conv2', w, w, 3, 2)]);
  if (options.deep) c2 = b.op('Relu', [conv(c2, 'body.conv3', w, w, 3)]);
  const p3 = b.op('Identity', [conv(c2, 'fpn.inner3', w, out, 1)], {}, { outputs: ['p3'] });
  const up =
    (options.upsample ?? 'resize') === 'resize'
      ? b.op('Resize', [p3, '', b.constFloat([1, 1, 2, 2], [4], 'up_scales')], {
          mode: 'nearest',
          coordinate_transformation_mode: 'asymmetric',
          nearest_mode: 'floor',
        })
      : b.op('Reshape', [
          b.op('Expand', [
            b.op('Unsqueeze', [p3, b.constInt64([3, 5], [2], 'up_axes')]),
            b.constInt64([1, 1, 1, 2, 1, 2], [6], 'up_expand'),
          ]),
          b.constInt64([0, out, 16, 16], [4], 'up_shape'),
        ]);
  const p2 = b.op('Add', [conv(c1, 'fpn.inner2', w, out, 1), up], {}, { outputs: ['p2'] });
  b.output(p2, DataType.FLOAT, ['batch', out, 16, 16]);
  b.output(p3, DataType.FLOAT, ['batch', out, 8, 8]);
  return b.build();
}

/** A seeded image batch [n, 3, 16, 16] with values in [-1, 1). */
export function imageBatch(seed: number, n: number): HostTensor {
  const rng = new Rng(seed);
  return {
    data: Float32Array.from({ length: n * 3 * 16 * 16 }, () => rng.uniform(-1, 1)),
    dims: [n, 3, 16, 16],
  };
}

/** Float32 [rows, cols] filled with `value`. */
export function filled(dims: number[], value: number): HostTensor {
  return { data: new Float32Array(dims.reduce((a, d) => a * d, 1)).fill(value), dims };
}
