/**
 * `buildResnetFpn`: a torchvision `resnet_fpn_backbone` (BackboneWithFPN: `body` + `fpn`) emitted as the
 * ONNX graph torch.onnx.export makes of it, with seeded initialization or given weights. Input `images`
 * [batch, 3, H, W] (dynamic batch), outputs p2..p5 (strides 4..32) and optionally p6 (stride 64).
 */
import { RlpkdError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { validateModel } from '../onnx/graph-structure';
import { tieIdenticalInitializers } from '../onnx/shared-initializers';
import { DataType, type OnnxModel } from '../onnx/types';
import type { Seed } from '../util/rng';
import { countFpnParameters, emitFpn, type FpnLevel } from './fpn';
import { ParameterInit, type BatchNormInit, type BiasInit, type WeightSource } from './init';
import {
  RESNET_SPECS,
  countResnetBodyParameters,
  emitResnetBody,
  stageChannels,
  stemWidth,
  type ResnetDepth,
} from './resnet';
import { TorchEmitter } from './torch-emitter';

/** The architectures the builder knows, by the name the CLI and configs use. */
export const RESNET_FPN_ARCHS = ['resnet18-fpn', 'resnet34-fpn', 'resnet50-fpn', 'resnet101-fpn'] as const;
/** An architecture name such as 'resnet50-fpn'. */
export type ResnetFpnArch = (typeof RESNET_FPN_ARCHS)[number];

/** Opsets the builder emits (13 is the lowest with Unsqueeze axes as an input, as torch exports it). */
export const MIN_BUILD_OPSET = 13;
/** Highest opset the builder emits (no op it uses changes up to 18). */
export const MAX_BUILD_OPSET = 18;

/** What to build: architecture, widths, input size, opset and initialization. */
export interface ResnetFpnOptions {
  /** 'resnet50-fpn' (or plain 'resnet50'). */
  arch: ResnetFpnArch | string;
  /** Channel width multiplier of the body (stem 64 × widthMult; default 1). */
  widthMult?: number;
  /** FPN output channels (default 256). */
  fpnChannels?: number;
  /** RNG seed of the initialization (default 0). */
  seed?: Seed;
  /** Input height and width in pixels (default 224 × 224; at least 32). */
  height?: number;
  width?: number;
  /** ONNX opset of the default domain (default 17; 13..18). */
  opset?: number;
  /** Also output LastLevelMaxPool's level as p6. */
  p6?: boolean;
  /** FPN conv biases: 'zero' (torchvision's init, default) or 'random' (distinct, non-zero). */
  fpnBias?: BiasInit;
  /** Frozen batch-norm statistics: 'random' plausible values (default) or 'identity' (a fresh torchvision model). */
  batchNorm?: BatchNormInit;
  /** Pretrained tensors by state_dict key (frozen batch-norm as weight/bias/running_mean/running_var). */
  weights?: WeightSource;
  /** Tie byte-identical initializers through Identity nodes as torch.onnx.export does (default false). */
  tieIdentical?: boolean;
}

/** Everything about a built graph's structure a caller may need without re-reading the graph. */
export interface ResnetFpnInfo {
  arch: ResnetFpnArch;
  depth: ResnetDepth;
  widthMult: number;
  stemWidth: number;
  /** Channels of C2..C5 (FPN inputs). */
  stageChannels: number[];
  fpnChannels: number;
  height: number;
  width: number;
  levels: FpnLevel[];
  /** Trainable elements: conv weights and FPN biases (frozen batch-norm constants excluded). */
  trainableParameters: number;
}

/** Parses 'resnet50-fpn' / 'resnet50' into a depth; throws a clear error otherwise. */
export function parseArch(arch: string): { arch: ResnetFpnArch; depth: ResnetDepth } {
  const m = /^resnet(\d+)(?:[-_]fpn)?$/i.exec(arch.trim());
  const depth = m ? Number(m[1]) : NaN;
  if (!m || !(depth in RESNET_SPECS)) {
    throw new RlpkdError(`unknown architecture '${arch}'`, {
      hint: `use one of: ${RESNET_FPN_ARCHS.join(', ')}`,
    });
  }
  return { arch: `resnet${depth}-fpn` as ResnetFpnArch, depth: depth as ResnetDepth };
}

interface Resolved {
  arch: ResnetFpnArch;
  depth: ResnetDepth;
  widthMult: number;
  stem: number;
  fpnChannels: number;
  height: number;
  width: number;
  opset: number;
}

function resolve(options: ResnetFpnOptions): Resolved {
  const { arch, depth } = parseArch(options.arch);
  const widthMult = options.widthMult ?? 1;
  const stem = stemWidth(widthMult);
  const fpnChannels = options.fpnChannels ?? 256;
  const height = options.height ?? 224;
  const width = options.width ?? 224;
  const opset = options.opset ?? 17;
  const positiveInt = (v: number, what: string, min: number, hint: string): void => {
    if (!Number.isInteger(v) || v < min)
      throw new RlpkdError(`${what} must be an integer ≥ ${min}, got ${v}`, { hint });
  };
  positiveInt(fpnChannels, 'FPN channels', 1, 'torchvision uses 256; tiny models use 32 or 64');
  positiveInt(
    height,
    'input height',
    32,
    'the coarsest level has stride 32, so the input needs at least 32 pixels',
  );
  positiveInt(
    width,
    'input width',
    32,
    'the coarsest level has stride 32, so the input needs at least 32 pixels',
  );
  if (!Number.isInteger(opset) || opset < MIN_BUILD_OPSET || opset > MAX_BUILD_OPSET) {
    throw new RlpkdError(`opset ${opset} is not supported by the model builder`, {
      hint: `use ${MIN_BUILD_OPSET}..${MAX_BUILD_OPSET} (17 is the default and what torch 1.13 exports at most)`,
    });
  }
  return { arch, depth, widthMult, stem, fpnChannels, height, width, opset };
}

/** Builds the graph and returns it with its structural summary. */
export function buildResnetFpnWithInfo(options: ResnetFpnOptions): { model: OnnxModel; info: ResnetFpnInfo } {
  const r = resolve(options);
  const b = new GraphBuilder({ name: r.arch, opset: r.opset });
  const init = new ParameterInit({
    seed: options.seed,
    fpnBias: options.fpnBias,
    batchNorm: options.batchNorm,
    weights: options.weights,
  });
  const e = new TorchEmitter(b, init);
  const images = b.input('images', DataType.FLOAT, ['batch', 3, r.height, r.width]);
  const features = emitResnetBody(e, ['body'], images, r.depth, r.stem, r.height, r.width);
  const levels = emitFpn(e, ['fpn'], features, r.fpnChannels, { p6: options.p6 });
  for (const l of levels) b.output(l.name, DataType.FLOAT, ['batch', l.channels, l.height, l.width]);
  const trainable = countResnetFpnParameters(options);
  b.metadata = {
    'rlpkd.arch': r.arch,
    'rlpkd.width_mult': String(r.widthMult),
    'rlpkd.fpn_channels': String(r.fpnChannels),
    'rlpkd.seed': String(options.seed ?? 0),
    'rlpkd.init': options.weights ? 'pretrained' : `fpn_bias=${init.fpnBias},batch_norm=${init.batchNorm}`,
  };
  b.initializers.splice(0, b.initializers.length, ...stateDictOrder(b.initializers));
  let model = b.build();
  if (options.tieIdentical) model = tieIdenticalInitializers(model);
  validateModel(model, `built ${r.arch}`);
  const info: ResnetFpnInfo = {
    arch: r.arch,
    depth: r.depth,
    widthMult: r.widthMult,
    stemWidth: r.stem,
    stageChannels: features.map((f) => f.channels),
    fpnChannels: r.fpnChannels,
    height: r.height,
    width: r.width,
    levels,
    trainableParameters: trainable,
  };
  return { model, info };
}

/**
 * Initializers in torch.onnx.export's order: parameters as `state_dict()` lists them (body in module order,
 * then fpn.inner_blocks.0..3, fpn.layer_blocks.0..3, weight before bias), then constants in forward order.
 * Matters for tieIdentical: the exporter keeps the first of identical tensors (fpn.inner_blocks.0.0.bias).
 */
function stateDictOrder<T extends { name: string }>(tensors: readonly T[]): T[] {
  const body = tensors.filter((t) => t.name.startsWith('body.'));
  const fpnKey = (name: string): number[] => {
    const m = /^fpn\.(inner|layer)_blocks\.(\d+)\.0\.(weight|bias)$/.exec(name);
    return m ? [m[1] === 'inner' ? 0 : 1, Number(m[2]), m[3] === 'weight' ? 0 : 1] : [2, 0, 0];
  };
  const fpn = tensors
    .filter((t) => t.name.startsWith('fpn.'))
    .map((t) => ({ t, k: fpnKey(t.name) }))
    .sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1] || a.k[2] - b.k[2])
    .map((x) => x.t);
  const rest = tensors.filter((t) => !t.name.startsWith('body.') && !t.name.startsWith('fpn.'));
  return [...body, ...fpn, ...rest];
}

/** Builds a torchvision-style ResNet-FPN backbone graph (see ResnetFpnOptions). */
export function buildResnetFpn(options: ResnetFpnOptions): OnnxModel {
  return buildResnetFpnWithInfo(options).model;
}

/**
 * Trainable parameter elements of an architecture without building it (conv weights + FPN biases;
 * 26,799,296 for a full-width resnet50-fpn, as torchvision counts `model.parameters()`).
 */
export function countResnetFpnParameters(
  options: Pick<ResnetFpnOptions, 'arch' | 'widthMult' | 'fpnChannels'>,
): number {
  const { depth } = parseArch(options.arch);
  const stem = stemWidth(options.widthMult ?? 1);
  const fpn = options.fpnChannels ?? 256;
  return countResnetBodyParameters(depth, stem) + countFpnParameters(stageChannels(depth, stem), fpn);
}
