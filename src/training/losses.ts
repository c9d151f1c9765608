/**
 * Losses as graph pieces: functions that append standard ONNX nodes to a GraphBuilder and return the
 * name of a float scalar loss, so the autodiff differentiates them like any other part of the graph.
 * Only ops with gradient rules (Sub, Mul, Abs, Where, ReduceMean, ReduceSum, LogSoftmax, Reshape, ...)
 * sit on the path from the predictions to the loss; labels, masks and weights enter through
 * non-differentiable inputs.
 */
import { GraphError, RlpkdError } from '../errors';
import type { GraphBuilder } from '../onnx/graph-builder';
import { DataType, type Dim, type OnnxModel, type ValueInfo } from '../onnx/types';
import { levelDistance, type DistillLossKind, type LevelDistance } from './level-distances';

/** ReduceSum over `axes` (axes an input from opset 13). */
function reduceSum(b: GraphBuilder, x: string, axes: number[], keepdims: boolean): string {
  if (b.opset >= 13) {
    return b.op('ReduceSum', [x, b.constInt64(axes, [axes.length], 'loss/axes')], {
      keepdims: keepdims ? 1 : 0,
    });
  }
  return b.op('ReduceSum', [x], { axes, keepdims: keepdims ? 1 : 0 });
}

/** Unsqueeze (axes an input from opset 13). */
function unsqueeze(b: GraphBuilder, x: string, axes: number[]): string {
  if (b.opset >= 13) return b.op('Unsqueeze', [x, b.constInt64(axes, [axes.length], 'loss/axes')]);
  return b.op('Unsqueeze', [x], { axes });
}

/** Mean over all elements of (pred − target)². */
export function mseLoss(b: GraphBuilder, pred: string, target: string): string {
  const d = b.op('Sub', [pred, target]);
  return b.op('ReduceMean', [b.op('Mul', [d, d])], { keepdims: 0 }, { name: 'loss/mse' });
}

/** Mean over all elements of |pred − target|. */
export function l1Loss(b: GraphBuilder, pred: string, target: string): string {
  return b.op(
    'ReduceMean',
    [b.op('Abs', [b.op('Sub', [pred, target])])],
    { keepdims: 0 },
    { name: 'loss/l1' },
  );
}

/**
 * PyTorch's SmoothL1Loss (mean): 0.5·d²/β where |d| < β, |d| − 0.5·β elsewhere; β = 0 is the L1 loss.
 */
export function smoothL1Loss(b: GraphBuilder, pred: string, target: string, beta = 1): string {
  if (!(beta >= 0)) throw new RlpkdError(`smoothL1 loss: beta must be ≥ 0, got ${beta}`);
  if (beta === 0) return l1Loss(b, pred, target);
  const d = b.op('Sub', [pred, target]);
  const a = b.op('Abs', [d]);
  const betaC = b.constFloat(beta, [], 'loss/smooth_l1_beta');
  const quadratic = b.op('Mul', [
    b.op('Mul', [d, d]),
    b.constFloat(0.5 / beta, [], 'loss/smooth_l1_half_inv_beta'),
  ]);
  const linear = b.op('Sub', [a, b.constFloat(0.5 * beta, [], 'loss/smooth_l1_half_beta')]);
  const elementwise = b.op('Where', [b.op('Less', [a, betaC]), quadratic, linear]);
  return b.op('ReduceMean', [elementwise], { keepdims: 0 }, { name: 'loss/smooth_l1' });
}

/**
 * Mean cross-entropy of class logits [N, C] against int64 class indices [N] (PyTorch's CrossEntropyLoss,
 * reduction mean, no ignore_index): −mean_n log_softmax(logits)[n, label_n], picked with a one-hot mask.
 */
export function crossEntropyWithLogits(b: GraphBuilder, logits: string, labels: string): string {
  const logProbs = b.op('LogSoftmax', [logits], { axis: 1 });
  const depth = b.op('Gather', [b.op('Shape', [logits]), b.constInt64(1, [], 'loss/ce_class_axis')], {
    axis: 0,
  });
  const oneHot = b.op('OneHot', [labels, depth, b.constFloat([0, 1], [2], 'loss/ce_one_hot_values')], {
    axis: -1,
  });
  const picked = reduceSum(b, b.op('Mul', [logProbs, oneHot]), [1], false);
  return b.op('Neg', [b.op('ReduceMean', [picked], { keepdims: 0 })], {}, { name: 'loss/cross_entropy' });
}

/** One pyramid level of a distillation loss: a student tensor paired with a teacher tensor. */
export interface DistillationLevel {
  /** Level name used in output names (default: the student tensor's name). */
  name?: string;
  /** Student feature tensor (a tensor of the student graph). */
  student: string;
  /** Teacher feature tensor (usually a graph input fed from the teacher's session). */
  teacher: string;
}

export interface DistillationLossOptions {
  levels: readonly DistillationLevel[];
  /** float [N, L]: m[n, l] = 1 when level l is distilled for sample n. */
  mask: string;
  /** float [L]: w[l], the weight of level l. */
  weights: string;
  /** Per-sample distance (default: mean squared error over c, h, w). */
  distance?: LevelDistance;
  /** Also output e[n, l], the unmasked unweighted per-sample per-level distances, as float [N, L]. */
  perSample?: boolean;
}

export interface DistillationLossTensors {
  /** Scalar Σ_n Σ_l m[n,l]·w[l]·e[n,l] / N (= Σ_l w[l]·levelLosses[l]). */
  loss: string;
  /** Scalar L_l = Σ_n m[n,l]·e[n,l] / N per level: masked, NOT weighted (what GradNorm needs). */
  levelLosses: string[];
  /** e[n, l] as float [N, L] when asked for. */
  perSample?: string;
}

/**
 * The per-level masked and weighted feature-distillation loss
 * L = (1/N) Σ_n Σ_l m[n,l]·w[l]·e[n,l], e[n,l] = mean_{c,h,w}((S_l − T_l)²)[n]:
 * the mean over the batch of each sample's sum over its selected levels. N counts every sample, also one
 * whose mask row is all zero. Per-level losses are masked but unweighted, so L = Σ_l w[l]·L_l.
 */
export function featureDistillationLoss(
  b: GraphBuilder,
  options: DistillationLossOptions,
): DistillationLossTensors {
  if (options.levels.length === 0) throw new RlpkdError('distillation loss: no levels given');
  const distance = options.distance ?? levelDistance('mse');
  const levelLosses: string[] = [];
  const perSample: string[] = [];
  let total: string | undefined;
  options.levels.forEach((level, l) => {
    const name = level.name ?? level.student;
    const e = distance(b, level.student, level.teacher);
    perSample.push(e);
    const index = b.constInt64(l, [], `loss/level_${l}`);
    const m = b.op('Gather', [options.mask, index], { axis: 1 }, { name: `loss/mask_${name}` });
    const levelLoss = b.op('ReduceMean', [b.op('Mul', [e, m])], { keepdims: 0 }, { name: `loss/${name}` });
    levelLosses.push(levelLoss);
    const w = b.op('Gather', [options.weights, index], { axis: 0 }, { name: `loss/weight_${name}` });
    const weighted = b.op('Mul', [levelLoss, w]);
    total = total === undefined ? weighted : b.op('Add', [total, weighted]);
  });
  const result: DistillationLossTensors = { loss: total!, levelLosses };
  if (options.perSample) {
    const cols = perSample.map((e) => unsqueeze(b, e, [1]));
    result.perSample = cols.length === 1 ? cols[0] : b.op('Concat', cols, { axis: 1 });
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Declarative loss specifications (what generateArtifacts and the CLI take)
// ---------------------------------------------------------------------------------------------------

/** Σ over `outputs` of mean((output − target)²) (or |·|, smooth-L1); targets are new graph inputs. */
export interface RegressionLossSpec {
  type: 'mse' | 'l1' | 'smoothL1';
  /** Model outputs to regress (default: every graph output). */
  outputs?: string[];
  /** Output → target input name (default `<output>.target`). */
  targets?: Record<string, string>;
  /** smoothL1 only (default 1). */
  beta?: number;
}

/** Cross-entropy of a logits output against an int64 label input. */
export interface CrossEntropyLossSpec {
  type: 'crossEntropy';
  /** Logits output [N, C] (default: the only graph output). */
  logits?: string;
  /** Name of the int64 [N] label input (default `labels`). */
  labels?: string;
}

/** The per-level feature distillation loss; teacher features, mask and weights are graph inputs. */
export interface DistillationLossSpec {
  type: 'distillation';
  /** Student outputs paired with teacher inputs (default teacher input name: `teacher.<student>`). */
  levels: { student: string; teacher?: string; name?: string }[];
  /** Mask input name, float [N, L] (default `distill.mask`). */
  mask?: string;
  /** Weights input name, float [L] (default `distill.weights`). */
  weights?: string;
  /** Output the [N, L] per-sample distances as `distill.per_sample` (default true). */
  perSample?: boolean;
  /** Per-level distance (default 'mse'; see level-distances.ts). */
  distance?: DistillLossKind;
  /** Temperature of the 'cwd' distance (default 1). */
  tau?: number;
}

/** The model already computes its loss: a scalar output (plus other outputs to return each step). */
export interface OutputLossSpec {
  type: 'output';
  output: string;
  extraOutputs?: string[];
}

export type LossSpec = RegressionLossSpec | CrossEntropyLossSpec | DistillationLossSpec | OutputLossSpec;

/** What appendLoss added: the scalar loss, other outputs to return, and the new graph inputs. */
export interface AppendedLoss {
  loss: string;
  /** Outputs returned alongside the loss (per-level losses, per-sample matrix, ...). */
  extraOutputs: ValueInfo[];
  /** Graph inputs the loss added (targets, labels, teacher features, mask, weights). */
  inputs: ValueInfo[];
}

function outputInfo(model: OnnxModel, name: string, what: string): ValueInfo {
  const out = model.graph.outputs.find((o) => o.name === name);
  if (!out) {
    const names = model.graph.outputs.map((o) => `'${o.name}'`).join(', ');
    throw new GraphError(
      `${what}: '${name}' is not an output of graph '${model.graph.name}' (outputs: ${names})`,
      {
        hint: 'name one of the graph outputs; `rlpkd inspect` lists them',
      },
    );
  }
  return out;
}

function addInput(
  b: GraphBuilder,
  name: string,
  dataType: DataType,
  shape: Dim[] | undefined,
  what: string,
): ValueInfo {
  if (b.has(name)) {
    throw new GraphError(`${what}: input name '${name}' is already used in the graph`, {
      hint: 'choose another name in the loss specification',
    });
  }
  b.input(name, dataType, shape);
  return { name, dataType, ...(shape ? { shape: [...shape] } : {}) };
}

const SCALAR: Dim[] = [];

/**
 * Appends the loss a specification describes to a builder made from `model` (whose outputs it reads).
 * Does not touch the builder's graph outputs; the caller decides what to output.
 */
export function appendLoss(b: GraphBuilder, model: OnnxModel, spec: LossSpec): AppendedLoss {
  switch (spec.type) {
    case 'mse':
    case 'l1':
    case 'smoothL1': {
      const outputs = spec.outputs ?? model.graph.outputs.map((o) => o.name);
      if (outputs.length === 0)
        throw new RlpkdError(`${spec.type} loss: the graph has no outputs to regress`);
      const inputs: ValueInfo[] = [];
      let total: string | undefined;
      for (const o of outputs) {
        const info = outputInfo(model, o, `${spec.type} loss`);
        const target = spec.targets?.[o] ?? `${o}.target`;
        inputs.push(addInput(b, target, DataType.FLOAT, info.shape, `${spec.type} loss`));
        const term =
          spec.type === 'mse'
            ? mseLoss(b, o, target)
            : spec.type === 'l1'
              ? l1Loss(b, o, target)
              : smoothL1Loss(b, o, target, spec.beta ?? 1);
        total = total === undefined ? term : b.op('Add', [total, term]);
      }
      return { loss: total!, extraOutputs: [], inputs };
    }
    case 'crossEntropy': {
      const logits = spec.logits ?? model.graph.outputs[0]?.name;
      if (!logits || (spec.logits === undefined && model.graph.outputs.length !== 1)) {
        throw new RlpkdError(
          'crossEntropy loss: name the logits output (the graph does not have exactly one output)',
        );
      }
      const info = outputInfo(model, logits, 'crossEntropy loss');
      const labels = spec.labels ?? 'labels';
      const input = addInput(
        b,
        labels,
        DataType.INT64,
        info.shape ? [info.shape[0]] : undefined,
        'crossEntropy loss',
      );
      return { loss: crossEntropyWithLogits(b, logits, labels), extraOutputs: [], inputs: [input] };
    }
    case 'distillation': {
      const inputs: ValueInfo[] = [];
      const levels: DistillationLevel[] = spec.levels.map((level) => {
        const info = outputInfo(model, level.student, 'distillation loss');
        const teacher = level.teacher ?? `teacher.${level.student}`;
        inputs.push(addInput(b, teacher, DataType.FLOAT, info.shape, 'distillation loss'));
        return { student: level.student, teacher, name: level.name ?? level.student };
      });
      const batch = outputInfo(model, spec.levels[0].student, 'distillation loss').shape?.[0] ?? 'batch';
      const mask = spec.mask ?? 'distill.mask';
      const weights = spec.weights ?? 'distill.weights';
      inputs.push(addInput(b, mask, DataType.FLOAT, [batch, levels.length], 'distillation loss'));
      inputs.push(addInput(b, weights, DataType.FLOAT, [levels.length], 'distillation loss'));
      const perSample = spec.perSample ?? true;
      const distance = levelDistance(spec.distance ?? 'mse', spec.tau ?? 1);
      const t = featureDistillationLoss(b, { levels, mask, weights, perSample, distance });
      const extraOutputs: ValueInfo[] = t.levelLosses.map((l, i) => {
        const name = `distill.level_loss.${levels[i].name}`;
        return {
          name: b.op('Identity', [l], {}, { outputs: [name] }),
          dataType: DataType.FLOAT,
          shape: SCALAR,
        };
      });
      if (t.perSample) {
        const name = b.op('Identity', [t.perSample], {}, { outputs: ['distill.per_sample'] });
        extraOutputs.push({ name, dataType: DataType.FLOAT, shape: [batch, levels.length] });
      }
      return { loss: b.op('Identity', [t.loss], {}, { outputs: ['distill.loss'] }), extraOutputs, inputs };
    }
    case 'output': {
      outputInfo(model, spec.output, 'output loss');
      const extraOutputs = (spec.extraOutputs ?? []).map((o) => ({ ...outputInfo(model, o, 'output loss') }));
      return { loss: spec.output, extraOutputs, inputs: [] };
    }
    default:
      throw new RlpkdError(
        `unknown loss type '${(spec as { type: string }).type}' (mse | l1 | smoothL1 | crossEntropy | distillation | output)`,
      );
  }
}
