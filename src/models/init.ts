/**
 * Seeded parameter initialization mirroring torchvision: backbone convolutions kaiming-normal (fan_out,
 * relu), FPN convolutions kaiming-uniform (a=1) with zero bias, frozen batch-norm folded to a per-channel
 * scale and shift. Every tensor draws from its own RNG stream forked by parameter name, so a tensor's values
 * depend only on the seed and its name (not on build order). Pretrained values can replace any of it.
 */
import { RlpkdError } from '../errors';
import { Rng, type Seed } from '../util/rng';

/** Supplies tensors by PyTorch state_dict key (`body.conv1.weight`, `body.bn1.running_var`, ...). */
export type WeightSource = (key: string) => Float32Array | undefined;

/** FPN conv biases: zero as torchvision initializes them, or U(±1/sqrt(fan_in)) so no two are identical. */
export type BiasInit = 'zero' | 'random';

/**
 * Frozen batch-norm statistics: 'identity' as a fresh torchvision model (weight 1, bias 0, mean 0, var 1),
 * or 'random' plausible trained-looking values (weight 1±0.1, bias ±0.1, mean ±0.1, var in [0.5, 1.5]).
 */
export type BatchNormInit = 'identity' | 'random';

/** Seed and initialization choices of a ResNet-FPN build. */
export interface InitOptions {
  seed?: Seed;
  fpnBias?: BiasInit;
  batchNorm?: BatchNormInit;
  /** Pretrained tensors; when given, every parameter and batch-norm statistic must be present. */
  weights?: WeightSource;
}

/** torchvision FrozenBatchNorm2d's epsilon. */
export const FROZEN_BN_EPS = 1e-5;

/** A folded frozen batch-norm: y = x * scale + shift, per channel. */
export interface FoldedBatchNorm {
  scale: Float32Array;
  shift: Float32Array;
}

/** Makes the initial value of every tensor a ResNet-FPN builder asks for. */
export class ParameterInit {
  private readonly root: Rng;
  readonly fpnBias: BiasInit;
  readonly batchNorm: BatchNormInit;
  private readonly weights: WeightSource | undefined;

  constructor(options: InitOptions = {}) {
    this.root = new Rng(options.seed ?? 0).fork('resnet-fpn-init');
    this.fpnBias = options.fpnBias ?? 'zero';
    this.batchNorm = options.batchNorm ?? 'random';
    this.weights = options.weights;
  }

  /** Backbone conv weight [out, in, k, k]: N(0, 2 / fan_out) (kaiming_normal_, mode='fan_out', relu). */
  backboneConvWeight(key: string, dims: number[]): Float32Array {
    const given = this.pretrained(key, dims);
    if (given) return given;
    const fanOut = dims[0] * dims[2] * dims[3];
    return this.root.fork(key).fillNormal(new Float32Array(size(dims)), 0, Math.sqrt(2 / fanOut));
  }

  /** FPN conv weight: U(±sqrt(3 / fan_in)) (kaiming_uniform_ with a=1, gain 1). */
  fpnConvWeight(key: string, dims: number[]): Float32Array {
    const given = this.pretrained(key, dims);
    if (given) return given;
    const bound = Math.sqrt(3 / (dims[1] * dims[2] * dims[3]));
    return this.root.fork(key).fillUniform(new Float32Array(size(dims)), -bound, bound);
  }

  /** FPN conv bias [out]: zeros, or U(±1/sqrt(fan_in)) (PyTorch's default conv bias range). */
  fpnConvBias(key: string, channels: number, fanIn: number): Float32Array {
    const given = this.pretrained(key, [channels]);
    if (given) return given;
    const out = new Float32Array(channels);
    if (this.fpnBias === 'zero') return out;
    const bound = 1 / Math.sqrt(fanIn);
    return this.root.fork(key).fillUniform(out, -bound, bound);
  }

  /** Frozen batch-norm of module `module` (state_dict prefix) folded to scale/shift. */
  frozenBatchNorm(module: string, channels: number): FoldedBatchNorm {
    let weight: Float32Array;
    let bias: Float32Array;
    let mean: Float32Array;
    let variance: Float32Array;
    if (this.weights) {
      weight = this.pretrained(`${module}.weight`, [channels])!;
      bias = this.pretrained(`${module}.bias`, [channels])!;
      mean = this.pretrained(`${module}.running_mean`, [channels])!;
      variance = this.pretrained(`${module}.running_var`, [channels])!;
    } else if (this.batchNorm === 'identity') {
      weight = new Float32Array(channels).fill(1);
      bias = new Float32Array(channels);
      mean = new Float32Array(channels);
      variance = new Float32Array(channels).fill(1);
    } else {
      const r = this.root.fork(`${module}.frozen_bn`);
      weight = r.fillNormal(new Float32Array(channels), 1, 0.1);
      bias = r.fillNormal(new Float32Array(channels), 0, 0.1);
      mean = r.fillNormal(new Float32Array(channels), 0, 0.1);
      variance = r.fillUniform(new Float32Array(channels), 0.5, 1.5);
    }
    return foldBatchNorm(weight, bias, mean, variance, FROZEN_BN_EPS);
  }

  private pretrained(key: string, dims: number[]): Float32Array | undefined {
    if (!this.weights) return undefined;
    const t = this.weights(key);
    const n = size(dims);
    if (!t) {
      throw new RlpkdError(`weights: no tensor '${key}' (expected shape [${dims.join(', ')}])`, {
        hint: 'the weights must come from the same architecture and width (state_dict keys as in torchvision)',
      });
    }
    if (t.length !== n) {
      throw new RlpkdError(
        `weights: tensor '${key}' has ${t.length} values, the model needs [${dims.join(', ')}] = ${n}`,
        { hint: 'check the architecture, width multiplier and FPN channels' },
      );
    }
    return Float32Array.from(t);
  }
}

/** scale = weight / sqrt(var + eps), shift = bias − mean · scale (what FrozenBatchNorm2d computes). */
export function foldBatchNorm(
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  eps = FROZEN_BN_EPS,
): FoldedBatchNorm {
  const n = weight.length;
  const scale = new Float32Array(n);
  const shift = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    const s = Math.fround(weight[c] * Math.fround(1 / Math.sqrt(Math.fround(variance[c] + eps))));
    scale[c] = s;
    shift[c] = bias[c] - mean[c] * s;
  }
  return { scale, shift };
}

function size(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
