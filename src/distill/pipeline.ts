/**
 * `rlpkd train` as a library call: checks the config's models and data, creates (or reopens, for
 * --resume) the run directory `<output_dir>/<name>-<timestamp>/` with its resolved config, metrics.jsonl,
 * TensorBoard events, train.log and checkpoints, runs phases 1–4 from the checkpoint cursor, and ends with
 * the held-out summary (also written as summary.json and policy-heatmap.svg/.png) and the checkpoint
 * evaluation of src/eval (eval.json, eval.md: task metrics, probes, policy by content). Ctrl-C (an aborted signal)
 * saves a checkpoint after the current unit of work and returns 'interrupted'.
 */
import * as path from 'node:path';
import { writeResolvedConfig } from '../config/load-config';
import { loadConfig } from '../config/load-config';
import type { RunConfig } from '../config/schema';
import { RlpkdError } from '../errors';
import { Logger, type LoggerOptions, type LogLevel, type LogSink } from '../logging/logger';
import { MetricsWriter } from '../logging/metrics';
import { createRunDir, createRunDirAt, openRunDir, type RunDir } from '../logging/run-dir';
import { TensorBoardWriter } from '../logging/tfevents';
import type { ExecutionProviderName } from '../runtime/session';
import { policyHeatmapData, policyHeatmapSpec } from '../viz/policy-heatmap';
import { renderPlot } from '../viz/render';
import { evaluateCheckpoint } from '../eval/checkpoint-evaluation';
import { writeEvaluationFiles } from '../eval/evaluation-files';
import { evaluationTables, tablesAsMarkdown, tablesAsText } from '../eval/evaluation-report';
import { createStudentDistiller } from './create-distiller';
import { describeEvaluatedCheckpoint } from './evaluate-run';
import {
  formatSummary,
  heldOutLoss,
  heldOutSelection,
  heldOutTaskLoss,
  summaryPlotFields,
  type TrainSummary,
} from './evaluation';
import { LabelsOnlyBaseline } from './labels-only-baseline';
import { runJointPhase, runMetaPhase, runPolicyPhase, runPretrain } from './phases';
import { ReturnScaler } from './reward-scaling';
import { readRunCheckpoint, type LoadedRunCheckpoint } from './run-checkpoint';
import { PHASE_NAMES, RunContext, TrainingInterrupted } from './run-context';
import { RunProgress } from './run-progress';
import { prepareDistillation, type DistillSetup } from './setup';
import { studentStructure, type StudentDistiller } from './student-distiller';

/** How to run. */
export interface TrainOptions {
  /** The run config (new runs). */
  config?: RunConfig;
  /** Config files it came from (recorded in the resolved config's header). */
  sources?: readonly string[];
  /** Resume this run directory from its latest checkpoint (its resolved config is used). */
  resume?: string;
  /** Execution provider (overrides run.ep). */
  ep?: ExecutionProviderName;
  /** Run name (overrides run.name). */
  runName?: string;
  /** Create the run in exactly this folder (it must not exist) instead of `<output_dir>/<name>-<timestamp>`. */
  runDir?: string;
  /** Stop after this phase (1..3) with its checkpoint saved: status 'stopped', resumable (rlpkd ablate). */
  stopAfterPhase?: number;
  /**
   * The held-out split was named explicitly (the CLI sets this for `--set data.val_split=...`): a missing
   * one fails instead of falling back to a held-out carve of the training split.
   */
  requireValSplit?: boolean;
  /**
   * Run the held-out evaluation at the end (default true). `rlpkd ablate` passes false: it evaluates each
   * branch itself (its own probe selection), and evaluating twice doubled a quick branch's time.
   */
  evaluate?: boolean;
  /** Aborting it (Ctrl-C) saves a checkpoint after the current unit and stops. */
  signal?: AbortSignal;
  /** Console logger settings (default: stderr, level and progress from the config). */
  logger?: Pick<LoggerOptions, 'stream' | 'progress' | 'lineIntervalSeconds'> & { level?: LogLevel };
}

/** What a run ended with. */
export interface TrainResult {
  runDir: string;
  status: 'completed' | 'interrupted' | 'stopped';
  /** Folder of the last checkpoint written. */
  checkpoint: string;
  summary?: TrainSummary;
  /** The summary table. */
  summaryText?: string;
}

/**
 * Collects messages until the run's logger exists: warnings and errors are shown at once and later written
 * to train.log only; debug and info lines go to both when replayed.
 */
class BufferedLog implements LogSink {
  readonly lines: { level: LogLevel; message: string }[] = [];
  constructor(private readonly echo: Logger) {}
  debug(m: string): void {
    this.lines.push({ level: 'debug', message: m });
  }
  info(m: string): void {
    this.lines.push({ level: 'info', message: m });
  }
  warn(m: string): void {
    this.echo.warn(m);
    this.lines.push({ level: 'warn', message: m });
  }
  error(m: string): void {
    this.echo.error(m);
    this.lines.push({ level: 'error', message: m });
  }
  replay(into: Logger): void {
    for (const l of this.lines) {
      if (l.level === 'warn' || l.level === 'error') into.record(l.level, l.message);
      else into[l.level](l.message);
    }
  }
}

/** The error as the CLI prints it, for train.log. */
function describeError(err: unknown): string {
  if (err instanceof RlpkdError) return `${err.message}${err.hint ? `\n  hint: ${err.hint}` : ''}`;
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** Runs (or resumes) a training run; see module doc. */
export async function runTraining(options: TrainOptions): Promise<TrainResult> {
  let config: RunConfig;
  let run: RunDir | undefined;
  let resumed: LoadedRunCheckpoint | undefined;
  if (options.resume) {
    run = openRunDir(options.resume);
    config = loadConfig(run.configFile);
    resumed = readRunCheckpoint(run, undefined, 'resume');
    if (resumed.state.cursor.phase > 4) {
      throw new RlpkdError(`run '${run.root}' has already finished (its latest checkpoint is final)`, {
        hint: 'start a new run, or evaluate this one with `rlpkd eval`',
      });
    }
    if (resumed.studentTrain.optimizerStateOmitted) {
      throw new RlpkdError(
        `checkpoint '${resumed.dir}' was saved without optimizer state (checkpoint.optimizer_state: ` +
          `${config.checkpoint.optimizer_state}), which resuming needs`,
        {
          hint:
            'evaluate it with `rlpkd eval`, or start a new run; keep runs resumable with ' +
            'checkpoint.optimizer_state: always or except_final',
        },
      );
    }
  } else {
    if (!options.config) throw new RlpkdError('runTraining: pass a config or a run to resume');
    config = options.config;
  }
  if (options.ep) config = { ...config, run: { ...config.run, ep: options.ep } };
  const loggerBase: LoggerOptions = {
    level: options.logger?.level ?? config.logging.level,
    progress: options.logger?.progress ?? config.logging.progress,
    ...(options.logger?.stream ? { stream: options.logger.stream } : {}),
    ...(options.logger?.lineIntervalSeconds !== undefined
      ? { lineIntervalSeconds: options.logger.lineIntervalSeconds }
      : {}),
  };
  const console0 = new Logger(loggerBase);
  const early = new BufferedLog(console0);
  // Everything that can be wrong with the models or data fails here, before a run directory exists.
  let setup = await prepareDistillation(config, {
    ep: config.run.ep,
    log: early,
    ...(options.requireValSplit ? { requireValSplit: true } : {}),
  });
  console0.close();
  if (!run) {
    run = options.runDir
      ? createRunDirAt(options.runDir)
      : createRunDir(config.run.output_dir, options.runName ?? config.run.name);
    writeResolvedConfig(run.root, config, options.sources ?? []);
  }
  const log = new Logger({ ...loggerBase, file: run.logFile });
  early.replay(log);
  const progress = new RunProgress(resumed?.state);
  const metrics = new MetricsWriter(
    run.metricsFile,
    !resumed
      ? {}
      : resumed.state.metricsRecords !== undefined
        ? { keepRecords: resumed.state.metricsRecords }
        : { keepUpToStep: progress.globalStep },
  );
  const tb = config.logging.tensorboard
    ? new TensorBoardWriter(
        run.file('tensorboard'),
        resumed ? { filenameSuffix: `.resume${progress.globalStep}` } : {},
      )
    : null;
  let ctx: RunContext | undefined;
  let distiller: StudentDistiller | undefined;
  let baseline: LabelsOnlyBaseline | null = null;
  try {
    log.info(
      `${resumed ? 'resuming' : 'run'} ${run.root}${resumed ? ` from ${path.basename(resumed.dir)} (phase ${progress.phase}, epoch ${progress.epoch + 1})` : ''}`,
    );
    describeSetup(setup, log);
    // The run's one distiller; its artifacts are cached in the run (a resumed run finds them there).
    distiller = await createStudentDistiller(setup, log, {
      artifactsRoot: run.file('artifacts'),
      ...(setup.sharedParameter ? { sharedParameter: setup.sharedParameter.name } : {}),
      ...(resumed ? { checkpoint: resumed.studentTrain } : {}),
    });
    baseline = await openLabelsOnlyBaseline(setup, distiller, resumed);
    // The distiller's session holds the student's weights now: the run keeps only the graph's structure.
    setup = { ...setup, student: studentStructure(setup.student, distiller.session) };
    const scaler = new ReturnScaler(config.rl.ppo.gamma);
    ctx = new RunContext(setup, run, log, metrics, tb, distiller, scaler, progress, options.signal, baseline);
    if (resumed) await ctx.restore(resumed);
    // Everything is in the distiller and the context now: drop the checkpoint's copies (with AdamW three
    // times the student) instead of holding them for the rest of the run.
    resumed = undefined;
    if (!progress.heldOutStart) {
      const start = await heldOutLoss(setup, distiller);
      const task = await heldOutTaskLoss(setup, distiller, null);
      progress.setHeldOutStart({ ...start, ...(task ? { taskLoss: task.student } : {}) });
      log.info(`held-out all-level distillation loss before training: ${start.loss.toPrecision(5)}`);
      if (task)
        log.info(`held-out task loss (student's own head) before training: ${task.student.toPrecision(5)}`);
      ctx.logScalars(
        { 'heldout/start/loss': start.loss, ...(task ? { 'heldout/start/task_loss': task.student } : {}) },
        { force: true },
      );
    }
    const phases = [runPretrain, runPolicyPhase, runJointPhase, runMetaPhase];
    let last = '';
    while (progress.phase <= 4) {
      const p = progress.phase;
      const skipped = skipReason(setup, p);
      if (skipped) {
        log.info(`phase ${p} (${PHASE_NAMES[p - 1]}) skipped: ${skipped}`);
      } else {
        ctx.resetTick();
        await phases[p - 1](ctx);
        ctx.tick(p);
        log.info(`phase ${p} (${PHASE_NAMES[p - 1]}) done in ${progress.phaseSeconds[p - 1].toFixed(1)}s`);
      }
      progress.phaseDone();
      if (p < 4 && !skipped) last = await ctx.saveCheckpoint();
      if (options.stopAfterPhase === p) {
        if (skipped) last = await ctx.saveCheckpoint();
        log.info(`stopped after phase ${p} as asked; checkpoint ${last}`);
        return { runDir: run.root, status: 'stopped', checkpoint: last };
      }
    }
    reportSkipped(setup, log);
    const summary = await summarize(ctx);
    last = await ctx.saveCheckpoint(undefined, 'final');
    run.writeJson('summary.json', summary);
    // The same evaluation `rlpkd eval` runs, on the final checkpoint (eval.json, eval.md in the run). The
    // training sessions go first: the evaluation opens its own, and a run's peak memory should not add both.
    await ctx.close();
    ctx = undefined;
    await distiller.release();
    distiller = undefined;
    const summaryOnly = formatSummary(summary);
    if (options.evaluate === false) {
      log.info(`final checkpoint: ${last}`);
      return { runDir: run.root, status: 'completed', checkpoint: last, summary, summaryText: summaryOnly };
    }
    const evaluation = await evaluateCheckpoint({
      setup,
      checkpointDir: last,
      selection: summary.selection,
      log,
    });
    const tables = evaluationTables(evaluation, setup.levelNames);
    const checkpoint = { label: path.basename(last), dir: last, final: true };
    const distillText = describeEvaluatedCheckpoint(checkpoint, run.root) + summaryOnly;
    writeEvaluationFiles(
      run,
      { ...summary, checkpoint, ...evaluation },
      {
        title: `Evaluation of ${run.root}`,
        summaryText: distillText,
        tablesMarkdown: tablesAsMarkdown(tables),
      },
    );
    const summaryText = summaryOnly + tablesAsText(tables);
    log.info(`final checkpoint: ${last}`);
    return { runDir: run.root, status: 'completed', checkpoint: last, summary, summaryText };
  } catch (err) {
    if (err instanceof TrainingInterrupted) {
      log.warn(`interrupted: checkpoint saved in ${err.checkpointDir}`);
      return { runDir: run.root, status: 'interrupted', checkpoint: err.checkpointDir };
    }
    // The caller (the CLI) prints it; the run's log keeps it too.
    log.record('error', describeError(err));
    throw err;
  } finally {
    if (ctx) await ctx.close();
    else await baseline?.release();
    await distiller?.release();
    metrics.close();
    tb?.close();
    log.close();
  }
}

/**
 * The labels-only student when the config asks for one: a new run starts it from the distilled student's
 * initial state, a resumed run from its checkpoint.
 */
async function openLabelsOnlyBaseline(
  setup: DistillSetup,
  distiller: StudentDistiller,
  resumed: LoadedRunCheckpoint | undefined,
): Promise<LabelsOnlyBaseline | null> {
  const d = setup.config.distill;
  if (!d.labels_only_baseline) return null;
  if (resumed && !resumed.labelsOnlyTrain) {
    throw new RlpkdError(`checkpoint '${resumed.dir}' holds no labels-only baseline, which this run trains`, {
      hint: 'start a new run (the baseline must see the whole schedule)',
    });
  }
  return LabelsOnlyBaseline.create(distiller, {
    taskWeight: d.task_loss_weight,
    executionProvider: setup.ep,
    ...(d.grad_clip !== null ? { maxGradNorm: d.grad_clip } : {}),
    ...(resumed?.labelsOnlyTrain ? { checkpoint: resumed.labelsOnlyTrain } : {}),
  });
}

/** Why phase `p` does not run, or undefined when it does. */
function skipReason(setup: DistillSetup, p: number): string | undefined {
  const c = setup.config.phases[PHASE_NAMES[p - 1]];
  if (!c.enabled) return 'disabled';
  if (c.epochs === 0) return '0 epochs';
  if ((p === 2 || p === 4) && setup.selection !== 'rl')
    return 'distill.selection is not rl (no policy to learn)';
  return undefined;
}

/** One line per split with skipped images (data.on_corrupt: skip), so a run's log says what it trained on. */
function reportSkipped(setup: DistillSetup, log: LogSink): void {
  const counts: [string, number, number][] = [
    [
      `training split '${setup.splits.train.split}'`,
      setup.trainLoader.skipped.length,
      setup.splits.train.records.length,
    ],
    [`held-out split '${setup.splits.val.split}'`, setup.heldOut.skipped, setup.splits.val.records.length],
    ...Object.entries(setup.taskLoaders).map(([task, l]): [string, number, number] => [
      `MAML task '${task}'`,
      l.skipped.length,
      l.dataset.records.length,
    ]),
  ];
  for (const [name, skipped, total] of counts) {
    if (skipped > 0) log.warn(`${name}: skipped ${skipped} of ${total} images (corrupt or missing)`);
  }
}

function describeSetup(setup: DistillSetup, log: LogSink): void {
  const c = setup.config;
  log.info(
    `levels ${setup.pairs.map((p) => `${p.name} ${p.teacher.channels}×${p.teacher.height}×${p.teacher.width}`).join(', ')}; ` +
      `costs ${setup.levelNames.map((n, l) => `${n} ${setup.costs[l].toFixed(3)}`).join(', ')}`,
  );
  log.info(
    `data ${c.data.type}: ${setup.splits.train.records.length} training images, ${setup.heldOut.hashes.length} held out; ` +
      `loss ${c.distill.loss}; selection ${describeSelection(setup.selection)}; ep ${setup.ep}`,
  );
}

function describeSelection(sel: DistillSetup['selection']): string {
  if (sel === 'rl') return 'rl';
  if (sel.random) return `random (expected cost ${sel.random.targetCost.toFixed(3)})`;
  return sel.levels.join('+');
}

async function summarize(ctx: RunContext): Promise<TrainSummary> {
  const s = ctx.setup;
  const after = await heldOutLoss(s, ctx.distiller);
  const taskAfter = await heldOutTaskLoss(s, ctx.distiller, ctx.baseline);
  const selection = await heldOutSelection(ctx);
  const start = ctx.progress.heldOutStart!;
  const summary: TrainSummary = {
    runDir: ctx.run.root,
    lossKind: ctx.config.distill.loss,
    heldOutImages: s.heldOut.hashes.length,
    lossBefore: start.loss,
    lossAfter: after.loss,
    levelLossBefore: start.levels,
    levelLossAfter: after.levels,
    levelNames: [...s.levelNames],
    selection,
    phaseSeconds: ctx.progress.phaseSeconds,
    ...(ctx.gradnorm ? { gradnormWeights: ctx.gradnorm.weights } : {}),
    ...summaryPlotFields(s),
    ...(taskAfter && start.taskLoss !== undefined
      ? {
          taskLoss: {
            before: start.taskLoss,
            after: taskAfter.student,
            ...(taskAfter.labelsOnly !== undefined ? { labelsOnlyAfter: taskAfter.labelsOnly } : {}),
          },
        }
      : {}),
  };
  ctx.logScalars(
    { 'heldout/final/loss': after.loss, 'heldout/final/used_cost': selection.meanUsedCost },
    { force: true },
  );
  const plot = await renderPlot(
    policyHeatmapSpec(
      policyHeatmapData({
        levelNames: s.levelNames,
        selections: selection.selections,
        costs: summary.levelCosts,
        objectSizes: summary.heldOutObjectSizes,
      }),
    ),
  );
  ctx.run.writeFile('policy-heatmap.svg', plot.svg);
  ctx.run.writeFile('policy-heatmap.png', [plot.png]);
  ctx.tb?.addImage(
    'policy/heatmap_levels_x_heldout_images',
    { png: plot.png, width: plot.width, height: plot.height, channels: plot.channels },
    ctx.progress.globalStep,
  );
  return summary;
}
