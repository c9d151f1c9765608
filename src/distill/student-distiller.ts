/**
 * The student's distillation step, built once per run and shared by everything that trains or measures
 * the student: phases 1 and 3 (`step`), the level-selection environment (`evaluate`, `trial`), the
 * held-out measurements and the benchmark (`bench train-step` times `step`). It owns
 * - its artifacts: the student plus the masked, weighted per-level loss (distill-model.ts) as training
 *   artifacts, cached in a folder named by the levels they cover (`distillerArtifactsDir`), so per-subset
 *   gradient graphs can live beside the all-levels ones;
 * - one TrainingSession (fused engine step; GradNorm's ‖∇_W L_l‖ from the step's own forward pass, or a
 *   probe where the session cannot), whose parameters every update changes;
 * - per level subset, a gradient graph pruned to those levels (subset-gradients.ts, built on first use):
 *   a step groups its images by selected subset, runs each group's graph on the session's parameters,
 *   adds the gradients in the session and takes one optimizer step, so a level nobody selected costs
 *   nothing (`updateGraph` decides which graph a group needs);
 * - one teacher source: a frozen teacher session plus, when configured, the on-disk FeatureCache (per
 *   image, keyed on the image hash and flip; the benchmark leaves it off to stay like-for-like);
 * - one level pairing (level order, finest first) for masks, weights and distances.
 * Level weights come in as data, so uniform, fixed and GradNorm weights use the same graph. With a task
 * head (`head`), the student also trains its own head on the labels in the same step (task-objective.ts),
 * and batches must carry their labels; with a `yardstick`, evaluations and trials also measure each image's
 * task loss through the teacher's frozen head (task-yardstick.ts).
 */
import * as path from 'node:path';
import type { FeatureCache, FeatureSet } from '../data/feature-cache';
import type { HeadModel } from '../heads/types';
import { HEAD_LOSS_NAMES } from '../heads/head-loss';
import { targetFeeds, type LabelledImages } from '../teach/task-feeds';
import { featureKey } from '../data/feature-cache';
import { RlpkdError } from '../errors';
import type { OnnxModel, ValueInfo } from '../onnx/types';
import { DataType } from '../onnx/types';
import { withoutWeightData, withWeightsRestored } from '../onnx/weight-data';
import type {
  Distiller,
  DistillerEvaluation,
  DistillerLevel,
  DistillerTrial,
  EvaluateOptions,
  ImageBatch,
} from '../rl/distiller';
import type { GraphFile } from '../runtime/optimized-model';
import { createSession, type ExecutionProviderName, type GraphSession } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import {
  artifactModel,
  exportModelForInference,
  generateArtifacts,
  loadArtifacts,
  type TrainingArtifacts,
} from '../training/artifacts';
import type { CheckpointState } from '../training/checkpoint';
import type { DistillLossKind } from '../training/level-distances';
import type { OptimizerConfig } from '../training/optimizers';
import { TrainingSession, type TrainingSnapshot } from '../training/training-session';
import { buildDistillationModel, DISTILL_IO } from './distill-model';
import { GradNormProbe } from './gradnorm-probe';
import type { LevelPair } from './level-matching';
import { appendTaskObjective, objectiveWeightFeeds, type ObjectiveWeights } from './task-objective';
import { gatherBlock, gatherRows, groupBySubset, type SubsetGroup } from './subset-groups';
import { SubsetGradientGraphs } from './subset-gradients';

export type { ImageBatch } from '../rl/distiller';

/** The graphs and what the loss is made of: all that shapes the artifacts. */
export interface DistillerGraphs {
  /** The student graph to train (shared initializers already untied, adapters already added). */
  student: OnnxModel;
  /** Student image input name. */
  imageInput: string;
  pairs: readonly LevelPair[];
  loss: DistillLossKind;
  /** cwd temperature. */
  tau?: number;
  /** Trainable initializers of the student. */
  trainable: readonly string[];
  optimizer: OptimizerConfig;
  /** Shared parameter W: enables per-level gradient-norm measurements (GradNorm). */
  sharedParameter?: string;
  /** The student's own task head, whose outputs the student graph computes: train on the task objective too. */
  head?: HeadModel;
}

/** Each image's task loss through a frozen head, from the student's level features (task-yardstick.ts). */
export interface Yardstick {
  /** Per-image losses [N] of a labelled batch, from its student features by level name. */
  measure(batch: TaughtBatch, features: Record<string, HostTensor>): Promise<Float64Array>;
  release(): Promise<void>;
}

/** What the distiller needs. */
export interface StudentDistillerOptions extends Omit<DistillerGraphs, 'student'> {
  /** The student graph; needed unless `artifacts` is given (and for exportStudent). */
  student?: OnnxModel;
  teacher?: OnnxModel;
  /** Load the teacher session from this file (e.g. its onnxruntime-optimized form) instead of `teacher`. */
  teacherSession?: GraphFile;
  /** Teacher image input name. */
  teacherImageInput: string;
  /** Prepared artifacts (or their folder) from `distillerArtifacts`; default: built here. */
  artifacts?: TrainingArtifacts | string;
  /** Cache folder for the artifacts built here (see distillerArtifactsDir). */
  artifactsDir?: string;
  /** Clip the student gradient to this global norm. */
  maxGradNorm?: number;
  executionProvider?: ExecutionProviderName;
  intraOpNumThreads?: number;
  /** Teacher feature cache: the cache, the teacher's hash and the preprocessing that keys entries. */
  featureCache?: { cache: FeatureCache; teacherHash: string; preprocess: Readonly<Record<string, unknown>> };
  /** Start from this state (parameters + optimizer). */
  checkpoint?: CheckpointState;
  /** Weights of the distillation and task terms when `head` is given (default 1 and 1). */
  objectiveWeights?: ObjectiveWeights;
  /** Measures the task yardstick in `evaluate` and `trial` (released with the distiller). */
  yardstick?: Yardstick;
  /**
   * 'pruned' (default): updates compute only what the selected levels need (see `step`); 'masked': every
   * update runs the all-levels graph with the mask in its loss (the reference the pruned route equals).
   */
  updates?: 'pruned' | 'masked';
  /**
   * The optimizer state a trial update starts from (TrialOptimizerState).
   */
  trialOptimizerState?: TrialOptimizerState;
  /**
   * Multiplies the learning rate of a trial update (default 1): a smaller step measures the first-order
   * effect of the selection rather than a full step's overshoot.
   */
  trialLrScale?: number;
}

/**
 * The optimizer state a trial update starts from: 'fresh' (default; the first step of a new optimizer),
 * 'current' (the run's moments, so the trial is the update a kept step would make now: with AdamW mostly
 * the run's momentum, the same whatever the image selected) or 'preconditioned' (the image's own gradient
 * scaled by the run's second moments, no momentum: what this image's selection does). With AdamW a fresh
 * first step moves every parameter by about lr, far more than a kept step does.
 */
export type TrialOptimizerState = 'fresh' | 'current' | 'preconditioned';

/** What one student step did. */
export interface DistillStepResult {
  /** Σ_l w_l·L_l. */
  loss: number;
  /** L_l, masked and unweighted, in level order. */
  levelLosses: number[];
  /** [N, L] per-image distances e[n, l]: every level on the 'full' route, NaN where an image's group did not compute it. */
  perSample: Float32Array;
  /** Student gradient norm before clipping. */
  gradNorm: number;
  /** ‖∇_W L_l‖ per level (measured only when asked). */
  levelGradNorms?: number[];
  /** The student's task loss on the labels (with a task head). */
  taskLoss?: number;
  /**
   * How the update was computed: 'full', the all-levels graph with the level mask in its loss (GradNorm's
   * measurements, or every image selecting every level); 'grouped', the images grouped by selected subset,
   * each group through the graph `updateGraph` picks, gradients accumulated, one optimizer step.
   */
  route: 'full' | 'grouped';
  /**
   * Per group: its levels ('all' for the all-levels graph), images and the ms of its graph run (forward and
   * backward; on the 'full' route the fused step, update included).
   */
  groups?: { levels: string[] | 'all'; images: number; ms: number }[];
}

/** A batch whose teacher features are already known (as the loss graph's teacher inputs), with its labels. */
export type TaughtBatch = ImageBatch & { teacher?: Record<string, HostTensor> } & Omit<
    LabelledImages,
    'images'
  >;

/** The artifacts folder for the levels a graph covers, under `root` (one folder per level subset). */
export function distillerArtifactsDir(root: string, levels: readonly string[] | 'all'): string {
  return path.join(root, levels === 'all' ? 'student-all-levels' : `student-levels-${levels.join('+')}`);
}

/**
 * The one build of the distillation step's artifacts: the student plus its loss (distill-model.ts) as
 * fused training artifacts over the trainable parameters; with GradNorm's W also the level-norm step.
 * `gradientsOnly` builds just the training graph's family without the fused step graphs (the per-subset
 * gradient graphs of subset-gradients.ts, whose gradients the all-levels session applies).
 */
export function distillerArtifacts(
  graphs: DistillerGraphs,
  outDir?: string,
  options: { gradientsOnly?: boolean } = {},
): TrainingArtifacts {
  const built = buildDistillationModel(graphs.student, graphs.pairs, {
    loss: graphs.loss,
    tau: graphs.tau,
    imageInput: graphs.imageInput,
  });
  const distillOutputs = [...built.levelLosses, DISTILL_IO.perSample];
  const objective = graphs.head
    ? appendTaskObjective(built.model, graphs.head, [DISTILL_IO.loss, ...distillOutputs])
    : null;
  return generateArtifacts(objective?.model ?? built.model, {
    loss: {
      type: 'output',
      output: objective?.loss ?? DISTILL_IO.loss,
      extraOutputs: objective?.extraOutputs ?? distillOutputs,
    },
    optimizer: graphs.optimizer,
    trainable: [...graphs.trainable],
    untieSharedInitializers: false,
    fused: !options.gradientsOnly,
    // GradNorm's ‖∇_W L_l‖ from the training step's own forward pass where the session can (host updates).
    ...(graphs.sharedParameter && !options.gradientsOnly
      ? { levelGradientNorms: { losses: built.levelLosses, parameter: graphs.sharedParameter } }
      : {}),
    ...(outDir ? { outDir } : {}),
  });
}

/** The student's distillation step (see module doc). */
export class StudentDistiller implements Distiller {
  readonly levelNames: string[];
  readonly levels: DistillerLevel[];
  /** Phase 2's copy of the student before each trial update (buffers reused from trial to trial). */
  private rollback: TrainingSnapshot | undefined;
  /** Eval graph plus the student's level tensors as outputs (opened on the first features request). */
  private featureSession: { key: string; session: Promise<GraphSession> } | null = null;
  /** Gradient graphs pruned to level subsets (absent when created from artifacts without the student). */
  private readonly subsets: SubsetGradientGraphs | null;
  /** Told the graph runs of every update, kept or trial (a run's timings). */
  onUpdate: ((groups: NonNullable<DistillStepResult['groups']>) => void) | undefined;

  private constructor(
    readonly session: TrainingSession,
    private readonly teacher: GraphSession,
    private readonly probe: GradNormProbe | null,
    private readonly options: Omit<StudentDistillerOptions, 'checkpoint' | 'artifacts'>,
  ) {
    const student = options.student;
    const root = options.artifactsDir ? path.dirname(options.artifactsDir) : undefined;
    this.subsets =
      student && options.updates !== 'masked'
        ? new SubsetGradientGraphs({
            student,
            imageInput: options.imageInput,
            pairs: options.pairs,
            loss: options.loss,
            ...(options.tau !== undefined ? { tau: options.tau } : {}),
            trainable: options.trainable,
            build: (graphs, levels) =>
              distillerArtifacts(graphs, root ? distillerArtifactsDir(root, levels) : undefined, {
                gradientsOnly: true,
              }),
            ...(options.executionProvider ? { executionProvider: options.executionProvider } : {}),
            ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
          })
        : null;
    this.levelNames = options.pairs.map((p) => p.name);
    this.levels = options.pairs.map((p) => ({
      name: p.name,
      stride: p.stride,
      channels: p.teacher.channels,
    }));
  }

  /** Builds (or finds cached) the artifacts, and opens the student, teacher and probe sessions. */
  static async create(options: StudentDistillerOptions): Promise<StudentDistiller> {
    let artifacts = options.artifacts;
    let start = options.checkpoint;
    if (!artifacts) {
      if (!options.student) throw new RlpkdError('StudentDistiller: pass the student graph or its artifacts');
      const built = distillerArtifacts({ ...options, student: options.student }, options.artifactsDir);
      if (built.dir && !built.cached) {
        // Written to the cache: the session reads the graphs from there, and the in-memory copies can go;
        // a fresh student starts from the initial checkpoint at hand rather than reading it back.
        start ??= built.checkpoint;
        artifacts = loadArtifacts(built.dir);
      } else {
        artifacts = built;
      }
    }
    const ep = options.executionProvider ? { executionProvider: options.executionProvider } : {};
    const threads = options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {};
    const session = await TrainingSession.create({
      artifacts,
      ...ep,
      ...threads,
      ...(options.maxGradNorm !== undefined ? { maxGradNorm: options.maxGradNorm } : {}),
      ...(start ? { checkpoint: start } : {}),
    });
    start = undefined; // the session copied it: nothing keeps the (model-sized) checkpoint alive
    // Its intermediates go back to the heap after each forward, for the student's step to reuse.
    const teacherSettings = { ...ep, ...threads, memArena: false };
    let teacher: GraphSession;
    try {
      if (options.teacherSession) {
        teacher = await createSession(options.teacherSession.file, {
          ...teacherSettings,
          graphOptimizationLevel: options.teacherSession.graphOptimizationLevel,
        });
      } else if (options.teacher) {
        teacher = await createSession(options.teacher, teacherSettings);
      } else {
        throw new RlpkdError('StudentDistiller: pass the teacher graph or its session file');
      }
    } catch (err) {
      await session.release();
      throw err;
    }
    const missing = options.pairs.filter((p) => !teacher.outputNames.includes(p.teacher.output));
    if (missing.length) {
      await Promise.all([teacher.release(), session.release()]);
      throw new RlpkdError(
        `the teacher has no output ${missing.map((p) => `'${p.teacher.output}'`).join(', ')}`,
        {
          hint: `its outputs: ${teacher.outputNames.join(', ')}; export both graphs with the same level names`,
        },
      );
    }
    // Elsewhere (CUDA, the fused graph) a separate probe measures GradNorm's norms, with a forward pass of its own.
    const probe =
      options.sharedParameter && !session.measuresLevelGradientNorms
        ? await GradNormProbe.create({
            model: artifactModel(session.artifacts, 'eval'),
            losses: options.pairs.map((p) => DISTILL_IO.levelLoss(p.name)),
            parameter: options.sharedParameter,
            ...ep,
          })
        : null;
    // Kept without the starting checkpoint and artifacts, which are model-sized and needed no longer, and
    // without the student's trained weights (the session holds them; exportStudent embeds its values).
    const { checkpoint: _checkpoint, artifacts: _artifacts, ...kept } = options;
    if (kept.head) kept.objectiveWeights ??= { distill: 1, task: 1 };
    if (kept.student) kept.student = studentStructure(kept.student, session);
    return new StudentDistiller(session, teacher, probe, kept);
  }

  get numLevels(): number {
    return this.levelNames.length;
  }

  /** Teacher features of a batch as the loss graph's teacher inputs; cached per image when possible. */
  async teacherFeatures(batch: TaughtBatch): Promise<Record<string, HostTensor>> {
    if (batch.teacher) return batch.teacher;
    const { images } = batch;
    const N = images.dims[0];
    const cache = this.options.featureCache;
    const pairs = this.options.pairs;
    if (!cache || !batch.hashes || batch.hashes.length !== N) return this.runTeacher(images);
    const keys = batch.hashes.map((h, i) =>
      featureKey({
        teacher: cache.teacherHash,
        image: h,
        preprocess: { ...cache.preprocess, flip: batch.flipped?.[i] ?? false },
      }),
    );
    const sets: (FeatureSet | undefined)[] = await Promise.all(keys.map((k) => cache.cache.get(k)));
    const missing = sets.flatMap((s, i) => (s ? [] : [i]));
    if (missing.length > 0) {
      const per = images.data.length / N;
      const sub = new Float32Array(missing.length * per);
      missing.forEach((i, j) =>
        sub.set((images.data as Float32Array).subarray(i * per, (i + 1) * per), j * per),
      );
      const computed = await this.runTeacher({ data: sub, dims: [missing.length, ...images.dims.slice(1)] });
      for (const [j, i] of missing.entries()) {
        const set: FeatureSet = {};
        for (const p of pairs) {
          const t = computed[DISTILL_IO.teacher(p.name)];
          const size = t.data.length / missing.length;
          set[p.name] = {
            data: (t.data as Float32Array).slice(j * size, (j + 1) * size),
            dims: t.dims.slice(1),
          };
        }
        sets[i] = set;
        await cache.cache.put(keys[i], set);
      }
    }
    const feeds: Record<string, HostTensor> = {};
    for (const p of pairs) {
      const first = sets[0]![p.name];
      const size = first.data.length;
      const data = new Float32Array(N * size);
      sets.forEach((s, i) => {
        const t = s![p.name];
        if (!t || t.data.length !== size) {
          throw new RlpkdError(`feature cache entry ${keys[i]} has no level ${p.name} of ${size} values`);
        }
        data.set(t.data, i * size);
      });
      feeds[DISTILL_IO.teacher(p.name)] = { data, dims: [N, ...first.dims] };
    }
    return feeds;
  }

  /** The batch with its teacher features attached (computed or read from the cache once). */
  async prepare(batch: TaughtBatch): Promise<TaughtBatch & { teacher: Record<string, HostTensor> }> {
    return { ...batch, teacher: await this.teacherFeatures(batch) };
  }

  private async runTeacher(images: HostTensor): Promise<Record<string, HostTensor>> {
    const pairs = this.options.pairs;
    const out = await this.teacher.run(
      { [this.options.teacherImageInput]: images },
      pairs.map((p) => p.teacher.output),
    );
    const feeds: Record<string, HostTensor> = {};
    for (const p of pairs) feeds[DISTILL_IO.teacher(p.name)] = out[p.teacher.output];
    return feeds;
  }

  /**
   * Everything the step and eval graphs take for a batch: images, teacher features, mask and level
   * weights, and with a task head the label targets and the objective's weights (default: the distiller's).
   */
  async stepFeeds(
    batch: TaughtBatch,
    mask: Float32Array,
    weights: Float32Array,
    objective?: ObjectiveWeights,
  ): Promise<Record<string, HostTensor>> {
    const feeds = this.feeds(batch.images, await this.teacherFeatures(batch), mask, weights);
    return { ...feeds, ...this.taskFeeds(batch, objective) };
  }

  /** The head loss's target feeds and the objective's weights; none without a task head. */
  private taskFeeds(batch: TaughtBatch, objective?: ObjectiveWeights): Record<string, HostTensor> {
    const head = this.options.head;
    if (!head) return {};
    return {
      ...targetFeeds(head, batch),
      ...objectiveWeightFeeds(objective ?? this.options.objectiveWeights!),
    };
  }

  private feeds(
    images: HostTensor,
    teacher: Record<string, HostTensor>,
    mask: Float32Array,
    weights: Float32Array,
  ): Record<string, HostTensor> {
    const N = images.dims[0];
    const L = this.numLevels;
    if (mask.length !== N * L)
      throw new RlpkdError(`distillation step: mask has ${mask.length} values, expected ${N}×${L}`);
    if (weights.length !== L)
      throw new RlpkdError(`distillation step: ${weights.length} level weights, expected ${L}`);
    return {
      [this.options.imageInput]: images,
      ...teacher,
      [DISTILL_IO.mask]: { data: mask, dims: [N, L] },
      [DISTILL_IO.weights]: { data: weights, dims: [L] },
    };
  }

  /**
   * One optimizer step on Σ_l w_l·L_l with the [N, L] level mask and [L] weights (level order); measures
   * ‖∇_W L_l‖ from the same parameters first when asked. The update computes only what the selected levels
   * need: the images are grouped by selected subset, each group runs the gradient graph `updateGraph`
   * picks for it, and the summed gradients make ONE optimizer update, equal (up to float32 rounding) to
   * the all-levels graph's with the mask in the loss. GradNorm's measurements and a batch where every
   * image selects every level use the all-levels graph's fused step as before.
   */
  async step(
    batch: TaughtBatch,
    mask: Float32Array,
    weights: Float32Array,
    options: { measureGradNorms?: boolean } = {},
  ): Promise<DistillStepResult> {
    const r = await this.update(batch, mask, weights, options);
    if (r.groups) this.onUpdate?.(r.groups);
    return r;
  }

  private async update(
    batch: TaughtBatch,
    mask: Float32Array,
    weights: Float32Array,
    options: { measureGradNorms?: boolean },
  ): Promise<DistillStepResult> {
    const teacher = await this.teacherFeatures(batch);
    const feeds = { ...this.feeds(batch.images, teacher, mask, weights), ...this.taskFeeds(batch) };
    const N = batch.images.dims[0];
    let levelGradNorms: number[] | undefined;
    if (options.measureGradNorms) {
      if (!this.options.sharedParameter)
        throw new RlpkdError('distillation step: GradNorm measurements need a shared parameter');
      if (this.session.measuresLevelGradientNorms) {
        const t0 = performance.now();
        const r = await this.session.fusedStep(feeds, { levelGradientNorms: true });
        return {
          ...this.decode(r.outputs),
          gradNorm: r.gradNorm,
          levelGradNorms: r.levelGradientNorms!,
          route: 'full',
          groups: [{ levels: 'all', images: N, ms: performance.now() - t0 }],
        };
      }
      const probe = this.probe!;
      const m = await this.session.withParameterViews((params) => probe.run({ ...feeds, ...params }));
      levelGradNorms = m.gradNorms;
    } else {
      const groups = groupBySubset(mask, N, this.numLevels);
      const onlyFull = groups.length > 0 && groups.every((g) => this.updateGraph(g.levels) === 'all');
      if (!onlyFull) return this.groupedStep(batch.images, teacher, mask, weights, groups);
    }
    const t0 = performance.now();
    const r = await this.session.fusedStep(feeds);
    return {
      ...this.decode(r.outputs),
      gradNorm: r.gradNorm,
      ...(levelGradNorms ? { levelGradNorms } : {}),
      route: 'full',
      groups: [{ levels: 'all', images: N, ms: performance.now() - t0 }],
    };
  }

  /**
   * Which graph computes the update of images that select `levels` (level indices): the gradient graph
   * pruned to them, or 'all' (the all-levels graph with the mask in its loss) when they are every level
   * or no pruned graphs can be built. The seam for losses that need more than the selected levels (a task
   * loss through every head level would answer 'all').
   */
  updateGraph(levels: readonly number[]): number[] | 'all' {
    // The task loss runs the head on every level it reads: only the all-levels graph has them.
    if (!this.subsets || this.options.head || levels.length === this.numLevels) return 'all';
    return [...levels];
  }

  /** The grouped route of `step` (see there). */
  private async groupedStep(
    images: HostTensor,
    teacher: Record<string, HostTensor>,
    mask: Float32Array,
    weights: Float32Array,
    groups: readonly SubsetGroup[],
  ): Promise<DistillStepResult> {
    const N = images.dims[0];
    const L = this.numLevels;
    const names = this.levelNames;
    // Groups the all-levels graph serves share one run (their own mask rows in its loss).
    const full: number[] = [];
    const pruned: { levels: number[]; rows: number[] }[] = [];
    for (const g of groups) {
      const graph = this.updateGraph(g.levels);
      if (graph === 'all') full.push(...g.rows);
      else pruned.push({ levels: graph, rows: g.rows });
    }
    full.sort((a, b) => a - b);
    const perSample = new Float32Array(N * L).fill(Number.NaN);
    const levelLosses = new Array<number>(L).fill(0);
    let loss = 0;
    const timings: NonNullable<DistillStepResult['groups']> = [];
    // Each group's loss is its share of the batch's: the loss averages over all N images.
    const scaled = (cols: readonly number[], n: number) =>
      Float32Array.from(cols, (l) => (weights[l] * n) / N);
    const collect = (out: Record<string, HostTensor>, rows: readonly number[], cols: readonly number[]) => {
      const n = rows.length;
      loss += (out[DISTILL_IO.loss].data as Float32Array)[0];
      const e = out[DISTILL_IO.perSample].data as Float32Array;
      cols.forEach((l, j) => {
        levelLosses[l] += ((out[DISTILL_IO.levelLoss(names[l])].data as Float32Array)[0] * n) / N;
        rows.forEach((r, i) => (perSample[r * L + l] = e[i * cols.length + j]));
      });
    };
    await this.session.lazyResetGrad();
    if (full.length > 0) {
      const all = names.map((_, l) => l);
      const t0 = performance.now();
      const rowTeacher: Record<string, HostTensor> = {};
      for (const [k, t] of Object.entries(teacher)) rowTeacher[k] = gatherRows(t, full);
      const out = await this.session.trainStep(
        this.feeds(
          gatherRows(images, full),
          rowTeacher,
          gatherBlock(mask, L, full, all),
          scaled(all, full.length),
        ),
      );
      collect(out, full, all);
      timings.push({ levels: 'all', images: full.length, ms: performance.now() - t0 });
    }
    for (const g of pruned) {
      const subset = g.levels.map((l) => names[l]);
      await this.subsets!.prepare(subset); // a first use builds the graph: not part of the step's time
      const t0 = performance.now();
      const n = g.rows.length;
      const feeds: Record<string, HostTensor> = {
        [this.options.imageInput]: gatherRows(images, g.rows),
        [DISTILL_IO.mask]: { data: gatherBlock(mask, L, g.rows, g.levels), dims: [n, g.levels.length] },
        [DISTILL_IO.weights]: { data: scaled(g.levels, n), dims: [g.levels.length] },
      };
      for (const name of subset) {
        const key = DISTILL_IO.teacher(name);
        feeds[key] = gatherRows(teacher[key], g.rows);
      }
      const subsets = this.subsets!;
      const r = await this.session.withParameterViews((params) => subsets.run(subset, feeds, params));
      await this.session.accumulateGradients(r.gradients);
      collect(r.outputs, g.rows, g.levels);
      timings.push({ levels: subset, images: n, ms: performance.now() - t0 });
    }
    // Nobody selected anything: zero gradients, and the update still decays as the masked loss's would.
    if (groups.length === 0) await this.session.accumulateGradients(new Map());
    const u = await this.session.optimizerStep();
    return { loss, levelLosses, perSample, gradNorm: u.gradNorm, route: 'grouped', groups: timings };
  }

  /**
   * Σ_l w_l·L_l and its gradient with respect to every trainable parameter (one vector in manifest order;
   * zeros where the loss does not reach), without an update: what a bi-level search (src/nas) needs.
   */
  async gradient(
    batch: TaughtBatch,
    mask: Float32Array,
    weights: Float32Array,
  ): Promise<Omit<DistillStepResult, 'gradNorm' | 'route'> & { gradient: Float32Array }> {
    const feeds = await this.stepFeeds(batch, mask, weights);
    await this.session.lazyResetGrad();
    const out = await this.session.trainStep(feeds);
    const grads = await this.session.getGradients();
    await this.session.lazyResetGrad();
    const gradient = new Float32Array(this.session.getParametersSize());
    let o = 0;
    for (const p of this.session.manifest.parameters) {
      const g = grads[p.name];
      const size = p.dims.reduce((a, b) => a * b, 1);
      if (g) gradient.set(g.data as Float32Array, o);
      o += size;
    }
    return { ...this.decode(out), gradient };
  }

  /** The loss outputs for a mask and weights, without training (the eval graph). */
  async losses(
    batch: TaughtBatch,
    mask: Float32Array,
    weights: Float32Array,
  ): Promise<Omit<DistillStepResult, 'gradNorm' | 'route'>> {
    const feeds = await this.stepFeeds(batch, mask, weights);
    return this.decode(await this.session.evalStep(feeds));
  }

  /**
   * Per-image distances e[n, l] for every level ([N, L]) without training; with `features`, also the
   * student's level tensors (by level name) the policy state pools, and with `tensors` those intermediate
   * student tensors (by their names: the deploy state's trunk tensors).
   */
  async evaluate(batch: TaughtBatch, options: EvaluateOptions = {}): Promise<DistillerEvaluation> {
    const N = batch.images.dims[0];
    const L = this.numLevels;
    const feeds = await this.stepFeeds(
      batch,
      new Float32Array(N * L).fill(1),
      new Float32Array(L).fill(1 / L),
    );
    const extra = options.tensors ?? [];
    const yardstick = this.options.yardstick;
    if (!options.features && extra.length === 0 && !yardstick) {
      const out = await this.session.evalStep(feeds);
      return { distances: Float32Array.from(out[DISTILL_IO.perSample].data as Float32Array) };
    }
    const session = await this.openFeatureSession(extra);
    const tensors = [...this.options.pairs.map((p) => p.studentTensor), ...extra];
    const out = await this.session.withParameterViews((params) =>
      session.run({ ...feeds, ...params }, [DISTILL_IO.perSample, ...tensors]),
    );
    const features: Record<string, HostTensor> = {};
    this.options.pairs.forEach((p) => (features[p.name] = out[p.studentTensor]));
    for (const t of extra) features[t] = out[t];
    const distances = Float32Array.from(out[DISTILL_IO.perSample].data as Float32Array);
    return {
      distances,
      features,
      ...(yardstick ? { yardstick: await yardstick.measure(batch, features) } : {}),
    };
  }

  /** The eval graph with the level tensors (and `extra` tensors) as outputs; one per set of extras. */
  private openFeatureSession(extra: readonly string[]): Promise<GraphSession> {
    const key = extra.join('\n');
    if (!this.featureSession || this.featureSession.key !== key) {
      const previous = this.featureSession?.session;
      const model = artifactModel(this.session.artifacts, 'eval');
      const known = new Set(model.graph.nodes.flatMap((n) => n.outputs));
      const missing = extra.filter((t) => !known.has(t));
      if (missing.length > 0) {
        throw new RlpkdError(
          `the student's training graph computes no tensor ${missing.map((t) => `'${t}'`).join(', ')}`,
          { hint: 'the deploy policy state pools trunk tensors by their names in the student graph' },
        );
      }
      const outputs: ValueInfo[] = [...this.options.pairs.map((p) => p.studentTensor), ...extra].map(
        (name) => ({ name, dataType: DataType.FLOAT }),
      );
      const withFeatures: OnnxModel = {
        ...model,
        graph: { ...model.graph, outputs: [...model.graph.outputs, ...outputs] },
      };
      const ep = this.options.executionProvider ? { executionProvider: this.options.executionProvider } : {};
      const session = (previous ? previous.then((s) => s.release()) : Promise.resolve()).then(() =>
        createSession(withFeatures, { ...ep, memArena: false }),
      );
      this.featureSession = { key, session };
    }
    return this.featureSession.session;
  }

  /**
   * A trial update that leaves no trace (the environment's phase 2): snapshot → fresh optimizer state (so
   * the update is an optimizer's first step and reflects this mask, not the momentum of past batches) →
   * one step → the distances after it → restore, bit for bit.
   */
  async trial(batch: TaughtBatch, mask: Float32Array, weights: Float32Array): Promise<DistillerTrial> {
    const taught = await this.prepare(batch);
    this.rollback = this.session.snapshot(this.rollback);
    try {
      const state = this.options.trialOptimizerState ?? 'fresh';
      const scale = this.options.trialLrScale ?? 1;
      // The run's next rate (a preconditioned trial restarts the step count, which a warm-up would read).
      if (state === 'preconditioned' || scale !== 1)
        this.session.overrideLearningRate(this.session.learningRate * scale);
      if (state === 'fresh') this.session.resetOptimizerState();
      else if (state === 'preconditioned') this.session.preconditionOptimizerState();
      const r = await this.step(taught, mask, weights);
      const after = await this.evaluate(taught);
      return {
        perSample: r.perSample,
        after: after.distances,
        ...(after.yardstick ? { afterYardstick: after.yardstick } : {}),
      };
    } finally {
      this.session.overrideLearningRate(undefined);
      await this.session.restore(this.rollback);
    }
  }

  private decode(out: Record<string, HostTensor>): Omit<DistillStepResult, 'gradNorm' | 'route'> {
    const task = out[HEAD_LOSS_NAMES.loss];
    return {
      loss: (out[DISTILL_IO.loss].data as Float32Array)[0],
      levelLosses: this.levelNames.map((n) => (out[DISTILL_IO.levelLoss(n)].data as Float32Array)[0]),
      perSample: Float32Array.from(out[DISTILL_IO.perSample].data as Float32Array),
      ...(task ? { taskLoss: (task.data as Float32Array)[0] } : {}),
    };
  }

  /** Parameters, optimizer state and step (copies). */
  checkpointState(): CheckpointState {
    return this.session.checkpointState();
  }

  async loadCheckpoint(state: CheckpointState): Promise<void> {
    await this.session.loadCheckpoint(state);
  }

  /** The student as a plain inference graph with the trained weights, pruned to `outputs` (adapters dropped). */
  async exportStudent(outputs: readonly ValueInfo[]): Promise<OnnxModel> {
    return this.studentModel(await this.session.getParameters(), outputs);
  }

  /**
   * Runs `fn` with the exported student and the training checkpoint as views of the session's storage
   * (no copies: writing a checkpoint then costs only its serialization); `fn` must not keep them.
   */
  withCheckpointViews<T>(
    outputs: readonly ValueInfo[],
    fn: (views: { student: OnnxModel; studentTrain: Readonly<CheckpointState> }) => Promise<T>,
  ): Promise<T> {
    return this.session.withCheckpointViews((studentTrain) =>
      fn({ student: this.studentModel(studentTrain.parameters, outputs), studentTrain }),
    );
  }

  /** The student graph with `params` embedded, pruned to `outputs` (e.g. its pyramid, or its head's outputs). */
  studentModel(params: Record<string, HostTensor>, outputs: readonly ValueInfo[]): OnnxModel {
    if (!this.options.student) throw new RlpkdError('StudentDistiller: created without the student graph');
    const model = withWeightsRestored(
      exportModelForInference(this.options.student, params, { outputs: outputs.map((o) => o.name) }),
    );
    model.graph.outputs = outputs.map((o) => ({ ...o, ...(o.shape ? { shape: [...o.shape] } : {}) }));
    return model;
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.teacher.release();
    await this.probe?.release();
    await this.options.yardstick?.release();
    await this.subsets?.release();
    if (this.featureSession) await (await this.featureSession.session).release();
    this.featureSession = null;
  }
}

/**
 * The student graph without the data of the parameters `session` trains: what exportStudent needs
 * (structure and frozen weights), since the session's values replace the rest (a ResNet-50's 0.1 GB).
 */
export function studentStructure(student: OnnxModel, session: TrainingSession): OnnxModel {
  return withoutWeightData(student, 0, new Set(session.manifest.parameters.map((p) => p.name)));
}
