/**
 * The four training phases (README, "What `npx rlpkd train` does"). Each runs from the run cursor, so
 * a resumed run continues mid-phase, and each is skipped when disabled or has 0 epochs.
 * 1 pretrain — every image distils the levels the selection allows (every level for `rl`) with uniform
 *   weights, over epochs of the training split.
 * 2 policy — RL policy learning with the student fixed: per PPO iteration, fresh episodes on training
 *   images, one batched trial update per episode batch that the environment measures and rolls back,
 *   then a PPO update. `rl` selection only.
 * 3 joint — the student is trained on the levels each image selects (the policy's sampled decisions for
 *   `rl`, reusing the rollout's images; the fixed mask otherwise) with GradNorm weights, and for `rl` the
 *   policy keeps learning from the same episodes.
 * 4 meta — first-order MAML of the policy across `maml.tasks` (λ, budget, dataset), then a fast
 *   adaptation to the run's own task. `rl` selection only.
 * Epochs of phases 2–4 are passes over as many episodes as the training split has images.
 */
import { RlpkdError } from '../errors';
import type { DistillationStepInfo, ParallelDistillationEnv } from '../rl/distillation-env';
import { collectRollout, resetEnv } from '../rl/rollout';
import type { VecEnv } from '../rl/vec-env';
import { heldOutLoss, heldOutTaskLoss } from './evaluation';
import { drawRandomSubsets, randomSubsetDistribution } from './random-selection';
import { TrainImageStream, type DrawnChunk } from './image-stream';
import { joinLabels, sliceLabels } from './labelled-images';
import type { RunContext } from './run-context';

/** Loader epoch / stream bases per phase, so every phase sees its own seeded orders. */
const EPOCH_BASE = { pretrain: 0, policy: 20000, joint: 30000, meta: 40000, adapt: 49000 } as const;

function epochsOf(ctx: RunContext, phase: 'pretrain' | 'policy' | 'joint' | 'meta'): number {
  const p = ctx.config.phases[phase];
  return p.enabled ? p.epochs : 0;
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** Held-out loss (and the GradNorm weights, when they exist), logged at every epoch end. */
async function logHeldOut(ctx: RunContext, tag: string): Promise<number> {
  const h = await heldOutLoss(ctx.setup, ctx.distiller);
  const values: Record<string, number> = { [`heldout/${tag}/loss`]: h.loss };
  const t = await heldOutTaskLoss(ctx.setup, ctx.distiller, ctx.baseline);
  if (t) values[`heldout/${tag}/task_loss`] = t.student;
  if (t?.labelsOnly !== undefined) values[`heldout/${tag}/labels_only_task_loss`] = t.labelsOnly;
  ctx.setup.levelNames.forEach((n, l) => (values[`heldout/${tag}/level_loss/${n}`] = h.levels[l]));
  const w = ctx.gradnorm?.weights;
  if (w) ctx.setup.levelNames.forEach((n, l) => (values[`gradnorm/weight/${n}`] = w[l]));
  ctx.logScalars(values, { force: true });
  return h.loss;
}

/** Phase 1: uniform distillation of the allowed levels (every level for rl and random selection). */
export async function runPretrain(ctx: RunContext): Promise<void> {
  const levels = ctx.setup.selection === 'rl' ? ctx.setup.levelNames : ctx.setup.selection.levels;
  await fixedSelectionEpochs(ctx, 'pretrain', (n) => ctx.fixedMask(n, levels));
}

/** Masks of a batch at a position of the run: [n, L], one row per image. */
type MaskSource = (n: number, ...position: number[]) => Float32Array;

/**
 * Phase 3's masks for a fixed or random selection: the fixed levels, or a random subset per image
 * (random-selection.ts) drawn from a seed of the position, so a resumed run draws the same subsets.
 */
function selectionMasks(ctx: RunContext): MaskSource {
  const sel = ctx.setup.selection;
  if (sel === 'rl') throw new RlpkdError('internal: rl selection has no fixed masks');
  if (!sel.random) return (n) => ctx.fixedMask(n, sel.levels);
  const dist = randomSubsetDistribution(ctx.setup.costs, sel.random.targetCost);
  const names = ctx.setup.levelNames;
  return (n, ...position) =>
    ctx.maskFromSelections(
      drawRandomSubsets(dist, n, ctx.seed('random-selection', ...position)).map((s) =>
        s.map((l) => names[l]),
      ),
    );
}

/**
 * The student loop with a fixed selection, phases 1 and 3 alike: epochs over the training split from the
 * run cursor, every image distilling the levels its mask selects — with GradNorm's weights in phase 3
 * when it is on, uniform ones in phase 1 — and the held-out loss logged at each epoch end.
 */
async function fixedSelectionEpochs(
  ctx: RunContext,
  phase: 'pretrain' | 'joint',
  masks: MaskSource,
): Promise<void> {
  const E = epochsOf(ctx, phase);
  const n = phase === 'pretrain' ? 1 : 3;
  const useGradNorm = phase === 'joint' && ctx.gradnorm !== null;
  const loader = ctx.setup.trainLoader;
  while (ctx.progress.epoch < E) {
    const epoch = ctx.progress.epoch;
    const bar = ctx.log.progress(
      `phase ${n} ${phase.padEnd(10)}epoch ${epoch + 1}/${E}`,
      loader.batchesPerEpoch,
      ctx.progress.unit,
    );
    try {
      for await (const batch of loader.epoch(EPOCH_BASE[phase] + epoch, ctx.progress.unit)) {
        const mask = masks(batch.records.length, epoch, batch.index);
        const r = await ctx.distillStep(batch, mask, useGradNorm);
        ctx.stepDone();
        ctx.unitDone(batch.index + 1);
        bar.update(batch.index + 1, { loss: r.loss });
        await ctx.stopIfInterrupted();
      }
    } finally {
      bar.stop();
    }
    await logEpochEnd(ctx, phase, epoch, E);
    await ctx.epochDone(epoch === E - 1);
  }
}

/** PPO iterations per epoch: as many episodes as training images. */
function iterationsPerEpoch(ctx: RunContext): number {
  const per = ctx.rolloutSteps(ctx.config.rl.environment.num_parallel_envs).episodes;
  return Math.max(1, Math.ceil(ctx.setup.splits.train.records.length / per));
}

/** One PPO iteration: fresh episodes from the stream, a rollout, a PPO update; logs the episode stats. */
async function policyIteration(ctx: RunContext, env: ParallelDistillationEnv) {
  const policy = await ctx.ensurePolicy();
  const training: VecEnv<DistillationStepInfo> = ctx.scaled(env);
  const start = await resetEnv(training);
  ctx.progress.fixLossReference(env.lossReference);
  const p = ctx.config.rl.ppo;
  const { nSteps } = ctx.rolloutSteps(env.numEnvs);
  const t0 = performance.now();
  const references = env.referenceTrials;
  const rollout = await collectRollout(policy, training, start, {
    nSteps,
    gamma: p.gamma,
    gaeLambda: p.gae_lambda,
    groupSize: env.episodesPerImage,
  });
  ctx.timings.recordEpisodes(performance.now() - t0, rollout.summaries.length);
  const stats = await ctx.ppoUpdate(rollout.episodes);
  const eps = rollout.summaries;
  // One batched trial update (rolled back) per episode batch, and the 'share' quality's all-level ones.
  ctx.progress.recordTrials(ctx.progress.phase, eps.length / env.numEnvs + env.referenceTrials - references);
  const subsets = new Set(eps.map((e) => e.selectedLevels.join('+')));
  ctx.logScalars(
    {
      'rl/reward': mean(eps.map((e) => e.reward)),
      'rl/quality_reward': mean(eps.map((e) => e.qualityReward)),
      'rl/efficiency_reward': mean(eps.map((e) => e.efficiencyReward)),
      'rl/used_cost': mean(eps.map((e) => e.usedCost)),
      'rl/distinct_subsets': subsets.size,
      'ppo/policy_loss': stats.policyLoss,
      'ppo/value_loss': stats.valueLoss,
      'ppo/entropy': stats.entropy,
      'ppo/clip_fraction': stats.clipFraction,
      'ppo/approx_kl': stats.approxKl,
      'ppo/explained_variance': stats.explainedVariance,
    },
    { force: true },
  );
  return {
    rollout,
    stats,
    selections: eps.map((e) => e.selectedLevels),
    reward: mean(eps.map((e) => e.reward)),
  };
}

/** Phase 2: RL policy learning with the student fixed. */
export async function runPolicyPhase(ctx: RunContext): Promise<void> {
  const E = epochsOf(ctx, 'policy');
  if (E === 0) return;
  if (ctx.setup.selection !== 'rl')
    throw new RlpkdError('internal: the policy phases need distill.selection rl');
  const stream = new TrainImageStream(
    ctx.setup.trainLoader,
    EPOCH_BASE.policy,
    ctx.progress.stream('policy'),
  );
  await runEnvEpochs(ctx, E, 'policy', stream, async (env) => {
    const it = await policyIteration(ctx, env);
    stream.clearDrawn();
    ctx.progress.setStream('policy', stream.cursor());
    ctx.stepDone();
    return { reward: it.reward, kl: it.stats.approxKl };
  });
}

/**
 * The epoch/iteration driver phases 2 and 3 share with RL selection: progress bar, resumable cursor,
 * interruption checks, and one environment over the run's distiller (so it always trials the current
 * student) whose budget draws are reseeded from the position each iteration (resumable; the same draws
 * as a fresh environment per iteration) and which, in phase 3, takes the GradNorm weights before each
 * iteration. `iteration` returns the figures the progress bar shows; `endOfEpoch` runs before the epoch
 * is recorded as done.
 */
async function runEnvEpochs(
  ctx: RunContext,
  E: number,
  phase: 'policy' | 'joint',
  stream: TrainImageStream,
  iteration: (env: ParallelDistillationEnv) => Promise<Record<string, number>>,
  endOfEpoch?: (epoch: number) => Promise<void>,
): Promise<void> {
  const iters = iterationsPerEpoch(ctx);
  const label = `phase ${phase === 'policy' ? 2 : 3} ${phase.padEnd(10)}`;
  let env: ParallelDistillationEnv | null = null;
  try {
    while (ctx.progress.epoch < E) {
      const epoch = ctx.progress.epoch;
      const bar = ctx.log.progress(`${label}epoch ${epoch + 1}/${E}`, iters, ctx.progress.unit);
      try {
        while (ctx.progress.unit < iters) {
          const unit = ctx.progress.unit;
          const seed = ctx.seed(phase, epoch, unit);
          env ??= await ctx.createEnv({
            images: stream,
            seed,
            ...(phase === 'policy' ? { episodesPerImage: ctx.config.rl.ppo.group_size } : {}),
          });
          env.reseed(seed);
          if (phase === 'joint') ctx.refreshEnv(env);
          const shown = await iteration(env);
          ctx.unitDone();
          bar.update(unit + 1, shown);
          await ctx.stopIfInterrupted();
        }
      } finally {
        bar.stop();
      }
      await endOfEpoch?.(epoch);
      await ctx.epochDone(epoch === E - 1);
    }
  } finally {
    await env?.close();
  }
}

/** Phase 3: joint fine-tuning of the student (GradNorm) and, for rl, the policy. */
export async function runJointPhase(ctx: RunContext): Promise<void> {
  const E = epochsOf(ctx, 'joint');
  if (E === 0) return;
  if (ctx.config.gradnorm.enabled) ctx.ensureGradNorm();
  if (ctx.gradnorm && ctx.progress.atPhaseStart) {
    const w = ctx.setup.sharedParameter!;
    ctx.log.info(`phase 3: GradNorm measures gradient norms at '${w.name}' (${w.how})`);
  }
  if (ctx.setup.selection === 'rl') await jointRl(ctx, E);
  else if (ctx.config.phases.joint.schedule === 'episodes') await jointEpisodeSchedule(ctx, E);
  else await fixedSelectionEpochs(ctx, 'joint', selectionMasks(ctx));
}

/**
 * Phase 3 of a fixed or random selection on an rl run's image schedule (`phases.joint.schedule:
 * episodes`): the same stream, iterations and batches as jointRl, so a comparison's methods get the same
 * student updates on the same images. It draws what a rollout draws — a chunk of num_parallel_envs images
 * at the reset and after each of its episode batches, the last one starting episodes nobody finishes —
 * without running episodes. The update accounts' digests check that the images match.
 */
async function jointEpisodeSchedule(ctx: RunContext, E: number): Promise<void> {
  const stream = new TrainImageStream(ctx.setup.trainLoader, EPOCH_BASE.joint, ctx.progress.stream('joint'));
  const N = ctx.config.rl.environment.num_parallel_envs;
  const batches = ctx.rolloutSteps(N).episodes / N;
  const masks = selectionMasks(ctx);
  const bs = ctx.config.data.batch_size;
  // The driver's environment is never stepped: this schedule only shares its epochs, cursor and Ctrl-C.
  const iteration = async (): Promise<Record<string, number>> => {
    const epoch = ctx.progress.epoch;
    const unit = ctx.progress.unit;
    for (let b = 0; b <= batches; b++) await stream.next(N);
    const images = joinChunks(stream.takeDrawn().slice(0, batches));
    const n = images.hashes.length;
    const mask = masks(n, epoch, unit);
    const L = ctx.L;
    let loss = 0;
    for (let start = 0; start < n; start += bs) {
      const end = Math.min(start + bs, n);
      const r = await ctx.distillStep(
        sliceChunk(images, start, end),
        mask.subarray(start * L, end * L),
        ctx.gradnorm !== null,
      );
      loss = r.loss;
      ctx.stepDone();
    }
    ctx.progress.setStream('joint', stream.cursor());
    return { loss };
  };
  await runEnvEpochs(ctx, E, 'joint', stream, iteration, (epoch) => logEpochEnd(ctx, 'joint', epoch, E));
}

async function jointRl(ctx: RunContext, E: number): Promise<void> {
  const stream = new TrainImageStream(ctx.setup.trainLoader, EPOCH_BASE.joint, ctx.progress.stream('joint'));
  const N = ctx.config.rl.environment.num_parallel_envs;
  const iteration = async (env: ParallelDistillationEnv): Promise<Record<string, number>> => {
    const it = await policyIteration(ctx, env);
    // Episode batch b used chunk b of the stream; the last chunk started episodes nobody finished.
    // The student then trains on those images, each on the levels it selected, in batches of
    // data.batch_size (the same step as phases 1 and 3 with a fixed selection).
    const chunks = stream.takeDrawn();
    const batches = it.selections.length / N;
    if (chunks.length < batches) throw new RlpkdError('internal: fewer image chunks than episode batches');
    const images = joinChunks(chunks.slice(0, batches));
    const bs = ctx.config.data.batch_size;
    let loss = 0;
    for (let start = 0; start < it.selections.length; start += bs) {
      const end = Math.min(start + bs, it.selections.length);
      const mask = ctx.maskFromSelections(it.selections.slice(start, end));
      const r = await ctx.distillStep(sliceChunk(images, start, end), mask, ctx.gradnorm !== null);
      loss = r.loss;
      ctx.stepDone();
    }
    ctx.progress.setStream('joint', stream.cursor());
    return { reward: it.reward, loss };
  };
  await runEnvEpochs(ctx, E, 'joint', stream, iteration, (epoch) => logEpochEnd(ctx, 'joint', epoch, E));
}

/** Phase 1's and 3's end-of-epoch line: the held-out all-level loss (also logged as a metric). */
async function logEpochEnd(
  ctx: RunContext,
  phase: 'pretrain' | 'joint',
  epoch: number,
  E: number,
): Promise<void> {
  const loss = await logHeldOut(ctx, phase);
  const n = phase === 'pretrain' ? 1 : 3;
  ctx.log.info(`phase ${n} epoch ${epoch + 1}/${E}: held-out all-level loss ${loss.toPrecision(5)}`);
}

/** The chunks as one batch of images (with their hashes and flips). */
function joinChunks(chunks: readonly DrawnChunk[]): DrawnChunk {
  const [, C, H, W] = chunks[0].images.dims;
  const n = chunks.reduce((a, c) => a + c.images.dims[0], 0);
  const data = new Float32Array(n * C * H * W);
  let o = 0;
  for (const c of chunks) {
    data.set(c.images.data, o);
    o += c.images.data.length;
  }
  return {
    images: { data, dims: [n, C, H, W] },
    hashes: chunks.flatMap((c) => c.hashes),
    flipped: chunks.flatMap((c) => c.flipped),
    ...joinLabels(chunks),
  };
}

/** Images [start, end) of a chunk. */
function sliceChunk(chunk: DrawnChunk, start: number, end: number): DrawnChunk {
  const [, C, H, W] = chunk.images.dims;
  const per = C * H * W;
  return {
    images: { data: chunk.images.data.subarray(start * per, end * per), dims: [end - start, C, H, W] },
    hashes: chunk.hashes.slice(start, end),
    flipped: chunk.flipped.slice(start, end),
    ...sliceLabels(chunk, chunk.images.dims[0], start, end),
  };
}

/** Phase 4: MAML across the configured tasks, then fast adaptation to the run's own task. */
export async function runMetaPhase(ctx: RunContext): Promise<void> {
  const E = epochsOf(ctx, 'meta');
  if (E === 0) return;
  if (ctx.setup.selection !== 'rl')
    throw new RlpkdError('internal: the policy phases need distill.selection rl');
  const m = ctx.config.maml;
  const tasks = m.tasks;
  const perUpdate = tasks.length * (m.support_episodes + m.query_episodes);
  const updates = Math.max(1, Math.ceil(ctx.setup.splits.train.records.length / perUpdate));
  const streamName = (t: number) => `meta.${tasks[t].name}`;
  const maml = await ctx.mamlTrainer();
  while (ctx.progress.epoch < E) {
    const epoch = ctx.progress.epoch;
    // Ctrl-C inside an epoch saves the epoch's starting point (see run-context). Phase 4 leaves the
    // student as it is (its trial updates are undone), so the live student is the start's.
    ctx.setInterruptSnapshot(ctx.checkpointParts());
    const envs: VecEnv[] = [];
    const inner: ParallelDistillationEnv[] = [];
    const streams: TrainImageStream[] = [];
    const bar = ctx.log.progress(`phase 4 meta      epoch ${epoch + 1}/${E}`, updates);
    try {
      for (const [t, task] of tasks.entries()) {
        const loader = ctx.setup.taskLoaders[task.name] ?? ctx.setup.trainLoader;
        const stream = new TrainImageStream(
          loader,
          EPOCH_BASE.meta + 1000 * t,
          ctx.progress.stream(streamName(t)),
        );
        streams.push(stream);
        const env = await ctx.createEnv({
          images: stream,
          seed: ctx.seed('meta', task.name, epoch),
          ...(task.lambda_tradeoff !== undefined ? { lambda: task.lambda_tradeoff } : {}),
          ...(task.budget !== undefined ? { budget: task.budget } : {}),
        });
        inner.push(env);
        envs.push(ctx.scaled(env));
      }
      for (let k = 0; k < updates; k++) {
        const s = await maml.metaUpdate(envs);
        ctx.logScalars(
          {
            'meta/pre_adapt_reward': s.preAdaptReward,
            'meta/post_adapt_reward': s.postAdaptReward,
            'meta/query_loss': s.queryLoss,
            'meta/grad_norm': s.gradNorm,
          },
          { force: true },
        );
        ctx.stepDone();
        bar.update(k + 1, { post: s.postAdaptReward });
        await ctx.stopIfInterrupted();
      }
    } finally {
      bar.stop();
      for (const e of inner) await e.close();
    }
    streams.forEach((s, t) => ctx.progress.setStream(streamName(t), s.cursor()));
    ctx.clearInterruptSnapshot();
    await ctx.epochDone(epoch === E - 1);
  }
  await adaptToRunTask(ctx);
}

/** Fast adaptation (maml.inner_steps SGD steps) of the meta-learned policy to the run's own task. */
async function adaptToRunTask(ctx: RunContext): Promise<void> {
  const policy = await ctx.ensurePolicy();
  ctx.keepMetaPolicy(policy);
  const m = ctx.config.maml;
  const stream = new TrainImageStream(ctx.setup.trainLoader, EPOCH_BASE.adapt, ctx.progress.stream('adapt'));
  const env = await ctx.createEnv({ images: stream, seed: ctx.seed('adapt') });
  try {
    await (
      await ctx.mamlTrainer()
    ).fastAdapt(ctx.scaled(env), {
      steps: m.inner_steps,
      episodes: m.support_episodes,
      apply: true,
    });
  } finally {
    await env.close();
  }
  ctx.progress.setStream('adapt', stream.cursor());
  ctx.log.info(`phase 4: adapted the meta-learned policy to this run's task (${m.inner_steps} steps)`);
}
