/**
 * The student graph plus its distillation loss, as one model the engine makes training artifacts of
 * (loss type 'output'): teacher features, the [N, L] level mask and the [L] level weights are graph inputs;
 * outputs are the weighted loss, each level's masked unweighted loss and the [N, L] per-image distances.
 * The engine's featureDistillationLoss does the masking and weighting; only the distance varies.
 */
import { GraphBuilder } from '../onnx/graph-builder';
import { DataType, type OnnxModel } from '../onnx/types';
import { featureDistillationLoss } from '../training/losses';
import { levelDistance, type DistillLossKind } from '../training/level-distances';
import type { LevelPair } from './level-matching';

/** Tensor names of the distillation model. */
export const DISTILL_IO = {
  mask: 'distill.mask',
  weights: 'distill.weights',
  loss: 'distill.loss',
  perSample: 'distill.per_sample',
  teacher: (level: string) => `teacher.${level}`,
  levelLoss: (level: string) => `distill.level_loss.${level}`,
} as const;

/** The built model and where things are. */
export interface DistillationModel {
  model: OnnxModel;
  /** Student image input. */
  imageInput: string;
  /** Teacher feature input per level, in level order. */
  teacherInputs: string[];
  /** Masked unweighted level-loss outputs, in level order. */
  levelLosses: string[];
}

/** Appends the masked, weighted per-level distillation loss to the (adapted) student graph. */
export function buildDistillationModel(
  student: OnnxModel,
  pairs: readonly LevelPair[],
  options: { loss: DistillLossKind; tau?: number; imageInput: string },
): DistillationModel {
  const b = GraphBuilder.fromModel(student);
  b.name = `${student.graph.name}_distill`;
  const teacherInputs = pairs.map((p) =>
    b.input(DISTILL_IO.teacher(p.name), DataType.FLOAT, [
      'batch',
      p.teacher.channels,
      p.teacher.height,
      p.teacher.width,
    ]),
  );
  const L = pairs.length;
  b.input(DISTILL_IO.mask, DataType.FLOAT, ['batch', L]);
  b.input(DISTILL_IO.weights, DataType.FLOAT, [L]);
  const t = featureDistillationLoss(b, {
    levels: pairs.map((p, l) => ({ name: p.name, student: p.studentTensor, teacher: teacherInputs[l] })),
    mask: DISTILL_IO.mask,
    weights: DISTILL_IO.weights,
    distance: levelDistance(options.loss, options.tau ?? 1),
    perSample: true,
  });
  b.outputs.length = 0;
  b.output(b.op('Identity', [t.loss], {}, { outputs: [DISTILL_IO.loss] }), DataType.FLOAT, []);
  const levelLosses = pairs.map((p, l) =>
    b.output(
      b.op('Identity', [t.levelLosses[l]], {}, { outputs: [DISTILL_IO.levelLoss(p.name)] }),
      DataType.FLOAT,
      [],
    ),
  );
  b.output(b.op('Identity', [t.perSample!], {}, { outputs: [DISTILL_IO.perSample] }), DataType.FLOAT, [
    'batch',
    L,
  ]);
  return { model: b.build(), imageInput: options.imageInput, teacherInputs, levelLosses };
}
