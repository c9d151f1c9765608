/**
 * The task loss on top of a head's outputs, appended to any graph that computes them (the head alone on
 * pyramid inputs, or a backbone + head task model), so generateArtifacts trains it with its `output` loss
 * type: the returned model outputs the scalar `head.loss` and takes the targets as graph inputs.
 * Classification: cross-entropy (labels int64 [N]); segmentation: per-pixel cross-entropy with ignore
 * index 255 (labels int64 [N, H, W]); detection: the FCOS loss (targets from assignFcosTargets).
 */
import { GraphError } from '../errors';
import { SEG_IGNORE_INDEX } from '../metrics/segmentation';
import { GraphBuilder } from '../onnx/graph-builder';
import { DataType, type Dim, type OnnxModel, type ValueInfo } from '../onnx/types';
import type { OutputLossSpec } from '../training/losses';
import { crossEntropyWithIgnore } from './cross-entropy';
import { fcosLoss, type BoxLossKind } from './fcos-loss';
import { fcosLocationCount } from './fcos-targets';
import type { HeadModel } from './types';

/** Names of the target inputs and loss outputs the head loss adds. */
export const HEAD_LOSS_NAMES = {
  loss: 'head.loss',
  labels: 'head.labels',
  clsTargets: 'head.cls_targets',
  boxTargets: 'head.box_targets',
  centernessTargets: 'head.centerness_targets',
  positive: 'head.positive',
  lossCls: 'head.loss_cls',
  lossBox: 'head.loss_box',
  lossCenterness: 'head.loss_centerness',
  perSample: 'head.per_sample_loss',
} as const;

export interface HeadLossOptions {
  /** Detection box loss (default 'giou'). */
  boxLoss?: BoxLossKind;
  /** Focal loss α and γ (default 0.25 and 2, FCOS's). */
  alpha?: number;
  gamma?: number;
  /**
   * Also output `head.per_sample_loss` [N]: each image's loss as if it were a batch of one (a per-image
   * task signal, e.g. for a reward).
   */
  perSample?: boolean;
}

export interface HeadLossModel {
  /** The model with the loss appended: outputs the model's own outputs, then `head.loss` and its parts. */
  model: OnnxModel;
  /** The loss specification generateArtifacts takes for it. */
  loss: OutputLossSpec;
  /** Target inputs the loss added (fed each step). */
  targets: ValueInfo[];
}

/**
 * Appends `head`'s task loss to `model`, which must output the head's outputs under their names.
 * Train it with `generateArtifacts(result.model, { loss: result.loss, untieSharedInitializers: false, ... })`:
 * the detection head shares its convs across levels, and untying would give each level its own copy.
 */
export function appendHeadLoss(
  model: OnnxModel,
  head: HeadModel,
  options: HeadLossOptions = {},
): HeadLossModel {
  for (const out of Object.values(head.outputs)) {
    if (!model.graph.outputs.some((o) => o.name === out)) {
      throw new GraphError(`head loss: graph '${model.graph.name}' has no output '${out}'`, {
        hint: `attach the ${head.task} head first (composeTaskModel) or pass the head's own model`,
      });
    }
  }
  const b = GraphBuilder.fromModel(model);
  const names = HEAD_LOSS_NAMES;
  const targets: ValueInfo[] = [];
  const input = (name: string, dataType: DataType, shape: Dim[]): string => {
    if (b.has(name)) {
      throw new GraphError(`head loss: input name '${name}' is already used in graph '${model.graph.name}'`, {
        hint: 'rename that tensor in the model; the head loss reserves the head.* names',
      });
    }
    targets.push({ name, dataType, shape });
    return b.input(name, dataType, shape);
  };
  const extra: string[] = [];
  let loss: string;
  let perSample: string | undefined;
  const H = head.imageHeight;
  const W = head.imageWidth;
  if (head.task === 'detection') {
    const A = fcosLocationCount(head.levels);
    const t = fcosLoss(b, {
      cls: head.outputs.cls,
      box: head.outputs.box,
      centerness: head.outputs.centerness,
      clsTargets: input(names.clsTargets, DataType.FLOAT, ['batch', A, head.numClasses]),
      boxTargets: input(names.boxTargets, DataType.FLOAT, ['batch', A, 4]),
      centernessTargets: input(names.centernessTargets, DataType.FLOAT, ['batch', A]),
      positive: input(names.positive, DataType.FLOAT, ['batch', A]),
      ...(options.boxLoss ? { boxLoss: options.boxLoss } : {}),
      ...(options.alpha !== undefined ? { alpha: options.alpha } : {}),
      ...(options.gamma !== undefined ? { gamma: options.gamma } : {}),
      perSample: options.perSample ?? false,
    });
    for (const [name, tensor] of [
      [names.lossCls, t.cls],
      [names.lossBox, t.box],
      [names.lossCenterness, t.centerness],
    ] as const) {
      b.op('Identity', [tensor], {}, { outputs: [name] });
      extra.push(name);
    }
    loss = t.loss;
    perSample = t.perSample;
  } else if (head.task === 'segmentation') {
    const labels = input(names.labels, DataType.INT64, ['batch', H, W]);
    const ce = crossEntropyWithIgnore(b, head.outputs.logits, labels, {
      rank: 4,
      ignoreIndex: SEG_IGNORE_INDEX,
      perSample: options.perSample ?? false,
    });
    [loss, perSample] = [ce.loss, ce.perSample];
  } else {
    const labels = input(names.labels, DataType.INT64, ['batch']);
    const ce = crossEntropyWithIgnore(b, head.outputs.logits, labels, {
      rank: 2,
      perSample: options.perSample ?? false,
    });
    [loss, perSample] = [ce.loss, ce.perSample];
  }
  b.op('Identity', [loss], {}, { outputs: [names.loss] });
  b.output(names.loss, DataType.FLOAT, []);
  for (const name of extra) b.output(name, DataType.FLOAT, []);
  if (perSample) {
    b.op('Identity', [perSample], {}, { outputs: [names.perSample] });
    b.output(names.perSample, DataType.FLOAT, ['batch']);
    extra.push(names.perSample);
  }
  return {
    model: b.build(),
    loss: { type: 'output', output: names.loss, ...(extra.length ? { extraOutputs: extra } : {}) },
    targets,
  };
}
