/**
 * Step time per level subset against the cost model (issue 13, "saved cost must become saved time"):
 * for each asked subset of pyramid levels, the student's distillation step (TrainingSession.fusedStep on
 * the artifacts of the student pruned to the subset, pruneToLevels, with the loss over those levels only)
 * is timed, and its share of the all-levels step is set beside the share the cost model predicts.
 *
 * The teacher is excluded: its features for every level are computed once, before any timing, and each
 * subset's step is fed the levels it distils. What is timed is the student's forward, loss, backward and
 * AdamW update — the work a pruned gradient graph saves.
 *
 * Prediction. The cost model charges a distillation step 3 passes (forward, input-gradient and
 * weight-gradient, FORWARD_BACKWARD_FACTOR) over each MAC plus LOSS_OPS_PER_ELEMENT operations per
 * distilled feature element. A graph pruned to subset S still runs every node some level of S needs (the
 * shared trunk those levels need included: selectionCost's MACs), so its predicted work is
 *   W(S) = 3 · selectionMacs(S) + 3 · Σ_{l∈S} C_l·H_l·W_l,
 * which is Σ_{l∈S} w_l (the cost model's per-level weights behind distillCost) plus 3 × the trunk MACs S
 * needs. The predicted share is W(S) / W(all levels).
 */
import * as path from 'node:path';
import { RlpkdError } from '../errors';
import { classifyParameters } from '../analysis/parameters';
import { findPyramidLevels, inferAtSize, type PyramidLevel } from '../analysis/pyramid';
import { subsetWork } from '../analysis/subset-work';
import { DISTILL_IO } from '../distill/distill-model';
import { distillerArtifacts, distillerArtifactsDir } from '../distill/student-distiller';
import { loadModel } from '../onnx/model-io';
import { pruneToLevels } from '../onnx/level-pruning';
import type { OnnxModel } from '../onnx/types';
import { createSession, resolveExecutionProvider } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import { TrainingSession } from '../training/training-session';
import { createRng } from '../util/rng';
import { median } from './stats';
import { defaultBenchCacheDir, imageInput, pairLevelsByName, type TrainStepBenchOptions } from './train-step';

/** Largest |measured / predicted − 1| counted as agreeing with the cost model (issue 13's acceptance). */
const SUBSET_TOLERANCE = 0.2;

/** What to time: graphs, batch, size, provider and threads as for the train step (size default 224). */
export interface SubsetStepBenchOptions extends Pick<
  TrainStepBenchOptions,
  'teacher' | 'student' | 'batch' | 'size' | 'ep' | 'threads'
> {
  /** Timed steps per subset (default 5). */
  steps?: number;
  /** Untimed steps per subset first (default 1). */
  warmup?: number;
  /**
   * Level subsets to time, each a list of level names (P2) or student outputs; default every non-empty
   * subset. The all-levels step is always timed too: it is the reference of the shares.
   */
  subsets?: string[][];
  /** Passes through all subsets, one after another (default 1); each times warmup + steps per subset. */
  rounds?: number;
  /** Folder caching the per-subset artifacts (default: rlpkd-bench-cache under the OS temp dir). */
  cacheDir?: string;
  /** Called after each subset's steps in a round (progress output). */
  onSubset?: (progress: { name: string; round: number; medianMs: number }) => void;
}

/** The cost model's prediction for one subset. */
export interface SubsetPrediction {
  /** Level names, finest first, joined by '+' (e.g. P4+P5). */
  name: string;
  levels: string[];
  /** MACs per image of the pruned student's forward (selectionCost). */
  macs: number;
  /** Feature elements per image the subset's loss reads. */
  lossElements: number;
  /** Element ops per image of the pruned forward (not in the cost model; shown beside it). */
  elementOps: number;
  /** elementOps / elementOps of all levels. */
  elementOpsShare: number;
  /** 3 · macs + 3 · lossElements (see the module doc). */
  work: number;
  /** work / work of all levels. */
  predictedShare: number;
}

/** One timed subset. */
export interface SubsetStepRow extends SubsetPrediction {
  medianMs: number;
  minMs: number;
  stepsMs: number[];
  /** medianMs / medianMs of all levels. */
  measuredShare: number;
  /** measuredShare / predictedShare. */
  ratio: number;
  /** minMs / minMs of all levels: the share with the least interference from other load. */
  minShare: number;
  /** minShare / predictedShare. */
  minRatio: number;
  /** |ratio − 1| ≤ SUBSET_TOLERANCE. */
  withinTolerance: boolean;
  /** Trainable elements of the pruned student. */
  trainableParameters: number;
  /** Loss of the first step (finite: the step really trained). */
  firstLoss: number;
}

/** Least-squares line medianMs ≈ fixedMs + proportionalMs · predictedShare over the timed subsets. */
export interface SubsetTimeFit {
  /** Time per step that does not shrink with the predicted work (session runs, per-step overheads). */
  fixedMs: number;
  /** Time of the all-levels step that the predicted work accounts for. */
  proportionalMs: number;
}

/** The whole table. */
export interface SubsetStepBenchResult {
  /** All levels first, then the asked subsets in mask order (finest level = lowest bit). */
  rows: SubsetStepRow[];
  /** The line through the rows' (predictedShare, medianMs); undefined with fewer than two distinct shares. */
  fit?: SubsetTimeFit;
  /** The teacher's one forward for every level (excluded from the step times). */
  teacherMs: number;
  tolerance: number;
  batch: number;
  size: number;
  executionProvider: string;
  threads: number | 'default';
}

function positive(value: number, what: string, min = 1): number {
  if (!Number.isInteger(value) || value < min)
    throw new RlpkdError(`bench subsets: ${what} must be an integer ≥ ${min}, got ${value}`);
  return value;
}

/** The pyramid levels of the student, as the cost model finds them. */
function studentLevels(student: OnnxModel, size: number): PyramidLevel[] {
  return findPyramidLevels(student, { height: size, width: size });
}

/** Bit mask of a subset over `levels` (bit i: levels[i]); names match level names or outputs, any case. */
function subsetMask(levels: readonly PyramidLevel[], subset: readonly string[]): number {
  let mask = 0;
  for (const s of subset) {
    const i = levels.findIndex(
      (l) => l.name.toLowerCase() === s.toLowerCase() || l.output.toLowerCase() === s.toLowerCase(),
    );
    if (i < 0) {
      throw new RlpkdError(`bench subsets: '${s}' is not a pyramid level of the student`, {
        hint: `levels: ${levels.map((l) => `${l.name} (${l.output})`).join(', ')}`,
      });
    }
    mask |= 1 << i;
  }
  if (mask === 0) throw new RlpkdError('bench subsets: an empty subset', { hint: 'name at least one level' });
  return mask;
}

/**
 * The cost model's predicted share of the all-levels distillation step for each subset (see the module
 * doc), all levels first, then the subsets' distinct masks in mask order; every non-empty subset when
 * `subsets` is not given.
 */
export function predictSubsetShares(
  student: OnnxModel,
  size: number,
  subsets?: readonly (readonly string[])[],
): SubsetPrediction[] {
  const at = { height: size, width: size };
  const info = inferAtSize(student, at);
  const levels = findPyramidLevels(student, at, info);
  if (levels.length > 16)
    throw new RlpkdError(`bench subsets: ${levels.length} pyramid levels is more than 16`);
  const full = (1 << levels.length) - 1;
  const asked = subsets
    ? subsets.map((s) => subsetMask(levels, s))
    : Array.from({ length: full }, (_, i) => i + 1);
  const masks = [full, ...[...new Set(asked)].filter((m) => m !== full).sort((a, b) => a - b)];
  const predictions = masks.map((mask) => {
    const chosen = levels.filter((_, i) => (mask >> i) & 1);
    const { macs, elementOps, lossElements, work } = subsetWork(student, at, chosen, { info, levels });
    const names = chosen.map((l) => l.name);
    const name = names.join('+');
    return {
      name,
      levels: names,
      macs,
      elementOps,
      lossElements,
      work,
      predictedShare: 0,
      elementOpsShare: 0,
    };
  });
  const [total, totalOps] = [predictions[0].work, predictions[0].elementOps];
  return predictions.map((p) => ({
    ...p,
    predictedShare: total > 0 ? p.work / total : 0,
    elementOpsShare: totalOps > 0 ? p.elementOps / totalOps : 0,
  }));
}

/**
 * Ordinary least squares of medianMs on predictedShare: the intercept is the part of a step the cost
 * model does not see (fixed per step), the slope the part it predicts. Undefined when the shares do not
 * vary (one subset, or all equal).
 */
export function fitSubsetTimes(
  rows: readonly Pick<SubsetStepRow, 'predictedShare' | 'medianMs'>[],
): SubsetTimeFit | undefined {
  const n = rows.length;
  if (n < 2) return undefined;
  const mx = rows.reduce((a, r) => a + r.predictedShare, 0) / n;
  const my = rows.reduce((a, r) => a + r.medianMs, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const r of rows) {
    sxx += (r.predictedShare - mx) ** 2;
    sxy += (r.predictedShare - mx) * (r.medianMs - my);
  }
  if (sxx <= 1e-12) return undefined;
  const proportionalMs = sxy / sxx;
  return { fixedMs: my - proportionalMs * mx, proportionalMs };
}

/** Parses `all` or `P2+P3,P4` into subsets (undefined: every subset). */
export function parseSubsets(text: string | undefined): string[][] | undefined {
  if (text === undefined || text.trim() === '' || text.trim().toLowerCase() === 'all') return undefined;
  return text.split(',').map((s) => {
    const levels = s
      .split('+')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    if (levels.length === 0) {
      throw new RlpkdError(`bench subsets: an empty subset in '${text}'`, {
        hint: "write subsets as levels joined by '+', separated by ',' (e.g. P2+P3,P4+P5), or 'all'",
      });
    }
    return levels;
  });
}

/**
 * Times the student's distillation step on each level subset (see the module doc). Subsets run one after
 * another, each in a session of its own that is released before the next opens.
 */
export async function benchSubsetSteps(options: SubsetStepBenchOptions): Promise<SubsetStepBenchResult> {
  const batch = positive(options.batch ?? 2, 'batch');
  const size = positive(options.size ?? 224, 'size');
  const steps = positive(options.steps ?? 5, 'steps');
  const warmup = positive(options.warmup ?? 1, 'warmup', 0);
  const rounds = positive(options.rounds ?? 1, 'rounds');
  const ep = options.ep ?? 'cpu';
  const threads = options.threads ? { intraOpNumThreads: options.threads } : {};
  const source = typeof options.student === 'string' ? loadModel(options.student) : options.student;
  const teacherModel = typeof options.teacher === 'string' ? loadModel(options.teacher) : options.teacher;
  const predictions = predictSubsetShares(source, size, options.subsets);
  const levels = studentLevels(source, size);
  const input = imageInput(source, size, 'student');
  const teacherInput = imageInput(teacherModel, size, 'teacher');
  const allPairs = pairLevelsByName(
    teacherModel,
    source,
    levels.map((l) => l.output),
    size,
  );

  const rng = createRng('bench-subsets');
  const images: HostTensor = {
    data: Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()),
    dims: [batch, 3, size, size],
  };
  // The teacher's features for every level, once: no subset's time includes the teacher.
  const teacher = await createSession(teacherModel, { executionProvider: ep, ...threads, memArena: false });
  let features: Record<string, HostTensor>;
  const t0 = performance.now();
  try {
    features = await teacher.run(
      { [teacherInput.name]: images },
      allPairs.map((p) => p.teacher.output),
    );
  } finally {
    await teacher.release();
  }
  const teacherMs = performance.now() - t0;

  // The trainable set `rlpkd train` uses, on the untied student every subset is pruned from.
  const classified = classifyParameters(source);
  const trainableAll = classified.trainable.map((e) => e.name);
  // Each subset's artifacts once, into the cache (content-keyed: a rerun finds them).
  const root = path.join(options.cacheDir ?? defaultBenchCacheDir(), 'subsets');
  const subsets = predictions.map((prediction) => {
    const pairs = allPairs.filter((p) => prediction.levels.includes(p.name));
    const pruned = pruneToLevels(
      classified.model,
      pairs.map((p) => p.studentTensor),
    );
    const kept = new Set(pruned.graph.initializers.map((t) => t.name));
    const all = prediction.levels.length === levels.length;
    const dir = distillerArtifactsDir(root, all ? 'all' : prediction.levels);
    distillerArtifacts(
      {
        student: pruned,
        imageInput: input.name,
        pairs,
        loss: 'mse',
        trainable: trainableAll.filter((n) => kept.has(n)),
        optimizer: { type: 'adamw', lr: 1e-4, weightDecay: 1e-2 },
      },
      dir,
    );
    const feeds: Record<string, HostTensor> = {
      [input.name]: images,
      [DISTILL_IO.mask]: {
        data: new Float32Array(batch * pairs.length).fill(1),
        dims: [batch, pairs.length],
      },
      [DISTILL_IO.weights]: { data: new Float32Array(pairs.length).fill(1), dims: [pairs.length] },
    };
    for (const p of pairs) feeds[DISTILL_IO.teacher(p.name)] = features[p.teacher.output];
    return { prediction, dir, feeds, stepsMs: [] as number[], firstLoss: NaN, trainableParameters: 0 };
  });

  // Rounds go through every subset in turn, so a drift in machine load spreads over all of them.
  for (let round = 0; round < rounds; round++) {
    for (const subset of subsets) {
      const session = await TrainingSession.create({
        artifacts: subset.dir,
        executionProvider: ep,
        ...threads,
      });
      const times: number[] = [];
      try {
        subset.trainableParameters = session.getParametersSize();
        for (let i = 0; i < warmup + steps; i++) {
          const a = performance.now();
          const r = await session.fusedStep(subset.feeds);
          const ms = performance.now() - a;
          if (round === 0 && i === 0) subset.firstLoss = r.outputs[DISTILL_IO.loss].data[0] as number;
          if (i >= warmup) times.push(ms);
        }
      } finally {
        await session.release();
      }
      subset.stepsMs.push(...times);
      options.onSubset?.({ name: subset.prediction.name, round, medianMs: median(times) });
    }
  }

  // The all-levels step comes first: it is the reference of every share.
  const reference = median(subsets[0].stepsMs);
  const referenceMin = Math.min(...subsets[0].stepsMs);
  const rows = subsets.map(({ prediction, stepsMs, firstLoss, trainableParameters }): SubsetStepRow => {
    const medianMs = median(stepsMs);
    const measuredShare = medianMs / reference;
    const ratio = measuredShare / prediction.predictedShare;
    const minMs = Math.min(...stepsMs);
    return {
      ...prediction,
      medianMs,
      minMs,
      stepsMs,
      measuredShare,
      ratio,
      minShare: minMs / referenceMin,
      minRatio: minMs / referenceMin / prediction.predictedShare,
      withinTolerance: Math.abs(ratio - 1) <= SUBSET_TOLERANCE,
      trainableParameters,
      firstLoss,
    };
  });
  const fit = fitSubsetTimes(rows);
  return {
    rows,
    ...(fit ? { fit } : {}),
    teacherMs,
    tolerance: SUBSET_TOLERANCE,
    batch,
    size,
    executionProvider: resolveExecutionProvider(ep),
    threads: options.threads ?? 'default',
  };
}
