/**
 * Training a task head on a backbone's pyramid with the engine: the task model with its head loss as
 * training artifacts, a TrainingSession over them, and the step loop over a labelled split. Shared by
 * `rlpkd teach` (backbone + head, or head alone) and the probes of `rlpkd eval` (head alone on a frozen
 * backbone, a fixed budget), so both train a head the same way.
 */
import { imageInput } from '../analysis/pyramid';
import type { Batch, BatchLoader } from '../data/batch-loader';
import { buildClassificationHead } from '../heads/classification-head';
import { composeTaskModel } from '../heads/compose-task-model';
import { buildFcosHead } from '../heads/fcos-head';
import { headParameterNames } from '../heads/head-graph';
import { appendHeadLoss } from '../heads/head-loss';
import { buildSegmentationHead } from '../heads/segmentation-head';
import type { HeadLevel, HeadModel, HeadTask } from '../heads/types';
import type { OnnxModel } from '../onnx/types';
import type { ExecutionProviderName } from '../runtime/session';
import { exportModelForInference, generateArtifacts } from '../training/artifacts';
import type { OptimizerConfig } from '../training/optimizers';
import { TrainingSession } from '../training/training-session';
import { targetFeeds } from './task-feeds';

/** The shape of a head to build: the levels it reads, classes, image size, seed and per-task widths. */
export interface TaskHeadShape {
  levels: HeadLevel[];
  numClasses: number;
  imageHeight: number;
  imageWidth: number;
  /** Seed of the initial weights. */
  seed: number;
  /** Segmentation: common width of the per-level branches. */
  segmentationWidth: number;
  /** Detection: 3×3 conv + ReLU layers per tower. */
  towerConvs: number;
}

/** A freshly initialised head of `task` (classification, light Semantic-FPN, or FCOS-style detection). */
export function buildTaskHead(task: HeadTask, shape: TaskHeadShape): HeadModel {
  const { segmentationWidth, towerConvs, ...base } = shape;
  if (task === 'classification') return buildClassificationHead(base);
  if (task === 'segmentation') return buildSegmentationHead({ ...base, width: segmentationWidth });
  return buildFcosHead({ ...base, towerConvs });
}

/** What to train: the backbone, the head on it, and the optimisation settings. */
export interface HeadTrainingSpec {
  backbone: OnnxModel;
  head: HeadModel;
  /** Train the head alone (the backbone's weights stay as they are). */
  freezeBackbone: boolean;
  boxLoss?: 'giou' | 'iou';
  optimizer: OptimizerConfig;
  /** Cosine decay to 0 over the planned steps (after linear warmup), or a constant learning rate. */
  schedule: { type: 'constant' } | { type: 'cosine'; warmupSteps: number };
  /** Global gradient-norm clip (null: off). */
  gradClip: number | null;
  /** Optimizer steps the schedule spans. */
  plannedSteps: number;
  ep?: ExecutionProviderName;
}

/** A head ready to train: its session, the image input, and the names of the head's parameters. */
export interface HeadTraining {
  session: TrainingSession;
  head: HeadModel;
  /** The task model's image input. */
  input: string;
  headParameters: Set<string>;
  /** Elements of every trainable parameter. */
  trainableElements: number;
  /** Trainable tensors. */
  trainableTensors: number;
}

/** Builds the artifacts and the session for a spec (see module doc). */
export async function createHeadTraining(spec: HeadTrainingSpec): Promise<HeadTraining> {
  const { head } = spec;
  const headParameters = headParameterNames(head.model);
  const withLoss = appendHeadLoss(composeTaskModel(spec.backbone, head), head, {
    boxLoss: spec.boxLoss ?? 'giou',
  });
  const artifacts = generateArtifacts(withLoss.model, {
    loss: withLoss.loss,
    optimizer: spec.optimizer,
    // The detection head's convs are one parameter shared by every level: untying would copy them.
    untieSharedInitializers: head.task !== 'detection',
    ...(spec.freezeBackbone ? { trainable: [...headParameters] } : {}),
  });
  const planned = Math.max(1, spec.plannedSteps);
  const session = await TrainingSession.create({
    artifacts,
    executionProvider: spec.ep ?? 'cpu',
    ...(spec.gradClip !== null ? { maxGradNorm: spec.gradClip } : {}),
    lrSchedule:
      spec.schedule.type === 'cosine'
        ? {
            type: 'cosine',
            totalSteps: planned,
            warmupSteps: Math.min(spec.schedule.warmupSteps, Math.max(0, planned - 1)),
          }
        : { type: 'constant' },
  });
  const params = artifacts.manifest.parameters;
  return {
    session,
    head,
    input: imageInput(spec.backbone).name,
    headParameters,
    trainableElements: params.reduce((s, p) => s + p.dims.reduce((a, b) => a * b, 1), 0),
    trainableTensors: params.length,
  };
}

/** One logged step: its number (1-based), epoch (0-based) and the step's scalar outputs. */
export interface HeadStepInfo {
  step: number;
  epoch: number;
  values: Record<string, number>;
}

/** How long to train and what to observe along the way. */
export interface HeadTrainingLoop {
  loader: BatchLoader;
  epochs: number;
  /** Stop after this many steps (the spec's plannedSteps, usually). */
  maxSteps: number;
  signal?: AbortSignal;
  /** Called with each training batch before its step. */
  onBatch?(batch: Batch, epoch: number): void;
  /** Called after each step with its outputs (loss parts, learning rate, gradient norm). */
  onStep?(info: HeadStepInfo): void;
  /** Called after each full epoch that training goes on past. */
  afterEpoch?(epoch: number, step: number): Promise<void>;
}

/** Runs the step loop; returns the steps taken and whether the signal stopped it. */
export async function trainHead(
  t: HeadTraining,
  loop: HeadTrainingLoop,
): Promise<{ steps: number; interrupted: boolean }> {
  let step = 0;
  for (let epoch = 0; epoch < loop.epochs; epoch++) {
    for await (const batch of loop.loader.epoch(epoch)) {
      if (step >= loop.maxSteps) return { steps: step, interrupted: false };
      if (loop.signal?.aborted) return { steps: step, interrupted: true };
      loop.onBatch?.(batch, epoch);
      const r = await t.session.fusedStep({ [t.input]: batch.images, ...targetFeeds(t.head, batch) });
      step++;
      if (loop.onStep) {
        const values: Record<string, number> = { lr: r.learningRate, grad_norm: r.gradNorm };
        for (const [name, v] of Object.entries(r.outputs)) values[name] = (v.data as Float32Array)[0]!;
        loop.onStep({ step, epoch, values });
      }
    }
    if (loop.afterEpoch && epoch + 1 < loop.epochs && step < loop.maxSteps)
      await loop.afterEpoch(epoch, step);
  }
  return { steps: step, interrupted: false };
}

/** The trained task model (image in, head outputs out) as an inference graph. */
export async function exportTaskModel(t: HeadTraining): Promise<OnnxModel> {
  return t.session.exportModelForInference(undefined, { outputs: Object.values(t.head.outputs) });
}

/** `model` with the session's trained values of the parameters it has (its graph otherwise unchanged). */
async function exportWithTrainedValues(
  t: HeadTraining,
  model: OnnxModel,
  names: Set<string>,
): Promise<OnnxModel> {
  const params = await t.session.getParameters();
  return exportModelForInference(
    model,
    Object.fromEntries(Object.entries(params).filter(([name]) => names.has(name))),
  );
}

/**
 * The trained backbone alone: the backbone file's own graph (structure, names, pyramid outputs unchanged)
 * with the trained values of its parameters.
 */
export async function exportBackboneModel(t: HeadTraining, backbone: OnnxModel): Promise<OnnxModel> {
  return exportWithTrainedValues(t, backbone, new Set(backbone.graph.initializers.map((i) => i.name)));
}

/** The trained head alone (pyramid levels in, head outputs out) as an inference graph. */
export async function exportHeadModel(t: HeadTraining): Promise<OnnxModel> {
  return exportWithTrainedValues(t, t.head.model, t.headParameters);
}
