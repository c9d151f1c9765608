/**
 * Held-out measurements and the end-of-run summary: the all-level distillation loss (mean over held-out
 * images of Σ_l e[n, l] with the configured level distance), what the deterministic policy selects on each
 * held-out image (subset histogram, used cost; src/viz draws the levels × images heatmap), and the summary
 * table.
 */
import { formatDuration } from '../logging/logger';
import type { ImageBatchSource, ParallelDistillationEnv } from '../rl/distillation-env';
import type { PolicyNetwork } from '../rl/policy';
import { evaluatePolicy } from '../rl/rollout';
import { HEAD_LOSS_NAMES } from '../heads/head-loss';
import type { HostTensor } from '../runtime/tensors';
import type { LabelsOnlyBaseline } from './labels-only-baseline';
import type { StudentDistiller, TaughtBatch } from './student-distiller';
import { sequentialImageSource } from './image-stream';
import { drawRandomSubsets, randomSubsetDistribution } from './random-selection';
import { sliceLabels } from './labelled-images';
import type { DistillSetup } from './setup';

/** Held-out all-level distillation loss and its per-level parts (means over images). */
export interface HeldOutLoss {
  loss: number;
  levels: number[];
}

/** The held-out images in batches of data.batch_size, in order, unflipped, with their labels. */
function* heldOutBatches(setup: DistillSetup): Generator<TaughtBatch & { images: { dims: number[] } }> {
  const { images, hashes } = setup.heldOut;
  const [M, C, H, W] = images.dims;
  const per = C * H * W;
  const bs = setup.config.data.batch_size;
  for (let start = 0; start < M; start += bs) {
    const n = Math.min(bs, M - start);
    yield {
      images: { data: images.data.subarray(start * per, (start + n) * per), dims: [n, C, H, W] },
      hashes: hashes.slice(start, start + n),
      flipped: new Array<boolean>(n).fill(false),
      ...sliceLabels(setup.heldOut.labels, M, start, start + n),
    };
  }
}

/** All-level distillation loss of the held-out images (teacher features from the cache). */
export async function heldOutLoss(setup: DistillSetup, distiller: StudentDistiller): Promise<HeldOutLoss> {
  const M = setup.heldOut.images.dims[0];
  const L = setup.levelNames.length;
  const levels = new Array<number>(L).fill(0);
  for (const batch of heldOutBatches(setup)) {
    const n = batch.images.dims[0];
    const e = (await distiller.evaluate(batch)).distances;
    for (let i = 0; i < n; i++) for (let l = 0; l < L; l++) levels[l] += e[i * L + l];
  }
  const means = levels.map((x) => x / M);
  return { loss: means.reduce((a, b) => a + b, 0), levels: means };
}

/** Held-out task loss of the student's own head, and of the labels-only student's when there is one. */
export interface HeldOutTaskLoss {
  student: number;
  labelsOnly?: number;
}

/**
 * The task loss on the held-out labels of the student with its own head (task-loss runs; undefined
 * otherwise) and of the labels-only baseline: each batch's loss (the head loss's own batch reduction)
 * weighted by its size.
 */
export async function heldOutTaskLoss(
  setup: DistillSetup,
  distiller: StudentDistiller,
  baseline: LabelsOnlyBaseline | null,
): Promise<HeldOutTaskLoss | undefined> {
  if (!setup.task?.studentHead) return undefined;
  const M = setup.heldOut.images.dims[0];
  const L = setup.levelNames.length;
  let student = 0;
  let labelsOnly = 0;
  const taskLoss = (out: Record<string, HostTensor>) => (out[HEAD_LOSS_NAMES.loss].data as Float32Array)[0];
  for (const batch of heldOutBatches(setup)) {
    const n = batch.images.dims[0];
    const feeds = await distiller.stepFeeds(
      batch,
      new Float32Array(n * L).fill(1),
      new Float32Array(L).fill(1 / L),
    );
    student += n * taskLoss(await distiller.session.evalStep(feeds));
    if (baseline) labelsOnly += n * taskLoss(await baseline.session.evalStep(feeds));
  }
  return { student: student / M, ...(baseline ? { labelsOnly: labelsOnly / M } : {}) };
}

/** What the level selection does on the held-out images. */
export interface SelectionReport {
  /** Selected level names per held-out image (level order). */
  selections: string[][];
  /** Subset ('P3+P5') → number of images, most used first. */
  histogram: { subset: string; images: number; share: number }[];
  /** Mean Σ cost of the selected levels. */
  meanUsedCost: number;
  /** 'policy' (deterministic RL policy), 'fixed' (distill.selection all / a list) or 'random'. */
  source: 'policy' | 'fixed' | 'random';
  /** The policy's: each held-out image's budget (what it could afford caps what it selected). */
  budgets?: number[];
}

/** What heldOutSelection needs: the run setup, the policy (if any) and an environment factory. */
export interface SelectionEvalContext {
  setup: DistillSetup;
  policy: PolicyNetwork | null;
  /** Creates a level-selection environment over the given images (RunContext.createEnv). */
  createEnv(options: {
    images: ImageBatchSource;
    seed: string;
    numEnvs?: number;
  }): Promise<ParallelDistillationEnv>;
  seed(...parts: (string | number)[]): string;
}

/** The subsets chosen for each held-out image: the deterministic policy's, or the fixed selection. */
export async function heldOutSelection(ctx: SelectionEvalContext): Promise<SelectionReport> {
  const setup = ctx.setup;
  const M = setup.heldOut.images.dims[0];
  const order = (names: readonly string[]) => setup.levelNames.filter((n) => names.includes(n));
  let selections: string[][];
  let source: SelectionReport['source'];
  let budgets: number[] | undefined;
  if (setup.selection === 'rl' && ctx.policy) {
    const env = await ctx.createEnv({
      images: sequentialImageSource(setup.heldOut.images, setup.heldOut.hashes, setup.heldOut.labels),
      seed: ctx.seed('held-out-eval'),
      numEnvs: Math.min(M, setup.config.rl.environment.num_parallel_envs),
    });
    try {
      const r = await evaluatePolicy(ctx.policy, env, { numEpisodes: M, deterministic: true });
      selections = r.summaries.slice(0, M).map((s) => order(s.selectedLevels));
      budgets = r.summaries.slice(0, M).map((s) => s.budget);
    } finally {
      await env.close();
    }
    source = 'policy';
  } else if (setup.selection !== 'rl' && setup.selection.random) {
    const dist = randomSubsetDistribution(setup.costs, setup.selection.random.targetCost);
    selections = drawRandomSubsets(dist, M, ctx.seed('held-out-eval')).map((s) =>
      s.map((l) => setup.levelNames[l]),
    );
    source = 'random';
  } else {
    const fixed = setup.selection === 'rl' ? setup.levelNames : setup.selection.levels;
    selections = Array.from({ length: M }, () => [...fixed]);
    source = 'fixed';
  }
  const counts = new Map<string, number>();
  for (const s of selections) {
    const key = s.join('+') || '(none)';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const histogram = [...counts.entries()]
    .map(([subset, images]) => ({ subset, images, share: images / M }))
    .sort((a, b) => b.images - a.images || (a.subset < b.subset ? -1 : 1));
  const cost = (s: string[]) => s.reduce((a, n) => a + setup.costs[setup.levelNames.indexOf(n)], 0);
  const meanUsedCost = selections.reduce((a, s) => a + cost(s), 0) / M;
  return { selections, histogram, meanUsedCost, source, ...(budgets ? { budgets } : {}) };
}

/** The end-of-run summary. */
export interface TrainSummary {
  runDir: string;
  lossKind: string;
  heldOutImages: number;
  lossBefore: number;
  lossAfter: number;
  levelLossBefore: number[];
  levelLossAfter: number[];
  levelNames: string[];
  selection: SelectionReport;
  /** Seconds per phase (1..4). */
  phaseSeconds: number[];
  /** Final GradNorm weights (level order), when phase 3 used GradNorm. */
  gradnormWeights?: number[];
  /** Cost per level (level order; 1 = every level), for plots ordering images by the cost chosen. */
  levelCosts?: number[];
  /** Object size per held-out image (mean √area of its boxes; null without boxes), for plots. */
  heldOutObjectSizes?: (number | null)[];
  /** Task-loss runs: the held-out task loss of the student's own head before and after, and the baseline's. */
  taskLoss?: { before: number; after: number; labelsOnlyAfter?: number };
}

/** What plots of the summary need beyond the numbers: the level costs and the held-out object sizes. */
export function summaryPlotFields(
  setup: Pick<DistillSetup, 'costs' | 'heldOut'>,
): Pick<TrainSummary, 'levelCosts' | 'heldOutObjectSizes'> {
  const sizes = setup.heldOut.objectSizes;
  return {
    levelCosts: [...setup.costs],
    ...(sizes?.some((x) => x !== null) ? { heldOutObjectSizes: [...sizes] } : {}),
  };
}

/** The summary as a short text table. */
export function formatSummary(s: TrainSummary): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const num = (x: number) =>
    Math.abs(x) >= 1e4 || Math.abs(x) < 1e-3 ? x.toExponential(3) : x.toPrecision(4);
  const lines: string[] = [];
  lines.push(`run ${s.runDir}`);
  lines.push(
    `held-out all-level distillation loss (${s.lossKind}, ${s.heldOutImages} images): ${num(s.lossBefore)} -> ${num(s.lossAfter)} (${pct(s.lossAfter / s.lossBefore)} of start)`,
  );
  lines.push(
    `  per level: ${s.levelNames.map((n, l) => `${n} ${num(s.levelLossBefore[l])} -> ${num(s.levelLossAfter[l])}`).join(', ')}`,
  );
  if (s.taskLoss) {
    const t = s.taskLoss;
    lines.push(
      `held-out task loss, student's own head: ${num(t.before)} -> ${num(t.after)}` +
        (t.labelsOnlyAfter !== undefined ? `; labels-only baseline: ${num(t.labelsOnlyAfter)}` : ''),
    );
  }
  if (s.gradnormWeights) {
    lines.push(
      `GradNorm weights: ${s.levelNames.map((n, l) => `${n} ${s.gradnormWeights![l].toFixed(3)}`).join(', ')}`,
    );
  }
  const who = { policy: 'deterministic policy', fixed: 'fixed selection', random: 'random selection' }[
    s.selection.source
  ];
  lines.push(`level subsets on held-out images (${who}):`);
  const width = Math.max(6, ...s.selection.histogram.map((h) => h.subset.length));
  lines.push(`  ${'subset'.padEnd(width)}  images   share`);
  for (const h of s.selection.histogram) {
    lines.push(`  ${h.subset.padEnd(width)}  ${String(h.images).padStart(6)}  ${pct(h.share).padStart(6)}`);
  }
  lines.push(`mean used cost: ${s.selection.meanUsedCost.toFixed(3)} (1 = every level)`);
  const names = ['pretrain', 'policy', 'joint', 'meta'];
  lines.push(
    `time per phase: ${s.phaseSeconds.map((t, i) => `${i + 1} ${names[i]} ${formatDuration(t)}`).join(', ')}`,
  );
  return `${lines.join('\n')}\n`;
}
