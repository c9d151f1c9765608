/**
 * torchvision FeaturePyramidNetwork as exported: 1x1 lateral convs (`fpn.inner_blocks.i.0`), top-down
 * nearest upsampling to each lateral's size, 3x3 output convs (`fpn.layer_blocks.i.0`), and optionally
 * LastLevelMaxPool (MaxPool k1 s2 on P5) as P6.
 */
import type { FeatureMap } from './resnet';
import { child, convOutSize, type Scope, type TorchEmitter } from './torch-emitter';

/** A pyramid output: graph output name, stride, channels and spatial size. */
export interface FpnLevel extends FeatureMap {
  stride: number;
}

/**
 * Emits the FPN over C2..C5 (finest first) and returns P2..P5 (and P6) named `p2`.. in the graph.
 * Emission order follows torchvision's forward: P5 first, then top-down to P2, then P6.
 */
export function emitFpn(
  e: TorchEmitter,
  scope: Scope,
  features: FeatureMap[],
  outChannels: number,
  options: { p6?: boolean; firstLevel?: number; firstStride?: number } = {},
): FpnLevel[] {
  const first = options.firstLevel ?? 2;
  const firstStride = options.firstStride ?? 4;
  const inner = (i: number, x: FeatureMap): string =>
    e.conv(child(child(scope, `inner_blocks.${i}`), `inner_blocks.${i}.0`), x.name, {
      inChannels: x.channels,
      outChannels,
      kernel: 1,
      role: 'fpn',
    });
  const layer = (i: number, x: string): string =>
    e.conv(child(child(scope, `layer_blocks.${i}`), `layer_blocks.${i}.0`), x, {
      inChannels: outChannels,
      outChannels,
      kernel: 3,
      padding: 1,
      role: 'fpn',
      output: `p${first + i}`,
    });
  const levels: FpnLevel[] = new Array(features.length);
  const last = features.length - 1;
  let lastInner = inner(last, features[last]);
  const level = (i: number, name: string): FpnLevel => ({
    name,
    channels: outChannels,
    height: features[i].height,
    width: features[i].width,
    stride: firstStride * 2 ** i,
  });
  levels[last] = level(last, layer(last, lastInner));
  for (let i = last - 1; i >= 0; i--) {
    const lateral = inner(i, features[i]);
    const topDown = e.resizeNearestLike(scope, lastInner, lateral);
    lastInner = e.op(scope, 'Add', [lateral, topDown]);
    levels[i] = level(i, layer(i, lastInner));
  }
  if (options.p6) {
    const top = levels[last];
    const name = e.maxPool(child(scope, 'extra_blocks'), top.name, 1, 2, 0, `p${first + features.length}`);
    levels.push({
      name,
      channels: outChannels,
      height: convOutSize(top.height, 1, 2, 0),
      width: convOutSize(top.width, 1, 2, 0),
      stride: top.stride * 2,
    });
  }
  return levels;
}

/** Trainable elements of the FPN: lateral 1x1 and output 3x3 weights plus their biases. */
export function countFpnParameters(inChannels: readonly number[], outChannels: number): number {
  let n = 0;
  for (const c of inChannels)
    n += c * outChannels + outChannels + outChannels * outChannels * 9 + outChannels;
  return n;
}
