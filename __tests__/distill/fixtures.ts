/** Tiny ResNet-FPN teacher/student graphs (the project's builder) for fast distillation tests. */
import { buildResnetFpn, type ResnetFpnOptions } from '../../src/models/resnet-fpn';
import type { OnnxModel } from '../../src/onnx/types';

/** A resnet18-fpn (or given arch) at 32×32 with few channels: P2..P5 at 8, 4, 2, 1 pixels. */
export function tinyFpn(options: Partial<ResnetFpnOptions> = {}): OnnxModel {
  return buildResnetFpn({
    arch: 'resnet18-fpn',
    widthMult: 1 / 16,
    fpnChannels: 8,
    height: 32,
    width: 32,
    fpnBias: 'random',
    seed: 1,
    ...options,
  });
}
