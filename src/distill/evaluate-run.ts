/**
 * `rlpkd eval`: the held-out measurements of a run's checkpoint (final by default): all-level distillation
 * loss now versus before training, per level, the level subsets the deterministic policy (or the fixed
 * selection) picks on each held-out image, and their mean cost. Same numbers as the run's own summary.
 * Then the checkpoint evaluation of src/eval (fidelity, task metrics, probes, policy by content, inference
 * cost), written to eval.json and eval.md in the run.
 */
import * as path from 'node:path';
import { loadConfig } from '../config/load-config';
import { RlpkdError } from '../errors';
import { silentLog, type LogSink } from '../logging/logger';
import { openRunDir } from '../logging/run-dir';
import { PolicyNetwork } from '../rl/policy';
import type { ExecutionProviderName } from '../runtime/session';
import { createStudentDistiller } from './create-distiller';
import { formatSummary, heldOutLoss, heldOutSelection, type TrainSummary } from './evaluation';
import { summaryPlotFields } from './evaluation';
import { readRunCheckpoint } from './run-checkpoint';
import { trainableParameterTensors } from '../analysis/parameter-tensors';
import type { HeadTask } from '../heads/types';
import { loadModel } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import type { TaskScore } from '../teach/task-scorer';
import { runStudentModel } from './export-weights';
import { describeTaskModel, scoreTaskModel } from './score-task-model';
import { requireCompleteTransplant, transplantWeights } from './transplant';
import { createSelectionEnv } from './selection-env';
import { prepareDistillation } from './setup';
import { evaluateCheckpoint, type CheckpointEvaluation } from '../eval/checkpoint-evaluation';
import type { BackboneName } from '../eval/backbones';
import { evaluationTables, tablesAsMarkdown, tablesAsText } from '../eval/evaluation-report';
import { writeEvaluationFiles } from '../eval/evaluation-files';
import { heldOutRecords, recordSizeBin } from '../eval/policy-by-size';
import { formatRewardLandscape, rewardLandscape, type RewardLandscape } from '../eval/reward-landscape';
import type { SelectionReport } from './evaluation';
import type { DistillSetup } from './setup';
import type { StudentDistiller } from './student-distiller';
import { sequentialImageSource } from './image-stream';

/** What to evaluate. */
/**
 * The reward landscape of the held-out images for a run's checkpoint, or why it cannot be measured: a
 * checkpoint saved without its optimizer state cannot reproduce trials from the run's moments (current) or
 * second moments (preconditioned).
 */
export async function heldOutRewardLandscape(
  setup: DistillSetup,
  distiller: StudentDistiller,
  options: {
    selection: SelectionReport;
    weights?: readonly number[];
    images?: number;
    optimizerStateOmitted: boolean;
  },
): Promise<RewardLandscape | { skipped: string }> {
  const config = setup.config;
  const state = config.rl.environment.trial_optimizer_state;
  if (state !== 'fresh' && options.optimizerStateOmitted)
    return {
      skipped:
        `the checkpoint has no optimizer state, and rl.environment.trial_optimizer_state is ${state}: ` +
        'evaluate a checkpoint saved with it (checkpoint.optimizer_state: always)',
    };
  const M = setup.heldOut.images.dims[0];
  const count = Math.min(M, options.images ?? M);
  const bins = heldOutRecords(setup.heldOut.files, setup.splits.val).map((r) =>
    r ? recordSizeBin(r) : 'unlabelled',
  );
  const L = setup.levelNames.length;
  return rewardLandscape({
    distiller,
    images: sequentialImageSource(setup.heldOut.images, setup.heldOut.hashes, setup.heldOut.labels),
    count,
    levelNames: setup.levelNames,
    costs: setup.costs,
    weights: Float32Array.from(options.weights ?? new Array<number>(L).fill(1 / L)),
    lambda: config.rl.environment.lambda_tradeoff,
    quality: config.rl.reward.quality,
    bins,
    ...(options.selection.source === 'policy' ? { policy: options.selection.selections } : {}),
  });
}

export interface EvaluateRunOptions {
  /** Run directory. */
  run: string;
  /** Checkpoint label (default: the one `latest` points at, the final one for a finished run). */
  checkpoint?: string;
  ep?: ExecutionProviderName;
  log?: LogSink;
  /** Also transplant the distilled student into this task model and score it on the held-out split. */
  taskModel?: { file: string; prefix?: string; task?: HeadTask };
  /**
   * Also measure the reward landscape (src/eval/reward-landscape.ts) on the first `images` held-out images
   * (default all): one trial update per image and level subset.
   */
  rewards?: { images?: number };
  /** The backbones the probe trains on (default every one; CheckpointEvaluationInput.probeBackbones). */
  probeBackbones?: readonly BackboneName[];
}

/** The transplanted task model's score (`rlpkd eval --task-model`). */
export interface TaskModelEvaluation {
  file: string;
  prefix: string;
  transplanted: number;
  task: HeadTask;
  metric: TaskScore['metric'];
  value: number;
  values: TaskScore['values'];
  images: number;
}

/** Which checkpoint an evaluation read, and whether its run had finished. */
export interface EvaluatedCheckpoint {
  /** Checkpoint folder name under <run>/checkpoints. */
  label: string;
  dir: string;
  /** The run's final checkpoint (every phase done); false for a run stopped (or still going) mid-way. */
  final: boolean;
  /** Where an unfinished run would go on: its next phase (1..4) and epoch (1-based). */
  next?: { phase: number; epoch: number };
}

/** The first line of `rlpkd eval`'s table: the checkpoint, and for an unfinished run how to go on. */
export function describeEvaluatedCheckpoint(c: EvaluatedCheckpoint, runDir: string): string {
  if (!c.next) return `checkpoint ${c.label} (final: the run finished)\n`;
  return (
    `checkpoint ${c.label}: the run is unfinished (next: phase ${c.next.phase}, epoch ${c.next.epoch}); ` +
    `continue it with \`rlpkd train --resume ${runDir}\`\n`
  );
}

/** Evaluates a run's checkpoint on its held-out images (see module doc). */
export async function evaluateRun(options: EvaluateRunOptions): Promise<{
  summary: TrainSummary;
  text: string;
  checkpoint: EvaluatedCheckpoint;
  taskModel?: TaskModelEvaluation;
  /** Fidelity, task metrics, probes, policy by content, inference cost (also in eval.json / eval.md). */
  evaluation: CheckpointEvaluation;
  /** The object `rlpkd eval --json` prints and eval.json holds. */
  json: Record<string, unknown>;
}> {
  const run = openRunDir(options.run);
  // Names and shapes are checked first: a task model that does not fit fails before any evaluation.
  let transplanted:
    { model: OnnxModel; prefix: string; transplanted: number; student: OnnxModel } | undefined;
  if (options.taskModel) {
    const student = runStudentModel(options.run, options.checkpoint).model;
    const r = transplantWeights(
      loadModel(options.taskModel.file),
      trainableParameterTensors(student).tensors,
      options.taskModel.prefix !== undefined ? { prefix: options.taskModel.prefix } : {},
    );
    requireCompleteTransplant(r, options.taskModel.file);
    transplanted = { ...r, student };
  }
  let config = loadConfig(run.configFile);
  if (options.ep) config = { ...config, run: { ...config.run, ep: options.ep } };
  const ckpt = readRunCheckpoint(run, options.checkpoint, 'eval');
  const start = ckpt.state.heldOutStart;
  if (!start)
    throw new RlpkdError(
      `checkpoint '${ckpt.dir}' has no held-out baseline (written by an unfinished first step)`,
    );
  const log = options.log ?? silentLog;
  const setup = await prepareDistillation(config, { ep: config.run.ep, log });
  // The run's cached artifacts (from training: the same options, so the same cache key), else built again.
  const distiller = await createStudentDistiller(setup, log, {
    checkpoint: ckpt.studentTrain,
    artifactsRoot: run.file('artifacts'),
    ...(setup.sharedParameter ? { sharedParameter: setup.sharedParameter.name } : {}),
  });
  const policy = ckpt.policyFile
    ? await PolicyNetwork.load(ckpt.policyFile, { executionProvider: setup.ep })
    : null;
  try {
    const after = await heldOutLoss(setup, distiller);
    const selection = await heldOutSelection({
      setup,
      policy,
      seed: (...parts) => [config.run.seed, ...parts].join(':'),
      createEnv: async (o) =>
        createSelectionEnv(setup, distiller, {
          ...o,
          ...(ckpt.gradnorm ? { weights: ckpt.gradnorm.weights } : {}),
          ...(ckpt.state.lossReference !== undefined ? { lossReference: ckpt.state.lossReference } : {}),
        }),
    });
    const summary: TrainSummary = {
      runDir: run.root,
      lossKind: config.distill.loss,
      heldOutImages: setup.heldOut.hashes.length,
      lossBefore: start.loss,
      lossAfter: after.loss,
      levelLossBefore: start.levels,
      levelLossAfter: after.levels,
      levelNames: [...setup.levelNames],
      selection,
      phaseSeconds: [...ckpt.state.phaseSeconds],
      ...(ckpt.gradnorm ? { gradnormWeights: ckpt.gradnorm.weights } : {}),
      ...summaryPlotFields(setup),
    };
    const cursor = ckpt.state.cursor;
    const checkpoint: EvaluatedCheckpoint = {
      label: path.basename(ckpt.dir),
      dir: ckpt.dir,
      final: cursor.phase > 4,
      ...(cursor.phase <= 4 ? { next: { phase: cursor.phase, epoch: cursor.epoch + 1 } } : {}),
    };
    let text = describeEvaluatedCheckpoint(checkpoint, run.root) + formatSummary(summary);
    let taskModel: TaskModelEvaluation | undefined;
    if (options.taskModel && transplanted) {
      const head = describeTaskModel(transplanted.model, transplanted.student, {
        size: setup.size,
        ...(options.taskModel.task ? { task: options.taskModel.task } : {}),
      });
      const score = await scoreTaskModel(transplanted.model, head, setup.splits.val, {
        preprocess: setup.preprocess,
        batchSize: config.data.batch_size,
        ep: setup.ep,
        log,
      });
      taskModel = {
        file: options.taskModel.file,
        prefix: transplanted.prefix,
        transplanted: transplanted.transplanted,
        task: score.task,
        metric: score.metric,
        value: score.value,
        values: score.values,
        images: score.images,
      };
      text +=
        `task model ${taskModel.file}: ${taskModel.transplanted} parameters transplanted ` +
        `(prefix '${taskModel.prefix}'); ${score.task} ${score.metric} ${score.value.toFixed(4)} ` +
        `on ${score.images} held-out images\n`;
    }
    const evaluation = await evaluateCheckpoint({
      setup,
      checkpointDir: ckpt.dir,
      selection,
      log,
      ...(options.probeBackbones ? { probeBackbones: options.probeBackbones } : {}),
    });
    let rewards: RewardLandscape | { skipped: string } | undefined;
    if (options.rewards) {
      rewards = await heldOutRewardLandscape(setup, distiller, {
        selection,
        weights: ckpt.gradnorm?.weights,
        images: options.rewards.images,
        optimizerStateOmitted: ckpt.studentTrain.optimizerStateOmitted === true,
      });
      if ('skipped' in rewards) text += `reward landscape skipped: ${rewards.skipped}\n`;
      else text += formatRewardLandscape(rewards);
    }
    const tables = evaluationTables(evaluation, setup.levelNames);
    const summaryText = text;
    text += tablesAsText(tables);
    const json = {
      ...summary,
      checkpoint,
      ...(taskModel ? { taskModel } : {}),
      ...evaluation,
      ...(rewards ? { rewards } : {}),
    };
    writeEvaluationFiles(run, json, {
      title: `Evaluation of ${run.root}`,
      summaryText,
      tablesMarkdown: tablesAsMarkdown(tables),
    });
    return { summary, text, checkpoint, ...(taskModel ? { taskModel } : {}), evaluation, json };
  } finally {
    await policy?.release();
    await distiller.release();
  }
}
