/**
 * Classification head: global average pooling of the coarsest level, then one linear layer to class
 * logits (torchvision's ResNet classifier, applied to the pyramid's top level).
 */
import { GraphBuilder } from '../onnx/graph-builder';
import { floatTensor } from '../onnx/tensor-data';
import { DataType } from '../onnx/types';
import { checkClasses, checkLevels, headRng } from './head-graph';
import type { HeadLevel, HeadModel } from './types';

export interface ClassificationHeadOptions {
  /** The pyramid levels; the head reads the coarsest (last) one. */
  levels: readonly HeadLevel[];
  numClasses: number;
  imageHeight: number;
  imageWidth: number;
  /** Parameter name prefix (default `head`). */
  prefix?: string;
  /** Output name of the logits (default `logits`). */
  output?: string;
  seed?: number;
}

/** Builds the classification head graph: input the coarsest level, output logits [N, K]. */
export function buildClassificationHead(options: ClassificationHeadOptions): HeadModel {
  checkLevels('classification head', options.levels);
  checkClasses('classification head', options.numClasses);
  const top = options.levels[options.levels.length - 1];
  const prefix = options.prefix ?? 'head';
  const output = options.output ?? 'logits';
  const K = options.numClasses;
  const rng = headRng(options.seed, 'classification-head');
  const b = new GraphBuilder({ name: 'classification_head' });
  b.input(top.name, DataType.FLOAT, ['batch', top.channels, top.height, top.width]);
  // torchvision's nn.Linear default would be uniform(±1/√C); a small normal keeps the first logits near 0.
  const w = Float32Array.from({ length: K * top.channels }, () => rng.normal(0, 0.01));
  const weight = b.initializer(floatTensor(`${prefix}.fc.weight`, [K, top.channels], w), { exactName: true });
  const bias = b.initializer(floatTensor(`${prefix}.fc.bias`, [K], new Float32Array(K)), { exactName: true });
  const pooled = b.op('Flatten', [b.op('GlobalAveragePool', [top.name])], { axis: 1 });
  b.op('Gemm', [pooled, weight, bias], { transB: 1 }, { outputs: [output] });
  b.output(output, DataType.FLOAT, ['batch', K]);
  return {
    task: 'classification',
    model: b.build(),
    levels: [top],
    outputs: { logits: output },
    numClasses: K,
    imageHeight: options.imageHeight,
    imageWidth: options.imageWidth,
  };
}
