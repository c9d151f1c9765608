/**
 * The student's distillation step: the frozen teacher's level features (own session; per-image entries of
 * the on-disk FeatureCache when the batch says which image files it holds), the student's training
 * artifacts over the masked, weighted per-level loss (mse, pkd or cwd), one fused engine step per batch,
 * and — when GradNorm runs — the per-level gradient norms at the shared parameter, measured on the same
 * parameters just before the step. Level weights come in as data, so uniform, fixed and GradNorm weights
 * use the same graph.
 */
import type { FeatureCache, FeatureSet } from '../data/feature-cache';
import { featureKey } from '../data/feature-cache';
import { RlpkdError } from '../errors';
import type { OnnxModel, ValueInfo } from '../onnx/types';
import type { GraphFile } from '../runtime/optimized-model';
import { createSession, type ExecutionProviderName, type GraphSession } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import { artifactModel, exportModelForInference, generateArtifacts } from '../training/artifacts';
import type { CheckpointState } from '../training/checkpoint';
import type { OptimizerConfig } from '../training/optimizers';
import { TrainingSession } from '../training/training-session';
import { buildDistillationModel, DISTILL_IO } from './distill-model';
import { GradNormProbe } from './gradnorm-probe';
import type { DistillLossKind } from '../training/level-distances';
import type { LevelPair } from './level-matching';

/** What the trainer needs. */
export interface DistillTrainerOptions {
  teacher: OnnxModel;
  /** Load the teacher session from this file (e.g. its onnxruntime-optimized form) instead of `teacher`. */
  teacherSession?: GraphFile;
  /** The student graph to train (shared initializers already untied, adapters already added). */
  student: OnnxModel;
  /** Student image input name. */
  imageInput: string;
  /** Teacher image input name. */
  teacherImageInput: string;
  pairs: readonly LevelPair[];
  loss: DistillLossKind;
  /** cwd temperature. */
  tau?: number;
  /** Trainable initializers of the student. */
  trainable: readonly string[];
  optimizer: OptimizerConfig;
  /** Clip the student gradient to this global norm. */
  maxGradNorm?: number;
  executionProvider?: ExecutionProviderName;
  /** Teacher feature cache: the cache, the teacher's hash and the preprocessing that keys entries. */
  featureCache?: { cache: FeatureCache; teacherHash: string; preprocess: Readonly<Record<string, unknown>> };
  /** Shared parameter W: enables per-level gradient-norm measurements (GradNorm). */
  sharedParameter?: string;
  /** Start from this state (parameters + optimizer). */
  checkpoint?: CheckpointState;
}

/** Images plus what identifies them for the feature cache (sha256 per image and flip flags). */
export interface ImageBatch {
  images: HostTensor;
  hashes?: readonly string[];
  flipped?: readonly boolean[];
}

/** What one student step did. */
export interface DistillStepResult {
  /** Σ_l w_l·L_l. */
  loss: number;
  /** L_l, masked and unweighted, in level order. */
  levelLosses: number[];
  /** [N, L] per-image unmasked distances e[n, l]. */
  perSample: Float32Array;
  /** Student gradient norm before clipping. */
  gradNorm: number;
  /** ‖∇_W L_l‖ per level (measured only when asked). */
  levelGradNorms?: number[];
}

/** Distils the teacher into the student (see module doc). */
export class DistillTrainer {
  readonly levelNames: string[];
  private constructor(
    readonly session: TrainingSession,
    private readonly teacher: GraphSession,
    private readonly probe: GradNormProbe | null,
    private readonly options: DistillTrainerOptions,
  ) {
    this.levelNames = options.pairs.map((p) => p.name);
  }

  /** Builds the loss graph and its artifacts, and opens the student, teacher and probe sessions. */
  static async create(options: DistillTrainerOptions): Promise<DistillTrainer> {
    const built = buildDistillationModel(options.student, options.pairs, {
      loss: options.loss,
      tau: options.tau,
      imageInput: options.imageInput,
    });
    const artifacts = generateArtifacts(built.model, {
      loss: {
        type: 'output',
        output: DISTILL_IO.loss,
        extraOutputs: [...built.levelLosses, DISTILL_IO.perSample],
      },
      optimizer: options.optimizer,
      trainable: [...options.trainable],
      untieSharedInitializers: false,
      fused: true,
      // GradNorm's ‖∇_W L_l‖ from the training step's own forward pass where the session can (host updates).
      ...(options.sharedParameter
        ? { levelGradientNorms: { losses: built.levelLosses, parameter: options.sharedParameter } }
        : {}),
    });
    const ep = options.executionProvider ? { executionProvider: options.executionProvider } : {};
    const session = await TrainingSession.create({
      artifacts,
      ...ep,
      ...(options.maxGradNorm !== undefined ? { maxGradNorm: options.maxGradNorm } : {}),
      ...(options.checkpoint ? { checkpoint: options.checkpoint } : {}),
    });
    const teacher = options.teacherSession
      ? await createSession(options.teacherSession.file, {
          ...ep,
          graphOptimizationLevel: options.teacherSession.graphOptimizationLevel,
        })
      : await createSession(options.teacher, ep);
    // Elsewhere (CUDA, the fused graph) a separate probe measures them, with a forward pass of its own.
    const probe =
      options.sharedParameter && !session.measuresLevelGradientNorms
        ? await GradNormProbe.create({
            model: artifactModel(artifacts, 'eval'),
            losses: built.levelLosses,
            parameter: options.sharedParameter,
            ...ep,
          })
        : null;
    return new DistillTrainer(session, teacher, probe, options);
  }

  get numLevels(): number {
    return this.levelNames.length;
  }

  /** Teacher features of a batch as the loss graph's teacher inputs; cached per image when possible. */
  async teacherFeatures(batch: ImageBatch): Promise<Record<string, HostTensor>> {
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

  /** One optimizer step on Σ_l w_l·L_l with the level mask; measures ‖∇_W L_l‖ first when asked. */
  async step(
    input: {
      images: HostTensor;
      teacher: Record<string, HostTensor>;
      mask: Float32Array;
      weights: Float32Array;
    },
    options: { measureGradNorms?: boolean } = {},
  ): Promise<DistillStepResult> {
    const feeds = this.feeds(input.images, input.teacher, input.mask, input.weights);
    let levelGradNorms: number[] | undefined;
    if (options.measureGradNorms) {
      if (!this.options.sharedParameter)
        throw new RlpkdError('distillation step: GradNorm measurements need a shared parameter');
      if (this.session.measuresLevelGradientNorms) {
        const r = await this.session.fusedStep(feeds, { levelGradientNorms: true });
        return { ...this.decode(r.outputs), gradNorm: r.gradNorm, levelGradNorms: r.levelGradientNorms! };
      }
      const probe = this.probe!;
      const m = await this.session.withParameterViews((params) => probe.run({ ...feeds, ...params }));
      levelGradNorms = m.gradNorms;
    }
    const r = await this.session.fusedStep(feeds);
    return { ...this.decode(r.outputs), gradNorm: r.gradNorm, ...(levelGradNorms ? { levelGradNorms } : {}) };
  }

  /** Per-image distances e[n, l] for every level ([N, L]) without training. */
  async evaluate(images: HostTensor, teacher: Record<string, HostTensor>): Promise<Float32Array> {
    const N = images.dims[0];
    const L = this.numLevels;
    const out = await this.session.evalStep(
      this.feeds(images, teacher, new Float32Array(N * L).fill(1), new Float32Array(L).fill(1 / L)),
    );
    return Float32Array.from(out[DISTILL_IO.perSample].data as Float32Array);
  }

  private decode(out: Record<string, HostTensor>): Omit<DistillStepResult, 'gradNorm'> {
    return {
      loss: (out[DISTILL_IO.loss].data as Float32Array)[0],
      levelLosses: this.levelNames.map((n) => (out[DISTILL_IO.levelLoss(n)].data as Float32Array)[0]),
      perSample: Float32Array.from(out[DISTILL_IO.perSample].data as Float32Array),
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
    const model = exportModelForInference(this.options.student, await this.session.getParameters(), {
      outputs: outputs.map((o) => o.name),
    });
    model.graph.outputs = outputs.map((o) => ({ ...o, ...(o.shape ? { shape: [...o.shape] } : {}) }));
    return model;
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.teacher.release();
    await this.probe?.release();
  }
}
