import { buildResnetFpn, type ResnetFpnOptions } from '../../src/models/resnet-fpn';
import type { OnnxModel } from '../../src/onnx/types';

/** A tiny torchvision-form ResNet18-FPN at 64×64 with LastLevelMaxPool (p6 computed from p5). */
export function tinyTorchFpn(extra: Partial<ResnetFpnOptions> = {}): OnnxModel {
  return buildResnetFpn({
    arch: 'resnet18-fpn',
    widthMult: 0.125,
    fpnChannels: 8,
    height: 64,
    width: 64,
    p6: true,
    ...extra,
  });
}
