/**
 * `rlpkd nas` as a library call: prepares the run's student and data as `train` does (prepareDistillation,
 * createStudentDistiller), attaches teacher features to the proxy batches and validation batches once,
 * builds the search space (cost per selection), the objective and the cache, runs the method (and the
 * exhaustive oracle when asked), and writes nas.json.
 */
import * as path from 'node:path';
import { selectionCost } from '../analysis/selection-cost';
import type { RunConfig } from '../config/schema';
import { createStudentDistiller } from '../distill/create-distiller';
import { readRunCheckpoint } from '../distill/run-checkpoint';
import { prepareDistillation, type DistillSetup } from '../distill/setup';
import type { StudentDistiller, TaughtBatch } from '../distill/student-distiller';
import { RlpkdError } from '../errors';
import { silentLog, type LogSink } from '../logging/logger';
import { openRunDir } from '../logging/run-dir';
import type { ExecutionProviderName } from '../runtime/session';
import type { CheckpointState } from '../training/checkpoint';
import { EvaluationCache } from './evaluation-cache';
import { exhaustiveSearch } from './exhaustive';
import { METHOD_NAMES, runMethod, type CurvePoint, type MethodSettings, type NasMethod } from './methods';
import { SelectionObjective, type SelectionEvaluation } from './objective';
import {
  formatNasReport,
  NAS_REPORT_VERSION,
  readOracle,
  selectionLine,
  writeNasReport,
  type NasObjectiveKey,
  type NasOracle,
  type NasReport,
  type ReportedEvaluation,
} from './report';
import { levelsMask, maskLevels, searchSpace, selectionLabel, type SearchSpace } from './search-space';
import { StudentGatedProblem } from './student-problem';
import { featuresYardstick, type ValidationYardstick } from './yardstick';

/** Which cost a selection is charged: the MDP's distillation cost share (Σ cost_l) or the inference MACs share. */
export type NasCost = 'distill' | 'inference';

/** Options of runNas (defaults in NAS_DEFAULTS). */
export interface NasOptions {
  config: RunConfig;
  /** Where the config came from (recorded in nas.json's key). */
  configSource: string;
  method: NasMethod;
  ep?: ExecutionProviderName;
  log?: LogSink;
  /** Start from this run's checkpoint (label: default the latest) instead of the initial student. */
  fromRun?: { run: string; checkpoint?: string };
  /** λ (default rl.environment.lambda_tradeoff of the config). */
  lambda?: number;
  cost?: NasCost;
  proxySteps?: number;
  /** Also run the exhaustive oracle (its proxy trainings are not the method's search cost). */
  withOracle?: boolean;
  /** nas.json of an exhaustive run to measure regret against. */
  oracleFile?: string;
  /** Output folder (default <run.output_dir>/nas-<method>). */
  outDir?: string;
  settings?: Partial<MethodSettings>;
  /**
   * The validation yardstick over the prepared held-out batches (default: featuresYardstick, the
   * all-level distillation loss, named 'features'); its name enters nas.json's key.
   */
  yardstick?: {
    name: string;
    create(context: {
      setup: DistillSetup;
      distiller: StudentDistiller;
      batches: TaughtBatch[];
    }): ValidationYardstick;
  };
  onProgress?: (point: CurvePoint) => void;
}

/** Defaults sized for the demo on 2 CPU cores. */
export const NAS_DEFAULTS = {
  proxySteps: 12,
  cost: 'distill' as NasCost,
  steps: 24,
  archLr: 0.1,
  tauMax: 10,
  tauMin: 0.1,
  population: 6,
  sampleSize: 3,
  cycles: 10,
  samples: 8,
};

/** The cost function of a selection (see NasCost). */
export function selectionCostFunction(setup: DistillSetup, kind: NasCost): (levels: string[]) => number {
  if (kind === 'distill') {
    return (levels) => levels.reduce((a, n) => a + setup.costs[setup.levelNames.indexOf(n)], 0);
  }
  const levels = setup.pairs.map((p) => ({ ...p.student, output: p.studentTensor }));
  return (names) => selectionCost(setup.student, setup.size, names, { levels }).share;
}

/** ξ by default: the span of the proxy training, K plain steps of the student's learning rate (momentum's 1/(1−μ) included). */
export function defaultXi(config: RunConfig, proxySteps: number): number {
  const o = config.distill.optimizer;
  const momentum = o.type === 'sgd' ? o.momentum : 0;
  return (proxySteps * o.lr) / (1 - momentum);
}

async function proxyBatches(
  setup: DistillSetup,
  distiller: StudentDistiller,
  count: number,
): Promise<TaughtBatch[]> {
  const out: TaughtBatch[] = [];
  for (let epoch = 0; out.length < count; epoch++) {
    for await (const b of setup.trainLoader.epoch(epoch)) {
      out.push(await distiller.prepare({ images: b.images, hashes: b.hashes, flipped: b.flipped }));
      if (out.length === count) break;
    }
  }
  return out;
}

async function validationBatches(setup: DistillSetup, distiller: StudentDistiller): Promise<TaughtBatch[]> {
  const { images, hashes } = setup.heldOut;
  const [M, C, H, W] = images.dims;
  const bs = setup.config.data.batch_size;
  const out: TaughtBatch[] = [];
  for (let start = 0; start < M; start += bs) {
    const n = Math.min(bs, M - start);
    out.push(
      await distiller.prepare({
        images: {
          data: images.data.subarray(start * C * H * W, (start + n) * C * H * W),
          dims: [n, C, H, W],
        },
        hashes: hashes.slice(start, start + n),
        flipped: new Array<boolean>(n).fill(false),
      }),
    );
  }
  return out;
}

function reported(space: SearchSpace, e: SelectionEvaluation): ReportedEvaluation {
  const { mask, ...rest } = e;
  return { label: selectionLabel(space.levelNames, mask), ...rest };
}

/** Runs one NAS method (see module doc); returns the report, its file and the printed text. */
export async function runNas(
  options: NasOptions,
): Promise<{ report: NasReport; file: string; text: string }> {
  const config = options.config;
  const log = options.log ?? silentLog;
  const proxySteps = options.proxySteps ?? NAS_DEFAULTS.proxySteps;
  const lambda = options.lambda ?? config.rl.environment.lambda_tradeoff;
  const costKind = options.cost ?? NAS_DEFAULTS.cost;
  if (options.withOracle && options.oracleFile) {
    throw new RlpkdError('--with-oracle and --oracle both name an oracle', { hint: 'pass one of them' });
  }
  let checkpoint: CheckpointState | undefined;
  let start = 'initial student';
  let continueMoments = false;
  if (options.fromRun) {
    const ckpt = readRunCheckpoint(openRunDir(options.fromRun.run), options.fromRun.checkpoint, 'eval');
    checkpoint = ckpt.studentTrain;
    const moments = !ckpt.studentTrain.optimizerStateOmitted && ckpt.studentTrain.optimizer.step > 0;
    start = `checkpoint ${ckpt.dir}${moments ? " (the run's optimizer moments)" : ''}`;
    continueMoments = moments;
  }
  const key: NasObjectiveKey = {
    config: options.configSource,
    seed: config.run.seed,
    yardstick: options.yardstick?.name ?? 'features',
    cost: costKind,
    proxySteps,
    lambda,
    start,
  };
  // Read before any work: a mismatched oracle fails at once.
  const fileOracle = options.oracleFile ? readOracle(options.oracleFile, key) : undefined;
  const settings: MethodSettings = {
    seed: String(config.run.seed),
    steps: NAS_DEFAULTS.steps,
    xi: defaultXi(config, proxySteps),
    archLr: NAS_DEFAULTS.archLr,
    tauMax: NAS_DEFAULTS.tauMax,
    tauMin: NAS_DEFAULTS.tauMin,
    population: NAS_DEFAULTS.population,
    sampleSize: NAS_DEFAULTS.sampleSize,
    cycles: NAS_DEFAULTS.cycles,
    samples: NAS_DEFAULTS.samples,
    ...options.settings,
  };
  const setup = await prepareDistillation(config, { ep: options.ep ?? config.run.ep, log });
  // The objective has its own validation yardstick: the distiller must not measure the RL reward's task
  // yardstick, which needs labels the proxy batches do not carry.
  const distillerSetup: DistillSetup =
    config.rl.reward.yardstick === 'features'
      ? setup
      : {
          ...setup,
          config: { ...config, rl: { ...config.rl, reward: { ...config.rl.reward, yardstick: 'features' } } },
        };
  const distiller = await createStudentDistiller(distillerSetup, log, {
    artifactsRoot: path.join(config.run.output_dir, 'nas-artifacts'),
    ...(checkpoint ? { checkpoint } : {}),
  });
  try {
    const t0 = performance.now();
    const train = await proxyBatches(setup, distiller, proxySteps);
    const batches = await validationBatches(setup, distiller);
    const yardstick = options.yardstick
      ? options.yardstick.create({ setup, distiller, batches })
      : featuresYardstick(distiller, batches);
    const problem = StudentGatedProblem.create(distiller, train, yardstick, {
      freshOptimizer: !continueMoments,
    });
    const space = searchSpace(setup.levelNames, selectionCostFunction(setup, costKind));
    const objective = await SelectionObjective.create(problem, () => yardstick.loss(), space, {
      proxySteps,
      lambda,
    });
    const setupSeconds = (performance.now() - t0) / 1000;
    log.info(`nas: ${METHOD_NAMES[options.method]}, L_val(start) ${objective.baseLoss.toPrecision(5)}`);
    const cache = new EvaluationCache((mask) => objective.evaluate(mask));
    const result = await runMethod(options.method, {
      problem,
      objective,
      cache,
      settings,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    let oracle: NasOracle | undefined = fileOracle;
    let oracleSource = options.oracleFile;
    if (options.method === 'exhaustive' || options.withOracle) {
      const all = await exhaustiveSearch(space.levelNames.length, (m) => cache.objective(m));
      oracle = {
        best: maskLevels(space.levelNames, all.best),
        bestObjective: all.bestObjective,
        objectives: Object.fromEntries(
          [...all.objectives].map(([m, j]) => [selectionLabel(space.levelNames, m), j]),
        ),
      };
      oracleSource = 'this run';
    }
    const chosenLabel = selectionLabel(space.levelNames, result.chosen.mask);
    const oracleJ = oracle?.objectives[chosenLabel];
    const report: NasReport = {
      version: NAS_REPORT_VERSION,
      method: options.method,
      methodName: METHOD_NAMES[options.method],
      key,
      levels: [...space.levelNames],
      levelCosts: space.levelNames.map((n) => space.cost(levelsMask(space.levelNames, [n]))),
      baseLoss: objective.baseLoss,
      chosen: reported(space, result.chosen),
      ...(oracle && oracleJ !== undefined ? { regret: oracleJ - oracle.bestObjective, oracle } : {}),
      ...(oracle && oracleSource ? { oracleSource } : {}),
      curveUnit: result.curveUnit,
      curve: result.curve,
      evaluated: cache.entries.map((e) => reported(space, e.result)),
      search: {
        seconds: result.searchSeconds,
        scoringSeconds: result.scoringSeconds,
        setupSeconds,
        evaluations: result.evaluations,
        cacheHits: result.cacheHits,
        ep: setup.ep,
      },
      ...(result.alpha ? { alpha: result.alpha } : {}),
      distillSelection: selectionLine(result.chosen.levels),
      settings: { ...settings },
    };
    const file = writeNasReport(
      options.outDir ?? path.join(config.run.output_dir, `nas-${options.method}`),
      report,
    );
    return { report, file, text: formatNasReport(report, file) };
  } finally {
    await distiller.release();
  }
}
