/**
 * Graph pieces the heads share: seeded convolution layers with PyTorch-style parameter names, resizing
 * to a fixed spatial size with a dynamic batch, and flattening a level's map to per-location rows.
 */
import { RlpkdError } from '../errors';
import type { GraphBuilder } from '../onnx/graph-builder';
import { floatTensor } from '../onnx/tensor-data';
import type { OnnxModel } from '../onnx/types';
import { Rng } from '../util/rng';
import type { HeadLevel } from './types';

/** How a layer's weights are drawn: He-normal (ReLU layers) or a fixed normal std (FCOS's 0.01). */
export type WeightInit = { kind: 'he' } | { kind: 'normal'; std: number };

export interface ConvLayer {
  /** Parameter prefix: weights are `<name>.weight` and `<name>.bias`. */
  name: string;
  inChannels: number;
  outChannels: number;
  kernel: 1 | 3;
  init: WeightInit;
  /** Constant bias value (default 0). */
  bias?: number;
}

/** Conv parameters as initializers (exact names, so a layer shared across levels is one parameter). */
export function convParameters(b: GraphBuilder, rng: Rng, layer: ConvLayer): [string, string] {
  const { inChannels: cin, outChannels: cout, kernel: k } = layer;
  const std = layer.init.kind === 'he' ? Math.sqrt(2 / (cin * k * k)) : layer.init.std;
  const w = Float32Array.from({ length: cout * cin * k * k }, () => rng.normal(0, std));
  const weight = b.initializer(floatTensor(`${layer.name}.weight`, [cout, cin, k, k], w), {
    exactName: true,
  });
  const bias = b.initializer(
    floatTensor(`${layer.name}.bias`, [cout], new Float32Array(cout).fill(layer.bias ?? 0)),
    {
      exactName: true,
    },
  );
  return [weight, bias];
}

/** A head's parameters: the initializers its Conv and Gemm nodes take as weight and bias. */
export function headParameterNames(model: OnnxModel): Set<string> {
  const inits = new Set(model.graph.initializers.map((t) => t.name));
  return new Set(
    model.graph.nodes
      .filter((n) => n.opType === 'Conv' || n.opType === 'Gemm')
      .flatMap((n) => n.inputs.slice(1))
      .filter((name) => inits.has(name)),
  );
}

/** A stride-1 'same' convolution with given parameters. */
export function conv(b: GraphBuilder, x: string, params: [string, string], kernel: 1 | 3): string {
  const p = (kernel - 1) / 2;
  return b.op('Conv', [x, params[0], params[1]], { kernel_shape: [kernel, kernel], pads: [p, p, p, p] });
}

/**
 * Bilinear resize to a fixed height and width (PyTorch's `interpolate(mode='bilinear',
 * align_corners=False)`), batch and channels kept from the input so the batch stays dynamic.
 */
export function resizeBilinear(b: GraphBuilder, x: string, height: number, width: number): string {
  const nc = b.op('Slice', [
    b.op('Shape', [x]),
    b.constInt64([0], [1], 'head/starts'),
    b.constInt64([2], [1], 'head/ends'),
    b.constInt64([0], [1], 'head/axes'),
  ]);
  const sizes = b.op('Concat', [nc, b.constInt64([height, width], [2], 'head/size')], { axis: 0 });
  return b.op('Resize', [x, '', '', sizes], {
    mode: 'linear',
    coordinate_transformation_mode: 'pytorch_half_pixel',
  });
}

/** [N, C, H, W] → [N, H·W, C]: one row per location, row-major over (y, x). */
export function locationsAsRows(b: GraphBuilder, x: string, channels: number): string {
  const flat = b.op('Reshape', [x, b.constInt64([0, channels, -1], [3], 'head/rows_shape')]);
  return b.op('Transpose', [flat], { perm: [0, 2, 1] });
}

/** Checks a level list: non-empty, unique names, positive sizes, strides increasing from finest. */
export function checkLevels(what: string, levels: readonly HeadLevel[]): void {
  if (levels.length === 0) {
    throw new RlpkdError(`${what}: no pyramid levels given`, { hint: 'name at least one level, e.g. p5' });
  }
  const names = new Set<string>();
  levels.forEach((l, i) => {
    if (names.has(l.name)) {
      throw new RlpkdError(`${what}: level '${l.name}' is listed twice`, { hint: 'list each level once' });
    }
    names.add(l.name);
    for (const [key, v] of Object.entries({
      channels: l.channels,
      stride: l.stride,
      height: l.height,
      width: l.width,
    })) {
      if (!(Number.isInteger(v) && v > 0)) {
        throw new RlpkdError(`${what}: level '${l.name}' has ${key} ${v}`, {
          hint: 'channels, stride, height and width must be positive integers',
        });
      }
    }
    if (i > 0 && l.stride <= levels[i - 1].stride) {
      throw new RlpkdError(
        `${what}: levels must be ordered finest first (stride of '${l.name}' is ${l.stride})`,
        {
          hint: 'list the levels from the finest (smallest stride) to the coarsest',
        },
      );
    }
  });
}

/** Checks a class count. */
export function checkClasses(what: string, numClasses: number): void {
  if (!(Number.isInteger(numClasses) && numClasses >= 1)) {
    throw new RlpkdError(`${what}: numClasses must be a positive integer, got ${numClasses}`, {
      hint: 'set numClasses to the number of task classes',
    });
  }
}

/** A seeded stream for a head's initial weights. */
export function headRng(seed: number | undefined, label: string): Rng {
  return new Rng(seed ?? 0).fork(label);
}
