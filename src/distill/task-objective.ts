/**
 * Distillation with the task loss, as one graph and one step: the student graph also computes its own task
 * head's outputs (the head composed on its pyramid, see student-head.ts), the head's loss on the labels is
 * appended (src/heads appendHeadLoss), and the training objective is
 *   objective = a · distill.loss + b · head.loss
 * with a (`distill.distill_weight`) and b (`distill.task_loss_weight`) fed as scalar inputs, not baked in:
 * the labels-only baseline is the same artifacts fed a = 0, so both students run one set of graphs.
 */
import { GraphError } from '../errors';
import { appendHeadLoss, HEAD_LOSS_NAMES } from '../heads/head-loss';
import type { HeadModel } from '../heads/types';
import { GraphBuilder } from '../onnx/graph-builder';
import { DataType, type OnnxModel, type ValueInfo } from '../onnx/types';
import type { HostTensor } from '../runtime/tensors';
import { DISTILL_IO } from './distill-model';

/** Tensor names the objective adds. */
export const OBJECTIVE_IO = {
  distillWeight: 'objective.distill_weight',
  taskWeight: 'objective.task_weight',
  loss: 'objective.loss',
} as const;

/** The weights of the two terms. */
export interface ObjectiveWeights {
  /** a: weight of the (level-weighted, masked) distillation loss. */
  distill: number;
  /** b: weight of the student's task loss. */
  task: number;
}

/** The distillation model with the task objective appended. */
export interface TaskObjectiveModel {
  model: OnnxModel;
  /** The scalar the step minimizes. */
  loss: string;
  /** Step outputs besides it: the distillation outputs, then the head loss and its parts. */
  extraOutputs: string[];
  /** Target inputs of the head loss (fed from the labels). */
  targets: ValueInfo[];
}

/**
 * Appends `head`'s loss and the weighted objective to a distillation model whose graph computes the head's
 * outputs (the student composed with its head). `distillOutputs` are the distillation model's step outputs
 * (its loss first), kept as step outputs.
 */
export function appendTaskObjective(
  distillModel: OnnxModel,
  head: HeadModel,
  distillOutputs: readonly string[],
): TaskObjectiveModel {
  const g = distillModel.graph;
  const headOutputs = Object.values(head.outputs);
  const produced = new Set(g.nodes.flatMap((n) => n.outputs));
  const absent = headOutputs.filter((o) => !produced.has(o));
  if (absent.length > 0) {
    throw new GraphError(
      `task objective: the student graph '${g.name}' does not compute the head output(s) ${absent.join(', ')}`,
      { hint: 'compose the student with its task head first (composeStudentHead)' },
    );
  }
  // appendHeadLoss reads the head's outputs off the graph's outputs.
  const withHead: OnnxModel = {
    ...distillModel,
    graph: {
      ...g,
      outputs: [...g.outputs, ...headOutputs.map((name) => ({ name, dataType: DataType.FLOAT }))],
    },
  };
  const withLoss = appendHeadLoss(withHead, head);
  const b = GraphBuilder.fromModel(withLoss.model);
  const a = b.input(OBJECTIVE_IO.distillWeight, DataType.FLOAT, []);
  const w = b.input(OBJECTIVE_IO.taskWeight, DataType.FLOAT, []);
  const total = b.op('Add', [b.op('Mul', [DISTILL_IO.loss, a]), b.op('Mul', [HEAD_LOSS_NAMES.loss, w])]);
  b.op('Identity', [total], {}, { outputs: [OBJECTIVE_IO.loss] });
  // The head's raw outputs are not step outputs (they would be copied out of every step).
  const raw = new Set(headOutputs);
  const kept = b.outputs.filter((o) => !raw.has(o.name));
  b.outputs.length = 0;
  b.outputs.push(...kept);
  b.output(OBJECTIVE_IO.loss, DataType.FLOAT, []);
  const headParts = [HEAD_LOSS_NAMES.loss, ...(withLoss.loss.extraOutputs ?? [])];
  return {
    model: b.build(),
    loss: OBJECTIVE_IO.loss,
    extraOutputs: [...distillOutputs, ...headParts],
    targets: withLoss.targets,
  };
}

/** The objective's weight feeds. */
export function objectiveWeightFeeds(weights: ObjectiveWeights): Record<string, HostTensor> {
  return {
    [OBJECTIVE_IO.distillWeight]: { data: Float32Array.of(weights.distill), dims: [] },
    [OBJECTIVE_IO.taskWeight]: { data: Float32Array.of(weights.task), dims: [] },
  };
}
