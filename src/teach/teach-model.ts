/**
 * `rlpkd teach`: trains a task head on a backbone's pyramid (backbone and head together, or the head alone
 * on the frozen backbone) on a labelled dataset with the engine (generateArtifacts + TrainingSession), then
 * evaluates the task model on the validation split with the field's metric beside the untrained model and
 * the chance level. Writes a run directory: resolved config, train.log, metrics.jsonl (+ TensorBoard),
 * `task-model.onnx` (backbone + head, image in, head outputs out), `head.onnx` (the head alone, pyramid
 * levels in), `backbone.onnx` (the trained backbone alone, image in, pyramid out) and `teach-metrics.json`.
 */
import YAML from 'yaml';
import { imageInput } from '../analysis/pyramid';
import type { TeachConfig } from '../config/teach-schema';
import { BatchLoader, preprocessFromConfig } from '../data/batch-loader';
import { openDatasetSplits } from '../data/dataset';
import type { Dataset, DatasetType } from '../data/types';
import { RlpkdError } from '../errors';
import { HEAD_LOSS_NAMES } from '../heads/head-loss';
import { headLevelsOf } from '../heads/head-levels';
import type { HeadModel, HeadTask } from '../heads/types';
import { Logger, type LoggerOptions } from '../logging/logger';
import { MetricsWriter } from '../logging/metrics';
import { createRunDir, RUN_FILES, type RunDir } from '../logging/run-dir';
import { TensorBoardWriter } from '../logging/tfevents';
import { loadModel, saveModel } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import { createSession, type ExecutionProviderName } from '../runtime/session';
import type { OptimizerConfig } from '../training/optimizers';
import { Rng } from '../util/rng';
import {
  buildTaskHead,
  createHeadTraining,
  exportBackboneModel,
  exportHeadModel,
  exportTaskModel,
  trainHead,
} from './head-training';
import { LabelPrior } from './label-prior';
import { modelPredictor, scoreSplit } from './score-split';
import { hasTaskLabels, TASK_LABELS } from './task-feeds';
import type { TaskScore } from './task-scorer';
import { formatTeachSummary, formatValues, valValues } from './teach-summary';

/** Files a teach run writes besides the standard run files. */
export const TEACH_FILES = {
  taskModel: 'task-model.onnx',
  head: 'head.onnx',
  backbone: 'backbone.onnx',
  metrics: 'teach-metrics.json',
} as const;

/** Options of runTeach. */
export interface TeachOptions {
  config: TeachConfig;
  /** Where the config came from (written into the resolved config's header). */
  sources?: readonly string[];
  runName?: string;
  /** Overrides run.ep. */
  ep?: ExecutionProviderName;
  /** Stops training after the current step; the model trained so far is still evaluated and written. */
  signal?: AbortSignal;
  /** Console logger settings (tests pass a stream). */
  logger?: Pick<LoggerOptions, 'stream' | 'progress'>;
}

/** What teach-metrics.json holds. */
export interface TeachReport {
  task: HeadTask;
  metric: TaskScore['metric'];
  dataset: { type: string; train: string; val: string; trainImages: number; valImages: number };
  backbone: string;
  levels: string[];
  frozenBackbone: boolean;
  trainableParameters: number;
  steps: number;
  seconds: number;
  interrupted: boolean;
  /** The image-blind prior (see label-prior.ts), the model before training, and after. */
  chance: TaskScore;
  untrained: TaskScore;
  trained: TaskScore;
}

/** The result of a teach run. */
export interface TeachResult {
  runDir: string;
  taskModel: string;
  head: string;
  backbone: string;
  report: TeachReport;
  summaryText: string;
}

/** The task a config asks for (`auto`: from the dataset format). */
export function resolveTeachTask(config: TeachConfig): HeadTask {
  return config.teach.task !== 'auto' ? config.teach.task : DEFAULT_TASK[config.data.type];
}

/** The task a dataset format is usually labelled for (synthetic scenes carry every label; detection). */
export const DEFAULT_TASK: Record<DatasetType, HeadTask> = {
  imagefolder: 'classification',
  coco: 'detection',
  ade20k: 'segmentation',
  synthetic: 'detection',
};

/** Refuses a dataset that lacks the task's labels, naming what it needs. */
function requireLabels(task: HeadTask, ds: Dataset): void {
  if (hasTaskLabels(task, ds)) return;
  throw new RlpkdError(
    `teach: ${task} needs ${TASK_LABELS[task]}; the ${ds.type} split '${ds.split}' under '${ds.root}' ` +
      (ds.records.length === 0 ? 'has no images' : 'does not have them'),
    { hint: 'set teach.task to a task the dataset has labels for, or point data.root at a labelled dataset' },
  );
}

function buildHead(task: HeadTask, config: TeachConfig, backbone: OnnxModel, numClasses: number): HeadModel {
  const pre = preprocessFromConfig(config.data);
  const select = config.teach.levels === 'auto' ? undefined : config.teach.levels;
  const levels = headLevelsOf(backbone, { height: pre.height, width: pre.width }, select);
  return buildTaskHead(task, {
    levels,
    numClasses,
    imageHeight: pre.height,
    imageWidth: pre.width,
    seed: config.teach.head.seed,
    segmentationWidth: config.teach.head.segmentation_width,
    towerConvs: config.teach.head.tower_convs,
  });
}

function optimizerOf(config: TeachConfig): OptimizerConfig {
  const o = config.teach.optimizer;
  return o.type === 'adamw'
    ? { type: 'adamw', lr: o.lr, weightDecay: o.weight_decay }
    : { type: 'sgd', lr: o.lr, momentum: o.momentum, weightDecay: o.weight_decay };
}

/** Trains and evaluates per the config; see the module doc. */
export async function runTeach(options: TeachOptions): Promise<TeachResult> {
  const { config } = options;
  const started = Date.now();
  const ep = options.ep ?? config.run.ep;
  const consoleLog = new Logger({
    level: config.logging.level,
    progress: config.logging.progress,
    ...options.logger,
  });
  const task = resolveTeachTask(config);
  const backbone = loadModel(config.teach.backbone);
  const input = imageInput(backbone).name;
  const { train, val } = await openDatasetSplits(config.data, consoleLog);
  requireLabels(task, train);
  requireLabels(task, val);
  const numClasses = train.classes.length;
  if (numClasses < 1) {
    throw new RlpkdError(`teach: the ${train.type} dataset under '${train.root}' names no classes`, {
      hint: 'check the dataset (class folders, COCO categories, or mask labels)',
    });
  }
  const head = buildHead(task, config, backbone, numClasses);
  const pre = preprocessFromConfig(config.data);
  const loader = new BatchLoader(train, {
    batchSize: config.data.batch_size,
    preprocess: pre,
    rng: new Rng(config.run.seed).fork('teach-data'),
    shuffle: config.data.shuffle,
    hflip: config.data.hflip,
    numWorkers: config.data.num_workers,
    prefetch: config.data.prefetch,
    onCorrupt: config.data.on_corrupt,
    log: consoleLog,
  });
  const planned = Math.min(config.teach.max_steps ?? Infinity, config.teach.epochs * loader.batchesPerEpoch);
  const o = config.teach.optimizer;
  const training = await createHeadTraining({
    backbone,
    head,
    freezeBackbone: config.teach.freeze_backbone,
    boxLoss: config.teach.head.box_loss,
    optimizer: optimizerOf(config),
    schedule:
      o.schedule === 'cosine' ? { type: 'cosine', warmupSteps: o.warmup_steps } : { type: 'constant' },
    gradClip: config.teach.grad_clip,
    plannedSteps: planned,
    ep,
  });
  const session = training.session;

  const run = createRunDir(config.run.output_dir, options.runName ?? config.run.name);
  writeTeachConfig(run, config, options.sources ?? []);
  const log = new Logger({
    level: config.logging.level,
    progress: config.logging.progress,
    ...options.logger,
    file: run.logFile,
  });
  const metrics = new MetricsWriter(run.metricsFile);
  const tb = config.logging.tensorboard ? new TensorBoardWriter(run.file('tensorboard')) : null;
  const evaluate = async (model: OnnxModel, prior?: LabelPrior): Promise<Record<string, TaskScore>> => {
    const s = await createSession(model, { executionProvider: ep });
    try {
      return await scoreSplit(
        val,
        head,
        { model: modelPredictor(s, input, head), ...(prior ? { chance: (b) => prior.predict(b) } : {}) },
        { preprocess: pre, batchSize: config.data.batch_size, numWorkers: config.data.num_workers, log },
      );
    } finally {
      await s.release();
    }
  };

  try {
    log.info(
      `teach: ${task} head (${numClasses} classes) on ${head.levels.map((l) => l.name).join(', ')} of ` +
        `'${config.teach.backbone}'${config.teach.freeze_backbone ? ' (frozen)' : ''}; ` +
        `${training.trainableTensors} trainable tensors; ${train.records.length} training, ` +
        `${val.records.length} validation images; ${planned} steps`,
    );
    const untrained = (await evaluate(await exportTaskModel(training))).model!;
    log.info(`untrained ${untrained.metric} ${untrained.value.toFixed(4)}`);
    metrics.write({ step: 0, ...valValues(untrained) });

    const prior = new LabelPrior(task, numClasses);
    const every = config.logging.every_steps;
    const { steps: step, interrupted } = await trainHead(training, {
      loader,
      epochs: config.teach.epochs,
      maxSteps: planned,
      ...(options.signal ? { signal: options.signal } : {}),
      onBatch: (batch, epoch) => {
        if (epoch === 0) prior.add(batch);
      },
      onStep: ({ step, epoch, values }) => {
        if (step % every !== 0 && step !== planned) return;
        metrics.write({ step, epoch, ...values });
        tb?.addScalars(values, step);
        log.info(
          `step ${step}/${planned} epoch ${epoch + 1} loss ${values[HEAD_LOSS_NAMES.loss]!.toFixed(4)}`,
        );
      },
      afterEpoch: async (epoch, step) => {
        const e = config.teach.eval_every_epochs;
        if (e === 0 || (epoch + 1) % e !== 0) return;
        const s = (await evaluate(await exportTaskModel(training))).model!;
        log.info(`epoch ${epoch + 1}: ${formatValues(s)}`);
        metrics.write({ step, epoch, ...valValues(s) });
      },
    });

    const taskModel = await exportTaskModel(training);
    const headOnly = await exportHeadModel(training);
    const backboneOnly = await exportBackboneModel(training, backbone);
    const taskFile = run.file(TEACH_FILES.taskModel);
    const headFile = run.file(TEACH_FILES.head);
    const backboneFile = run.file(TEACH_FILES.backbone);
    saveModel(taskModel, taskFile);
    saveModel(headOnly, headFile);
    saveModel(backboneOnly, backboneFile);
    const scores = await evaluate(taskModel, prior);
    const report: TeachReport = {
      task,
      metric: scores.model!.metric,
      dataset: {
        type: train.type,
        train: train.split,
        val: val.split,
        trainImages: train.records.length,
        valImages: val.records.length,
      },
      backbone: config.teach.backbone,
      levels: head.levels.map((l) => l.name),
      frozenBackbone: config.teach.freeze_backbone,
      trainableParameters: training.trainableElements,
      steps: step,
      seconds: (Date.now() - started) / 1000,
      interrupted,
      chance: scores.chance!,
      untrained,
      trained: scores.model!,
    };
    metrics.write({ step, ...valValues(report.trained) });
    run.writeJson(TEACH_FILES.metrics, report);
    const summaryText = formatTeachSummary(report, run.root);
    log.info(`wrote ${taskFile}, ${headFile}, ${backboneFile} and ${run.file(TEACH_FILES.metrics)}`);
    return {
      runDir: run.root,
      taskModel: taskFile,
      head: headFile,
      backbone: backboneFile,
      report,
      summaryText,
    };
  } finally {
    metrics.close();
    tb?.close();
    await session.release();
  }
}

/** Writes the resolved teach config into the run (as `train` does with its config). */
function writeTeachConfig(run: RunDir, config: TeachConfig, sources: readonly string[]): void {
  const header =
    '# Resolved rl-pyramidkd teach config: defaults, extends and --set overrides applied; paths absolute.\n' +
    (sources.length > 0 ? `# sources: ${sources.join(', ')}\n` : '') +
    '# Reload with `rlpkd teach --config <this file>`.\n';
  run.writeFile(RUN_FILES.config, header + YAML.stringify(config, { lineWidth: 0 }));
}
