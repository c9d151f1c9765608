/**
 * `rlpkd eval`: the held-out measurements of a run's checkpoint (final by default): all-level distillation
 * loss now versus before training, per level, the level subsets the deterministic policy (or the fixed
 * selection) picks on each held-out image, and their mean cost. Same numbers as the run's own summary.
 */
import { loadConfig } from '../config/load-config';
import { RlpkdError } from '../errors';
import { silentLog, type LogSink } from '../logging/logger';
import { openRunDir } from '../logging/run-dir';
import { PolicyNetwork } from '../rl/policy';
import type { ExecutionProviderName } from '../runtime/session';
import { createStudentDistiller } from './create-distiller';
import { formatSummary, heldOutLoss, heldOutSelection, type TrainSummary } from './evaluation';
import { readRunCheckpoint } from './run-checkpoint';
import { createSelectionEnv } from './selection-env';
import { prepareDistillation } from './setup';

/** What to evaluate. */
export interface EvaluateRunOptions {
  /** Run directory. */
  run: string;
  /** Checkpoint label (default: the one `latest` points at, the final one for a finished run). */
  checkpoint?: string;
  ep?: ExecutionProviderName;
  log?: LogSink;
}

/** Evaluates a run's checkpoint on its held-out images (see module doc). */
export async function evaluateRun(
  options: EvaluateRunOptions,
): Promise<{ summary: TrainSummary; text: string }> {
  const run = openRunDir(options.run);
  let config = loadConfig(run.configFile);
  if (options.ep) config = { ...config, run: { ...config.run, ep: options.ep } };
  const ckpt = readRunCheckpoint(run, options.checkpoint);
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
    };
    return { summary, text: formatSummary(summary) };
  } finally {
    await policy?.release();
    await distiller.release();
  }
}
