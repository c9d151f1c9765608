/**
 * torchvision ResNet bodies (BasicBlock for 18/34, Bottleneck v1.5 with the stride on the 3x3 conv for
 * 50/101) as `BackboneWithFPN.body` exports them: stem, then layer1..layer4, returning C2..C5.
 */
import { RlpkdError } from '../errors';
import { child, convOutSize, type Scope, type TorchEmitter } from './torch-emitter';

/** The ResNet depths torchvision's resnet_fpn_backbone offers (and this builder emits). */
export type ResnetDepth = 18 | 34 | 50 | 101;

/** Block type and blocks per stage for each depth (torchvision's table). */
export const RESNET_SPECS: Readonly<
  Record<ResnetDepth, { block: 'basic' | 'bottleneck'; layers: number[] }>
> = {
  18: { block: 'basic', layers: [2, 2, 2, 2] },
  34: { block: 'basic', layers: [3, 4, 6, 3] },
  50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
};

/** A feature map produced by the body: tensor name, channels and spatial size. */
export interface FeatureMap {
  name: string;
  channels: number;
  height: number;
  width: number;
}

/** Stem width (64 at full width) for a width multiplier; stage s has stemWidth · 2^s planes. */
export function stemWidth(widthMult: number): number {
  if (!(widthMult > 0) || !Number.isFinite(widthMult)) {
    throw new RlpkdError(`width multiplier must be a positive number, got ${widthMult}`, {
      hint: 'use 1 for the standard width, 0.25 or 0.125 for tiny models',
    });
  }
  const w = Math.round(64 * widthMult);
  if (w < 1) {
    throw new RlpkdError(`width multiplier ${widthMult} leaves no channels (64 × ${widthMult} rounds to 0)`, {
      hint: 'use a multiplier of at least 1/64',
    });
  }
  return w;
}

/** Channels of C2..C5 for a depth and stem width (expansion 4 for Bottleneck). */
export function stageChannels(depth: ResnetDepth, stem: number): number[] {
  const expansion = RESNET_SPECS[depth].block === 'bottleneck' ? 4 : 1;
  return [0, 1, 2, 3].map((s) => stem * 2 ** s * expansion);
}

/** Emits the body and returns C2..C5. `scope` is the body's scope (['body']). */
export function emitResnetBody(
  e: TorchEmitter,
  scope: Scope,
  images: string,
  depth: ResnetDepth,
  stem: number,
  height: number,
  width: number,
): FeatureMap[] {
  const spec = RESNET_SPECS[depth];
  let h = convOutSize(height, 7, 2, 3);
  let w = convOutSize(width, 7, 2, 3);
  let x = e.conv(child(scope, 'conv1'), images, {
    inChannels: 3,
    outChannels: stem,
    kernel: 7,
    stride: 2,
    padding: 3,
    role: 'backbone',
  });
  x = e.frozenBatchNorm(child(scope, 'bn1'), x, stem);
  x = e.relu(child(scope, 'relu'), x);
  x = e.maxPool(child(scope, 'maxpool'), x, 3, 2, 1);
  h = convOutSize(h, 3, 2, 1);
  w = convOutSize(w, 3, 2, 1);
  let inplanes = stem;
  const features: FeatureMap[] = [];
  spec.layers.forEach((blocks, s) => {
    const layer = `layer${s + 1}`;
    const planes = stem * 2 ** s;
    const stride = s === 0 ? 1 : 2;
    for (let i = 0; i < blocks; i++) {
      const blockScope = child(child(scope, layer), `${layer}.${i}`);
      const blockStride = i === 0 ? stride : 1;
      const emitBlock = spec.block === 'basic' ? basicBlock : bottleneck;
      const out = emitBlock(e, blockScope, x, inplanes, planes, blockStride);
      x = out.output;
      inplanes = out.channels;
      h = convOutSize(h, 3, blockStride, 1);
      w = convOutSize(w, 3, blockStride, 1);
    }
    features.push({ name: x, channels: inplanes, height: h, width: w });
  });
  return features;
}

interface BlockOut {
  output: string;
  channels: number;
}

function downsample(
  e: TorchEmitter,
  scope: Scope,
  x: string,
  inplanes: number,
  out: number,
  stride: number,
): string {
  const ds = child(scope, 'downsample');
  const y = e.conv(child(ds, 'downsample.0'), x, {
    inChannels: inplanes,
    outChannels: out,
    kernel: 1,
    stride,
    role: 'backbone',
  });
  return e.frozenBatchNorm(child(ds, 'downsample.1'), y, out);
}

/** A block's `conv<i>` followed by its `bn<i>` (torchvision's module names): backbone conv, frozen batch norm. */
function convBn(
  e: TorchEmitter,
  scope: Scope,
  i: number,
  x: string,
  conv: Omit<Parameters<TorchEmitter['conv']>[2], 'role'>,
): string {
  const y = e.conv(child(scope, `conv${i}`), x, { ...conv, role: 'backbone' });
  return e.frozenBatchNorm(child(scope, `bn${i}`), y, conv.outChannels);
}

/** torchvision BasicBlock: conv3x3-bn-relu-conv3x3-bn, + identity (or downsample), relu. */
function basicBlock(
  e: TorchEmitter,
  scope: Scope,
  x: string,
  inplanes: number,
  planes: number,
  stride: number,
): BlockOut {
  let y = convBn(e, scope, 1, x, {
    inChannels: inplanes,
    outChannels: planes,
    kernel: 3,
    stride,
    padding: 1,
  });
  y = e.relu(child(scope, 'relu'), y);
  y = convBn(e, scope, 2, y, { inChannels: planes, outChannels: planes, kernel: 3, padding: 1 });
  const identity =
    stride !== 1 || inplanes !== planes ? downsample(e, scope, x, inplanes, planes, stride) : x;
  const sum = e.op(scope, 'Add', [y, identity]);
  return { output: e.relu(child(scope, 'relu_1'), sum), channels: planes };
}

/** torchvision Bottleneck (v1.5): conv1x1-bn-relu-conv3x3(stride)-bn-relu-conv1x1-bn, + identity, relu. */
function bottleneck(
  e: TorchEmitter,
  scope: Scope,
  x: string,
  inplanes: number,
  planes: number,
  stride: number,
): BlockOut {
  const out = planes * 4;
  let y = convBn(e, scope, 1, x, { inChannels: inplanes, outChannels: planes, kernel: 1 });
  y = e.relu(child(scope, 'relu'), y);
  y = convBn(e, scope, 2, y, { inChannels: planes, outChannels: planes, kernel: 3, stride, padding: 1 });
  y = e.relu(child(scope, 'relu_1'), y);
  y = convBn(e, scope, 3, y, { inChannels: planes, outChannels: out, kernel: 1 });
  const identity = stride !== 1 || inplanes !== out ? downsample(e, scope, x, inplanes, out, stride) : x;
  const sum = e.op(scope, 'Add', [y, identity]);
  return { output: e.relu(child(scope, 'relu_2'), sum), channels: out };
}

/** Trainable elements of a ResNet body (conv weights only; frozen batch-norm is constant). */
export function countResnetBodyParameters(depth: ResnetDepth, stem: number): number {
  const spec = RESNET_SPECS[depth];
  let n = 3 * stem * 49;
  let inplanes = stem;
  spec.layers.forEach((blocks, s) => {
    const planes = stem * 2 ** s;
    for (let i = 0; i < blocks; i++) {
      const stride = i === 0 && s > 0 ? 2 : 1;
      if (spec.block === 'basic') {
        n += inplanes * planes * 9 + planes * planes * 9;
        if (stride !== 1 || inplanes !== planes) n += inplanes * planes;
        inplanes = planes;
      } else {
        const out = planes * 4;
        n += inplanes * planes + planes * planes * 9 + planes * out;
        if (stride !== 1 || inplanes !== out) n += inplanes * out;
        inplanes = out;
      }
    }
  });
  return n;
}
