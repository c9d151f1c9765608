/**
 * A light Semantic-FPN head (Kirillov et al. 2019, "Panoptic Feature Pyramid Networks", reduced to one
 * stage per level): per level a 3×3 conv + ReLU to a common width, bilinear upsampling to the finest
 * level, a sum, a 1×1 classifier, and bilinear upsampling of the logits to the image size.
 */
import { GraphBuilder } from '../onnx/graph-builder';
import { DataType } from '../onnx/types';
import { checkClasses, checkLevels, conv, convParameters, headRng, resizeBilinear } from './head-graph';
import type { HeadLevel, HeadModel } from './types';

export interface SegmentationHeadOptions {
  /** The pyramid levels, finest first; every one is used. */
  levels: readonly HeadLevel[];
  numClasses: number;
  imageHeight: number;
  imageWidth: number;
  /** Common width of the per-level branches (default 128, as Semantic FPN). */
  width?: number;
  prefix?: string;
  /** Output name of the logits [N, K, H, W] (default `seg_logits`). */
  output?: string;
  seed?: number;
}

/** Builds the segmentation head graph: inputs the levels, output per-pixel logits at the image size. */
export function buildSegmentationHead(options: SegmentationHeadOptions): HeadModel {
  checkLevels('segmentation head', options.levels);
  checkClasses('segmentation head', options.numClasses);
  const levels = [...options.levels];
  const prefix = options.prefix ?? 'head';
  const output = options.output ?? 'seg_logits';
  const width = options.width ?? 128;
  const K = options.numClasses;
  const rng = headRng(options.seed, 'segmentation-head');
  const b = new GraphBuilder({ name: 'segmentation_head' });
  const finest = levels[0];
  let sum: string | undefined;
  levels.forEach((level, i) => {
    b.input(level.name, DataType.FLOAT, ['batch', level.channels, level.height, level.width]);
    const params = convParameters(b, rng, {
      name: `${prefix}.scale_heads.${i}`,
      inChannels: level.channels,
      outChannels: width,
      kernel: 3,
      init: { kind: 'he' },
    });
    let y = b.op('Relu', [conv(b, level.name, params, 3)]);
    if (i > 0) y = resizeBilinear(b, y, finest.height, finest.width);
    sum = sum === undefined ? y : b.op('Add', [sum, y]);
  });
  const cls = convParameters(b, rng, {
    name: `${prefix}.classifier`,
    inChannels: width,
    outChannels: K,
    kernel: 1,
    init: { kind: 'normal', std: 0.01 },
  });
  const logits = conv(b, sum!, cls, 1);
  b.op(
    'Identity',
    [resizeBilinear(b, logits, options.imageHeight, options.imageWidth)],
    {},
    { outputs: [output] },
  );
  b.output(output, DataType.FLOAT, ['batch', K, options.imageHeight, options.imageWidth]);
  return {
    task: 'segmentation',
    model: b.build(),
    levels,
    outputs: { logits: output },
    numClasses: K,
    imageHeight: options.imageHeight,
    imageWidth: options.imageWidth,
  };
}
