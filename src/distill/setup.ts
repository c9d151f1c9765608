/**
 * Everything a training run needs before its first step, derived from the config and checked up front so a
 * bad model pair, level selection or dataset fails with one clear message before any run directory or
 * checkpoint exists: graphs (shared initializers untied, adapters added), matched levels and their costs,
 * the trainable set, GradNorm's shared parameter, the resolved level selection, the datasets and the
 * held-out images.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { computeCostModel } from '../analysis/cost-model';
import { imageInput, type InputSize, type PyramidLevel } from '../analysis/pyramid';
import { classifyParameters } from '../analysis/parameters';
import { resolveModelDims, taskDataConfig, type RunConfig } from '../config/schema';
import { BatchLoader, preprocessFromConfig, type BatchLoaderOptions } from '../data/batch-loader';
import { openDatasetSplits, type DatasetSplits } from '../data/dataset';
import type { Dataset } from '../data/types';
import { probeSplit } from '../data/probe-split';
import { teacherHash } from '../data/feature-cache';
import { objectSize } from '../data/object-size';
import type { Preprocess } from '../data/image-loader';
import { InputFileError, RlpkdError } from '../errors';
import type { LogSink } from '../logging/logger';
import { loadModel } from '../onnx/model-io';
import type { OnnxModel, ValueInfo } from '../onnx/types';
import { withoutWeightData } from '../onnx/weight-data';
import { frozenGraphFile, type GraphFile } from '../runtime/optimized-model';
import { ensureProviderUsable } from '../runtime/provider-probe';
import { resolveExecutionProvider, type ExecutionProviderName } from '../runtime/session';
import { deployStateSources } from '../rl/deploy-state';
import type { StateLevel } from '../rl/policy-state';
import { Rng } from '../util/rng';
import { joinLabels, labelsOf, type ImageLabels } from './labelled-images';
import { addStudentAdapters, matchLevels, type LevelPair } from './level-matching';
import { findSharedParameter, type SharedParameterChoice } from './shared-parameter';
import {
  composeStudentHead,
  loadTeacherHead,
  requireTaskLabels,
  type RunHead,
  type StudentWithHead,
} from './student-head';

/** Held-out images, decoded once. */
export interface HeldOutImages {
  images: { data: Float32Array; dims: number[] };
  hashes: string[];
  files: string[];
  /** Object size per image (mean √area of its boxes; null without boxes), for ordering plots. */
  objectSizes?: (number | null)[];
  /** Held-out images that could not be decoded (skipped under data.on_corrupt: skip). */
  skipped: number;
  /** Their labels (what the dataset has), for the task loss and the task yardstick. */
  labels: ImageLabels;
}

/** What a run is made of (see module doc). */
export interface DistillSetup {
  config: RunConfig;
  ep: ExecutionProviderName;
  size: InputSize;
  /**
   * The teacher's structure for level detection: its large weights dropped (withoutWeightData), since every
   * teacher session loads from `teacherSession`.
   */
  teacher: OnnxModel;
  /** Where the teacher session loads from (its onnxruntime-optimized form on the CPU). */
  teacherSession: GraphFile;
  teacherHash: string;
  /** The student as trained: shared initializers untied (when configured), adapters added. */
  student: OnnxModel;
  /** The student's own outputs (what the exported student keeps). */
  studentOutputs: ValueInfo[];
  studentImageInput: string;
  teacherImageInput: string;
  /** Distilled levels, finest first. */
  pairs: LevelPair[];
  levelNames: string[];
  /** Level names in the environment's decision order. */
  decisionOrder: string[];
  /** Distillation-cost share per level (level order), Σ = 1 over the distilled levels. */
  costs: number[];
  trainable: string[];
  /** GradNorm's W (when GradNorm runs in phase 3). */
  sharedParameter?: SharedParameterChoice;
  /**
   * 'rl', or the levels images distil ('all' resolved to every level); with `random`, every level is a
   * candidate and each image draws a subset of expected cost `random.targetCost` (random-selection.ts).
   */
  selection: 'rl' | { levels: string[]; random?: { targetCost: number } };
  /** Policy state size and decisions per episode. */
  dims: { stateDim: number; maxSteps: number; numLevels: number };
  /** The student's trunk tensors the 'deploy' policy state pools (absent for the 'train' state). */
  stateSources?: StateLevel[];
  splits: DatasetSplits;
  preprocess: Preprocess;
  trainLoader: BatchLoader;
  /** Training images of MAML tasks that name their own dataset (by task name). */
  taskLoaders: Record<string, BatchLoader>;
  heldOut: HeldOutImages;
  /**
   * The teacher's task head (models.teacher_head) when the run uses it (task loss or task yardstick), and
   * the student's own head when the student trains with the task loss (then `student` computes it too).
   */
  task?: TaskSetup;
}

/** What the task loss and the task yardstick need (see student-head.ts). */
export interface TaskSetup {
  teacherHead: RunHead;
  /** Present when distill.task_loss_weight > 0. */
  studentHead?: StudentWithHead;
}

/** Loads and checks everything (see module doc). */
export async function prepareDistillation(
  config: RunConfig,
  options: {
    ep?: ExecutionProviderName;
    log: LogSink;
    /** A missing held-out split is an error instead of a carve (the user named it explicitly). */
    requireValSplit?: boolean;
  },
): Promise<DistillSetup> {
  const log = options.log;
  // A requested GPU provider that is not installed or cannot start fails here, before anything is written.
  const ep = resolveExecutionProvider(options.ep ?? config.run.ep);
  await ensureProviderUsable(ep);
  const [height, width] =
    typeof config.data.image_size === 'number'
      ? [config.data.image_size, config.data.image_size]
      : config.data.image_size;
  const size = { height, width };
  requireModelFile('models.teacher', config.models.teacher);
  requireModelFile('models.student', config.models.student);
  // Only the structure stays for the run (a ResNet-101-FPN's weights are ~180 MB the run never reads).
  const teacher = withoutWeightData(loadModel(config.models.teacher));
  const teacherSession = await frozenGraphFile(config.models.teacher, ep, {
    // Beside the teacher feature cache: both are derived from the teacher and shared across runs.
    cacheDir: path.join(path.dirname(config.distill.feature_cache.dir), 'optimized-graphs'),
    onFallback: (why) => log.warn(`teacher: loading it without the optimized-graph cache (${why})`),
  });
  const studentFile = loadModel(config.models.student);
  const classified = classifyParameters(studentFile, { untie: config.models.untie_shared_initializers });
  if (classified.untiedCopies.length > 0) {
    log.info(
      `student: untied ${classified.untiedCopies.length} shared initializers (one parameter per consumer)`,
    );
  }
  const matched = matchLevels(teacher, classified.model, size, config.models.levels);
  const adapted = addStudentAdapters(classified.model, matched, `${config.run.seed}`);
  for (const p of adapted.pairs) {
    if (p.adapter) {
      log.info(
        `level ${p.name}: student has ${p.adapter.inChannels} channels, teacher ${p.adapter.outChannels}; adding a 1×1 adapter on the student side`,
      );
    }
  }
  const pairs = adapted.pairs;
  const levelNames = pairs.map((p) => p.name);
  const trainable = [
    ...classified.trainable.map((e) => e.name),
    ...pairs.flatMap((p) => (p.adapter ? [p.adapter.weight, p.adapter.bias] : [])),
  ];
  const heads = taskSetup(config, teacher, adapted.model, pairs, size);
  if (heads?.studentHead) trainable.push(...heads.studentHead.parameters);
  const needLabels = heads
    ? (ds: Dataset) =>
        requireTaskLabels(
          heads.teacherHead.head,
          ds,
          heads.studentHead ? 'distill.task_loss_weight' : 'rl.reward.yardstick: task',
        )
    : () => {};
  const levels: PyramidLevel[] = pairs.map((p) => ({
    ...p.student,
    output: p.studentTensor,
    channels: p.teacher.channels,
  }));
  const model = computeCostModel(adapted.model, size, { levels });
  const costs = levelNames.map((n) => model.levels.find((l) => l.name === n)!.distillCost);
  const decisionOrder =
    config.rl.environment.level_order === 'fine_to_coarse' ? [...levelNames] : [...levelNames].reverse();
  // The deploy state pools the trunk tensors the student's level parts read (in decision order).
  const stateSources =
    config.rl.policy.state === 'deploy'
      ? deployStateSources(
          classified.model,
          decisionOrder.map((n) => ({ name: n, output: pairs.find((p) => p.name === n)!.student.output })),
          size,
        )
      : undefined;
  const dims = resolveModelDims(
    config,
    pairs.map((p) => p.teacher.channels),
    stateSources,
  );
  const selection = resolveSelection(config.distill.selection, pairs, config.distill.random_cost);
  const usesGradNorm =
    config.gradnorm.enabled && config.phases.joint.enabled && config.phases.joint.epochs > 0;
  const sharedParameter = usesGradNorm
    ? findSharedParameter(
        adapted.model,
        pairs.map((p) => p.studentTensor),
        trainable,
        config.gradnorm.shared_parameter,
      )
    : undefined;
  const preprocess = preprocessFromConfig(config.data);
  const splits = await openDatasetSplits(config.data, log, {
    ...(options.requireValSplit ? { requireValSplit: true } : {}),
  });
  if (splits.train.records.length === 0) {
    throw new RlpkdError(`the '${splits.train.split}' split of '${splits.train.root}' holds no images`, {
      hint: 'check data.root and data.split',
    });
  }
  if (splits.val.records.length === 0) {
    throw new RlpkdError(`the held-out split '${splits.val.split}' of '${splits.val.root}' holds no images`);
  }
  const onCorrupt = config.data.on_corrupt;
  const trainName = `training split '${splits.train.split}'`;
  await probeSplit(splits.train, preprocess, trainName, onCorrupt);
  const loaderCommon = {
    preprocess,
    numWorkers: config.data.num_workers,
    prefetch: config.data.prefetch,
    onCorrupt,
    log,
  };
  const trainLoader = new BatchLoader(splits.train, {
    ...loaderCommon,
    name: trainName,
    batchSize: config.data.batch_size,
    rng: new Rng(config.run.seed).fork('train-loader'),
    shuffle: config.data.shuffle,
    hflip: config.data.hflip,
  });
  const taskLoaders: Record<string, BatchLoader> = {};
  if (selection === 'rl' && config.phases.meta.enabled && config.phases.meta.epochs > 0) {
    if (!config.maml.first_order) {
      throw new RlpkdError(
        'maml.first_order: false is not available (second-order MAML needs the gradient of a gradient graph)',
        {
          hint: 'set maml.first_order: true (first-order MAML), or disable phase 4 (phases.meta.enabled: false)',
        },
      );
    }
    for (const task of config.maml.tasks) {
      if (!task.data) continue;
      const taskSplits = await openDatasetSplits(taskDataConfig(config, task), log);
      const taskName = `training split '${taskSplits.train.split}' of MAML task '${task.name}'`;
      await probeSplit(taskSplits.train, preprocess, taskName, onCorrupt);
      // Its episodes' trial updates train (and measure) as the run's do.
      needLabels(taskSplits.train);
      taskLoaders[task.name] = new BatchLoader(taskSplits.train, {
        ...loaderCommon,
        name: taskName,
        batchSize: config.data.batch_size,
        rng: new Rng(config.run.seed).fork(`task-loader-${task.name}`),
        shuffle: config.data.shuffle,
        hflip: config.data.hflip,
      });
    }
  }
  needLabels(splits.train);
  // Held-out images are measured with the same objective (and yardstick), so they need the labels too.
  needLabels(splits.val);
  const heldOut = await loadHeldOut(splits, loaderCommon, config.data.batch_size);
  return {
    config,
    ep,
    size,
    teacher,
    teacherSession,
    teacherHash: teacherHash(config.models.teacher),
    student: heads?.studentHead?.model ?? adapted.model,
    studentOutputs: classified.model.graph.outputs.map((o) => ({ ...o })),
    studentImageInput: imageInput(adapted.model).name,
    teacherImageInput: imageInput(teacher).name,
    pairs,
    levelNames,
    decisionOrder,
    costs,
    trainable,
    ...(sharedParameter ? { sharedParameter } : {}),
    selection,
    dims,
    ...(stateSources ? { stateSources } : {}),
    splits,
    preprocess,
    trainLoader,
    taskLoaders,
    heldOut,
    ...(heads ? { task: heads } : {}),
  };
}

/** The teacher's head and the student's own, when the config uses them (its keys were checked by the schema). */
function taskSetup(
  config: RunConfig,
  teacher: OnnxModel,
  student: OnnxModel,
  pairs: readonly LevelPair[],
  size: InputSize,
): TaskSetup | undefined {
  const file = config.models.teacher_head;
  const taskLoss = config.distill.task_loss_weight > 0;
  if (!file || (!taskLoss && config.rl.reward.yardstick !== 'task')) return undefined;
  requireModelFile('models.teacher_head', file);
  const teacherHead = loadTeacherHead(file, teacher, pairs, size);
  return { teacherHead, ...(taskLoss ? { studentHead: composeStudentHead(student, teacherHead) } : {}) };
}

/** A missing model file, with what to do about it (loadConfig's requireModelFiles also names the origin). */
function requireModelFile(key: string, file: string): void {
  if (fs.existsSync(file)) return;
  throw new InputFileError(`${key} '${file}' does not exist`, {
    hint:
      "relative paths in a config file are resolved against that file's folder, in --set against the " +
      'current folder; build small FPN graphs with `rlpkd models build`, or export torchvision ones with ' +
      '`python3 tools/export_fpn.py`',
  });
}

function resolveSelection(
  selection: RunConfig['distill']['selection'],
  pairs: readonly LevelPair[],
  randomCost: number,
): DistillSetup['selection'] {
  if (selection === 'rl') return 'rl';
  if (selection === 'all') return { levels: pairs.map((p) => p.name) };
  if (selection === 'random') return { levels: pairs.map((p) => p.name), random: { targetCost: randomCost } };
  const names = selection.map((s) => {
    const p =
      pairs.find((q) => q.name === s || q.student.output === s) ??
      pairs.find(
        (q) => q.name.toLowerCase() === s.toLowerCase() || q.student.output.toLowerCase() === s.toLowerCase(),
      );
    if (!p) {
      throw new RlpkdError(`distill.selection names '${s}', which is not a distilled level`, {
        hint: `distilled levels: ${pairs.map((q) => `${q.name} ('${q.student.output}')`).join(', ')}`,
      });
    }
    return p.name;
  });
  return { levels: pairs.map((p) => p.name).filter((n) => names.includes(n)) };
}

async function loadHeldOut(
  splits: DatasetSplits,
  common: Omit<BatchLoaderOptions, 'batchSize' | 'rng'>,
  batchSize: number,
): Promise<HeldOutImages> {
  // Decoded before the run directory exists: the name says these are the evaluation images, not training.
  const name = `held-out evaluation split '${splits.val.split}'`;
  await probeSplit(splits.val, common.preprocess, name, common.onCorrupt ?? 'skip');
  const loader = new BatchLoader(splits.val, {
    ...common,
    name,
    batchSize,
    rng: new Rng('held-out'),
    shuffle: false,
    hflip: 0,
  });
  const chunks: Float32Array[] = [];
  const hashes: string[] = [];
  const files: string[] = [];
  const objectSizes: (number | null)[] = [];
  const labels: ImageLabels[] = [];
  let dims: number[] = [];
  for await (const batch of loader.epoch(0)) {
    chunks.push(batch.images.data);
    labels.push(labelsOf(batch));
    hashes.push(...batch.hashes);
    files.push(...batch.records.map((r) => r.file));
    objectSizes.push(...batch.records.map(objectSize));
    dims = batch.images.dims;
  }
  if (hashes.length === 0) {
    throw new RlpkdError(`every image of the ${name} under '${splits.val.root}' was unreadable`);
  }
  const per = dims[1] * dims[2] * dims[3];
  const data = new Float32Array(hashes.length * per);
  let o = 0;
  for (const c of chunks) {
    data.set(c, o);
    o += c.length;
  }
  return {
    images: { data, dims: [hashes.length, dims[1], dims[2], dims[3]] },
    hashes,
    files,
    objectSizes,
    skipped: loader.skipped.length,
    labels: joinLabels(labels),
  };
}
