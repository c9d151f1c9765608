/**
 * A one-stage dense detection head in the style of FCOS (Tian et al. 2019, "FCOS: Fully Convolutional
 * One-Stage Object Detection"), shared across levels: a classification tower and a box tower of 3×3
 * conv + ReLU layers, a K-way classification conv (sigmoid logits, bias at the 0.01 prior), a 4-channel
 * box conv whose exp times the level's stride gives left/top/right/bottom distances in image pixels, and a
 * centerness conv on the box tower (as FCOS's later versions). Differences from the paper: no GroupNorm in
 * the towers and a fixed per-level scale (the stride) instead of a learnt one, so every parameter is a
 * conv weight or bias. Outputs are concatenated over levels, finest first, locations row-major:
 * cls_logits [N, A, K], box_ltrb [N, A, 4], centerness [N, A] (logits).
 */
import { GraphError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { DataType } from '../onnx/types';
import { fcosLocationCount } from './fcos-targets';
import { checkClasses, checkLevels, conv, convParameters, headRng, locationsAsRows } from './head-graph';
import type { HeadLevel, HeadModel } from './types';

export interface FcosHeadOptions {
  /** The pyramid levels, finest first; all must have the same channels (one shared head). */
  levels: readonly HeadLevel[];
  numClasses: number;
  imageHeight: number;
  imageWidth: number;
  /** Conv layers per tower (default 2; FCOS uses 4 at 256 channels). */
  towerConvs?: number;
  prefix?: string;
  seed?: number;
}

/** FCOS's prior probability for the classification bias: b = −log((1 − π)/π). */
export const FCOS_PRIOR = 0.01;

/** Output names of the detection head. */
export const FCOS_OUTPUTS = { cls: 'cls_logits', box: 'box_ltrb', centerness: 'centerness' } as const;

/** Builds the detection head graph (parameters shared across levels: one initializer per conv). */
export function buildFcosHead(options: FcosHeadOptions): HeadModel {
  checkLevels('detection head', options.levels);
  checkClasses('detection head', options.numClasses);
  const levels = [...options.levels];
  const C = levels[0].channels;
  const bad = levels.find((l) => l.channels !== C);
  if (bad) {
    throw new GraphError(
      `detection head: level '${bad.name}' has ${bad.channels} channels, '${levels[0].name}' ${C}`,
      {
        hint: 'the shared head needs every level at the same width (an FPN gives that)',
      },
    );
  }
  const K = options.numClasses;
  const prefix = options.prefix ?? 'head';
  const depth = options.towerConvs ?? 2;
  const rng = headRng(options.seed, 'fcos-head');
  const b = new GraphBuilder({ name: 'fcos_head' });
  // Every conv of the head is 3×3 from C channels with FCOS's normal(0, 0.01) weights.
  const conv3 = (name: string, outChannels: number, bias = 0): [string, string] =>
    convParameters(b, rng, {
      name: `${prefix}.${name}`,
      inChannels: C,
      outChannels,
      kernel: 3,
      init: { kind: 'normal', std: 0.01 },
      bias,
    });
  const tower = (name: string): [string, string][] =>
    Array.from({ length: depth }, (_, i) => conv3(`${name}.${i}`, C));
  const clsTower = tower('cls_tower');
  const boxTower = tower('bbox_tower');
  const clsOut = conv3('cls_logits', K, -Math.log((1 - FCOS_PRIOR) / FCOS_PRIOR));
  const boxOut = conv3('bbox_pred', 4);
  const ctrOut = conv3('centerness', 1);
  const cls: string[] = [];
  const box: string[] = [];
  const ctr: string[] = [];
  for (const level of levels) {
    b.input(level.name, DataType.FLOAT, ['batch', C, level.height, level.width]);
    const run = (x: string, layers: [string, string][]): string =>
      layers.reduce((y, p) => b.op('Relu', [conv(b, y, p, 3)]), x);
    const c = run(level.name, clsTower);
    const r = run(level.name, boxTower);
    cls.push(locationsAsRows(b, conv(b, c, clsOut, 3), K));
    const dist = b.op('Mul', [
      b.op('Exp', [conv(b, r, boxOut, 3)]),
      b.constFloat(level.stride, [], 'head/stride'),
    ]);
    box.push(locationsAsRows(b, dist, 4));
    ctr.push(b.op('Reshape', [conv(b, r, ctrOut, 3), b.constInt64([0, -1], [2], 'head/ctr_shape')]));
  }
  const concat = (xs: string[], out: string): void => {
    b.node(xs.length === 1 ? 'Identity' : 'Concat', xs, xs.length === 1 ? {} : { axis: 1 }, {
      outputs: [out],
    });
  };
  concat(cls, FCOS_OUTPUTS.cls);
  concat(box, FCOS_OUTPUTS.box);
  concat(ctr, FCOS_OUTPUTS.centerness);
  const A = fcosLocationCount(levels);
  b.output(FCOS_OUTPUTS.cls, DataType.FLOAT, ['batch', A, K]);
  b.output(FCOS_OUTPUTS.box, DataType.FLOAT, ['batch', A, 4]);
  b.output(FCOS_OUTPUTS.centerness, DataType.FLOAT, ['batch', A]);
  return {
    task: 'detection',
    model: b.build(),
    levels,
    outputs: { ...FCOS_OUTPUTS },
    numClasses: K,
    imageHeight: options.imageHeight,
    imageWidth: options.imageWidth,
  };
}
