/**
 * The teacher's task head (`models.teacher_head`, as `rlpkd teach` writes head.onnx) read for a run, and
 * the student's own head made from it. The head's inputs are the teacher's pyramid outputs by name; on the
 * student each reads the tensor the distillation loss compares with that teacher level (the level output,
 * or its 1×1 adapter's output where channel counts differ), so the teacher head's architecture fits the
 * student whatever its widths.
 *
 * The student's head is the teacher head's graph with its weights as the initial values (see the config
 * description of `distill.task_loss_weight` for why), trained with the student.
 */
import type { InputSize } from '../analysis/pyramid';
import type { Dataset } from '../data/types';
import { RlpkdError } from '../errors';
import { composeTaskModel } from '../heads/compose-task-model';
import { headParameterNames } from '../heads/head-graph';
import type { HeadModel } from '../heads/types';
import { loadModel } from '../onnx/model-io';
import { DataType, type OnnxModel, type ValueInfo } from '../onnx/types';
import { hasTaskLabels, TASK_LABELS } from '../teach/task-feeds';
import type { LevelPair } from './level-matching';
import { describeTaskModel } from './score-task-model';

/** The teacher's head as a run uses it. */
export interface RunHead {
  /** The frozen teacher head (weights as initializers), described for losses and targets. */
  head: HeadModel;
  /** Head input (a teacher level output) → the distilled level pair it reads. */
  levels: Record<string, LevelPair>;
}

/** Reads `file` and checks that every input of the head is a distilled level of the teacher. */
export function loadTeacherHead(
  file: string,
  teacher: OnnxModel,
  pairs: readonly LevelPair[],
  size: InputSize,
): RunHead {
  const model = loadModel(file);
  const head = describeTaskModel(model, teacher, { size });
  const levels: Record<string, LevelPair> = {};
  for (const input of model.graph.inputs) {
    const pair = pairs.find((p) => p.teacher.output === input.name);
    if (!pair) {
      throw new RlpkdError(
        `models.teacher_head '${file}' reads '${input.name}', which is not a distilled teacher level (${pairs
          .map((p) => `'${p.teacher.output}'`)
          .join(', ')})`,
        {
          hint: 'use the head `rlpkd teach` wrote for this teacher, and distil every level it reads (models.levels)',
        },
      );
    }
    levels[input.name] = pair;
  }
  return { head, levels };
}

/** Refuses a split without the labels the head's task needs, or with another number of classes. */
export function requireTaskLabels(head: HeadModel, train: Dataset, what: string): void {
  const task = head.task;
  if (!hasTaskLabels(task, train)) {
    throw new RlpkdError(
      `${what} needs ${TASK_LABELS[task]} (models.teacher_head is a ${task} head), but the ${train.type} split '${train.split}' under '${train.root}' has none`,
      {
        hint: 'point data at a dataset with those labels, or set distill.task_loss_weight: 0 and rl.reward.yardstick: features',
      },
    );
  }
  const K = train.classes.length;
  if (task !== 'segmentation' && K > 0 && K !== head.numClasses) {
    throw new RlpkdError(
      `models.teacher_head predicts ${head.numClasses} classes, but the ${train.type} split '${train.split}' under '${train.root}' has ${K}`,
      { hint: 'use the head `rlpkd teach` trained on this dataset' },
    );
  }
}

/** The student with its own head: the graph that trains, and what exporting and feeding need. */
export interface StudentWithHead {
  /** The student graph computing its original outputs and the head's outputs. */
  model: OnnxModel;
  /** The student's head (the teacher head's graph and initial weights, inputs on the student's tensors). */
  head: HeadModel;
  /** Trainable parameters the head adds. */
  parameters: string[];
  /** The head's outputs (what the student's task model outputs). */
  outputs: ValueInfo[];
}

/** Composes the teacher's head onto the (adapted) student's pyramid (see module doc). */
export function composeStudentHead(student: OnnxModel, run: RunHead): StudentWithHead {
  const own = student.graph.outputs;
  const mapping: Record<string, string> = {};
  const extra: ValueInfo[] = [];
  for (const [input, pair] of Object.entries(run.levels)) {
    mapping[input] = pair.studentTensor;
    if (!own.some((o) => o.name === pair.studentTensor) && !extra.some((o) => o.name === pair.studentTensor))
      extra.push({ name: pair.studentTensor, dataType: DataType.FLOAT });
  }
  // composeTaskModel attaches to graph outputs: adapter outputs are exposed for the splice, then dropped.
  const exposed: OnnxModel = { ...student, graph: { ...student.graph, outputs: [...own, ...extra] } };
  const composed = composeTaskModel(exposed, run.head, { levels: mapping, keepBackboneOutputs: true });
  const headOutputs = composed.graph.outputs.filter((o) => Object.values(run.head.outputs).includes(o.name));
  composed.graph.outputs = [...own.map((o) => ({ ...o })), ...headOutputs];
  return {
    model: composed,
    head: run.head,
    parameters: [...headParameterNames(run.head.model)],
    outputs: headOutputs.map((o) => ({ ...o })),
  };
}
