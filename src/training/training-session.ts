/**
 * TrainingSession: the API of onnxruntime's removed JS TrainingSession (trainStep, evalStep,
 * optimizerStep, lazyResetGrad, parameters in/out, checkpoints, exportModelForInference) on ordinary
 * inference sessions running the standard-op artifacts. Three layers, each its own module:
 * - this class: the API, input feeds, one call at a time, the onnxruntime sessions of the graphs;
 * - ParameterStore (parameter-store.ts): parameters, optimizer state and gradients in flat Float32Array
 *   blocks, fed to every run without copies (CPU inputs are wrapped), snapshots and checkpoints;
 * - an UpdateStrategy chosen once at creation: host updates after the gradient step graph
 *   (host-update-strategy.ts) or the fused and optimizer graphs (graph-update-strategy.ts).
 * Which onnxruntime runs the graphs is runtime/'s choice (choose-runtime.ts).
 */
import { RlpkdError } from '../errors';
import { modelToBytes, saveModel } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import {
  openGraphSession,
  resolveDevice,
  type RunnableGraph,
  type RuntimeChoice,
  type TrainingRuntime,
} from '../runtime/choose-runtime';
import { collectGarbage, type ExecutionProviderName } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import {
  artifactGraphs,
  artifactModel,
  artifactPath,
  exportModelForInference,
  loadArtifacts,
  readCheckpoint,
  type ArtifactGraph,
  type ArtifactGraphs,
  type ArtifactManifest,
  type TrainingArtifacts,
} from './artifacts';
import { loadCheckpoint, saveCheckpoint, type CheckpointState } from './checkpoint';
import { GraphUpdateStrategy } from './graph-update-strategy';
import { HostUpdateStrategy } from './host-update-strategy';
import { createLrSchedule, type LrSchedule, type LrScheduleConfig } from './lr-schedules';
import { ParameterStore, parameterGroups, type TrainingSnapshot } from './parameter-store';
import { float32Data } from './tensor-checks';
import {
  GC_THRESHOLD_BYTES,
  hostUpdateMemory,
  pickStepOutputs,
  type StepEnvironment,
  type UpdateStrategy,
} from './update-strategy';

export type { RunnableGraph, TrainingRuntime } from '../runtime/choose-runtime';
export type { TrainingSnapshot } from './parameter-store';

export interface TrainingSessionOptions {
  /** Artifacts from generateArtifacts, or the folder they were written to. */
  artifacts: TrainingArtifacts | string;
  /** onnxruntime-node provider (default cpu); 'cuda' without the CUDA provider is an error, never a fallback. */
  executionProvider?: ExecutionProviderName;
  /** Default 'node'. 'web' runs the same graphs on onnxruntime-web's wasm backend. */
  runtime?: TrainingRuntime;
  /** Start from this checkpoint instead of the artifacts' initial one. */
  checkpoint?: CheckpointState | string;
  /** Learning-rate schedule over optimizer steps (default constant). */
  lrSchedule?: LrScheduleConfig;
  /** Base learning rate (default: the optimizer configuration's lr). */
  learningRate?: number;
  /** Clip gradients to this global 2-norm before each update (PyTorch clip_grad_norm_); default off. */
  maxGradNorm?: number;
  intraOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Updates parameters and optimizer state on the host with WebAssembly SIMD kernels, in place,
   * bit-identical to the update graphs: optimizerStep runs them instead of the optimizer graph, and
   * fusedStep runs a graph that only computes the gradients (when the artifacts have it) before them. Default:
   * on for onnxruntime-node on the CPU (where elementwise update ops and onnxruntime-node's copy of every
   * updated output cost more than the update itself), off for CUDA (where each run's transfers dominate
   * and the fused graph keeps everything on the device) and for the wasm runtime. Models too large for one
   * WebAssembly memory (over ~250 M parameters with AdamW) use the fused graph.
   */
  optimizerOnHost?: boolean;
  /**
   * onnxruntime's CPU memory arena for the sessions (default off: a training run's intermediates then go
   * back to the C heap when it ends, where the output copies onnxruntime-node makes right after reuse
   * them; with the arena they come on top of the arena's high-water mark, ~300 MB more for a ResNet-50).
   */
  memArena?: boolean;
}

/** What an optimizer update did. */
export interface OptimizerStepResult {
  /** The update's 1-based index. */
  step: number;
  learningRate: number;
  /** Global 2-norm of the gradients before clipping. */
  gradNorm: number;
}

/** Loss outputs of a fused step plus what its update did. */
export interface FusedStepResult extends OptimizerStepResult {
  outputs: Record<string, HostTensor>;
  /** ‖∇_W L_l‖ per listed loss, before the update (when asked for; see measuresLevelGradientNorms). */
  levelGradientNorms?: number[];
}

/** The options a session keeps once created. */
type SessionSettings = Omit<TrainingSessionOptions, 'artifacts' | 'checkpoint'>;

/**
 * Trains the parameters of a set of artifacts with onnxruntime inference sessions (see the module doc for
 * its layers).
 */
export class TrainingSession {
  private readonly sessions = new Map<ArtifactGraph, Promise<RunnableGraph>>();
  private readonly store: ParameterStore;
  private readonly strategy: UpdateStrategy;
  private readonly schedule: LrSchedule;
  /** Set during a trial update at a rate of its own (overrideLearningRate). */
  private lrOverride: number | undefined;
  private readonly runtime: RuntimeChoice;
  private busy = false;

  private constructor(
    /**
     * The artifacts' graphs. Not their initial checkpoint: the session copies that into its own storage
     * once, and holding it would keep a model-sized copy (and its optimizer state) alive for nothing.
     */
    readonly artifacts: ArtifactGraphs,
    private readonly options: SessionSettings,
  ) {
    const m = artifacts.manifest;
    if (options.maxGradNorm !== undefined && !(options.maxGradNorm > 0)) {
      throw new RlpkdError(`maxGradNorm must be > 0, got ${options.maxGradNorm}`);
    }
    this.runtime = {
      runtime: options.runtime ?? 'node',
      executionProvider: options.executionProvider ?? 'cpu',
      memArena: options.memArena ?? false,
      ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
      ...(options.graphOptimizationLevel ? { graphOptimizationLevel: options.graphOptimizationLevel } : {}),
    };
    const elements = parameterGroups(m).reduce((n, g) => n + g.size, 0);
    const memory = hostUpdateMemory(m, elements, {
      ...(options.optimizerOnHost !== undefined ? { requested: options.optimizerOnHost } : {}),
      device: () => resolveDevice(this.runtime),
    });
    this.store = new ParameterStore(m, memory);
    const env: StepEnvironment = {
      manifest: m,
      store: this.store,
      graph: (name) => this.session(name),
      feeds: (session, user, extra, what) => this.feeds(session, user, extra, what),
    };
    const has = (graph: ArtifactGraph): boolean => Boolean(m.files[graph] ?? artifacts.models[graph]);
    this.strategy = memory ? new HostUpdateStrategy(env, memory, has) : new GraphUpdateStrategy(env);
    this.schedule = createLrSchedule(
      options.lrSchedule ?? { type: 'constant' },
      options.learningRate ?? m.optimizer.lr,
    );
  }

  /** Opens artifacts (in memory or a folder), loads the starting checkpoint and the training graph. */
  static async create(options: TrainingSessionOptions): Promise<TrainingSession> {
    const artifacts =
      typeof options.artifacts === 'string' ? loadArtifacts(options.artifacts) : options.artifacts;
    // Neither the artifacts nor the starting checkpoint are kept beyond this call (see the constructor).
    const { artifacts: _artifacts, checkpoint: _checkpoint, ...settings } = options;
    const s = new TrainingSession(artifactGraphs(artifacts), settings);
    const start =
      typeof options.checkpoint === 'string'
        ? { state: loadCheckpoint(options.checkpoint), what: `checkpoint '${options.checkpoint}'` }
        : { state: options.checkpoint ?? readCheckpoint(artifacts), what: 'the checkpoint' };
    s.store.applyCheckpoint(start.state, start.what);
    await s.session('training'); // fail early on provider or graph problems
    return s;
  }

  /** The manifest: parameter names and shapes, inputs, loss outputs, optimizer settings. */
  get manifest(): ArtifactManifest {
    return this.artifacts.manifest;
  }

  /** Optimizer updates taken so far. */
  get step(): number {
    return this.store.step;
  }

  /** Trainable parameter names in feed order. */
  get parameterNames(): string[] {
    return this.manifest.parameters.map((p) => p.name);
  }

  /** Inputs trainStep/fusedStep expect (data, targets, teacher features, mask, weights). */
  get trainingInputNames(): string[] {
    return this.manifest.inputs.map((v) => v.name);
  }

  /** Inputs evalStep expects. */
  get evalInputNames(): string[] {
    return this.manifest.evalInputs.map((v) => v.name);
  }

  /** Outputs train/eval/fused steps return (loss first). */
  get stepOutputNames(): string[] {
    return [...this.manifest.stepOutputs];
  }

  /** Learning rate the next optimizer step will use. */
  get learningRate(): number {
    return this.lrOverride ?? this.schedule(this.store.step + 1);
  }

  /**
   * Makes every update use `lr` instead of the schedule's rate until cleared with undefined (a trial update
   * between snapshot and restore, at a rate of its own).
   */
  overrideLearningRate(lr: number | undefined): void {
    if (lr !== undefined && !(lr > 0 && Number.isFinite(lr)))
      throw new RlpkdError(`overrideLearningRate: the learning rate must be a positive number, got ${lr}`);
    this.lrOverride = lr;
  }

  /**
   * True when fusedStep can also return ‖∇_W L_l‖ per level loss from the step's own forward pass: the
   * artifacts were generated with levelGradientNorms and the step updates on the host.
   */
  get measuresLevelGradientNorms(): boolean {
    return this.strategy.measuresLevelGradientNorms;
  }

  /** Where fusedStep updates: 'host' (gradient graph + WebAssembly kernels) or 'graph' (fused graph). */
  get updateLocation(): 'host' | 'graph' {
    return this.strategy.fusedStepLocation;
  }

  private session(graph: ArtifactGraph): Promise<RunnableGraph> {
    let s = this.sessions.get(graph);
    if (!s) {
      const source: string | Uint8Array =
        artifactPath(this.artifacts, graph) ?? modelToBytes(artifactModel(this.artifacts, graph));
      s = openGraphSession(source, this.runtime);
      this.sessions.set(graph, s);
      s.catch(() => this.sessions.delete(graph));
    }
    return s;
  }

  private assertIdle(what: string): void {
    if (this.busy) {
      throw new RlpkdError(`TrainingSession.${what}: another step is still running`, {
        hint: 'await each trainStep/evalStep/optimizerStep/fusedStep before starting the next call',
      });
    }
  }

  private async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.assertIdle(what);
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  /** Feeds for one run: the user's data plus every parameter and extra tensor the session reads. */
  private feeds(
    session: RunnableGraph,
    user: Record<string, HostTensor>,
    extra: Record<string, HostTensor>,
    what: string,
  ): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = {};
    const missing: string[] = [];
    for (const name of Object.keys(user)) {
      if (this.store.has(name)) {
        throw new RlpkdError(`${what}: '${name}' is a trainable parameter, not a data input`, {
          hint: 'change parameters with loadParameters()',
        });
      }
    }
    for (const name of session.inputNames) {
      const p = this.store.parameterTensor(name);
      if (p) feeds[name] = p;
      else if (extra[name]) feeds[name] = extra[name];
      else if (user[name]) feeds[name] = user[name];
      else missing.push(name);
    }
    if (missing.length) {
      throw new RlpkdError(`${what}: missing inputs ${missing.map((m) => `'${m}'`).join(', ')}`, {
        hint: `the graph reads ${this.manifest.inputs.map((v) => `'${v.name}'`).join(', ')}`,
      });
    }
    return feeds;
  }

  /** Runs the training graph and adds its gradients to the accumulated ones; returns the loss outputs. */
  trainStep(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    return this.exclusive('trainStep', async () => {
      const session = await this.session('training');
      const gradOutputs = Object.entries(this.manifest.gradients);
      const fetches = [...this.manifest.stepOutputs, ...gradOutputs.map(([, o]) => o)];
      // Collect the previous runs' output copies before this run allocates (see runUpdating).
      if (this.store.gradientBytes >= GC_THRESHOLD_BYTES) collectGarbage();
      const out = await session.run(this.feeds(session, feeds, {}, 'trainStep'), fetches);
      const grads = new Map<string, Float32Array>();
      for (const [param, name] of gradOutputs) grads.set(param, float32Data(out[name], `gradient '${name}'`));
      this.store.accumulateGradients(grads);
      return pickStepOutputs(this.manifest, out);
    });
  }

  /**
   * Adds gradients computed elsewhere (e.g. by a graph pruned to some pyramid levels, over a subset of
   * these parameters, fed withParameterViews) to the accumulated ones, as trainStep adds its own; after
   * lazyResetGrad, parameters without a gradient here count as zero. optimizerStep then updates from them.
   */
  async accumulateGradients(grads: ReadonlyMap<string, Float32Array>): Promise<void> {
    this.assertIdle('accumulateGradients');
    this.store.accumulateGradients(grads);
  }

  /** Runs the eval graph (forward + loss); no gradients. */
  evalStep(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    return this.exclusive('evalStep', async () => {
      const session = await this.session('eval');
      const out = await session.run(this.feeds(session, feeds, {}, 'evalStep'), this.manifest.stepOutputs);
      return pickStepOutputs(this.manifest, out);
    });
  }

  /** The next gradients trainStep produces replace the accumulated ones instead of adding to them. */
  async lazyResetGrad(): Promise<void> {
    this.assertIdle('lazyResetGrad');
    this.store.resetGradients();
  }

  /**
   * Updates the parameters from the accumulated gradients (clipped to maxGradNorm first, in place, as
   * PyTorch does); the learning rate comes from the schedule. Gradients stay until lazyResetGrad.
   */
  optimizerStep(): Promise<OptimizerStepResult> {
    return this.exclusive('optimizerStep', async () => {
      if (!this.store.hasGradients) {
        throw new RlpkdError('optimizerStep: no gradients accumulated since the last lazyResetGrad', {
          hint: 'call trainStep first',
        });
      }
      const step = this.store.step + 1;
      const learningRate = this.lrOverride ?? this.schedule(step);
      const gradNorm = this.store.gradientNorm();
      const bound = this.options.maxGradNorm;
      if (bound !== undefined) {
        const coef = bound / (gradNorm + 1e-6);
        if (coef < 1) this.store.scaleGradients(coef);
      }
      await this.strategy.applyGradients(step, learningRate);
      this.store.step = step;
      return { step, learningRate, gradNorm };
    });
  }

  /**
   * One training step in one run: forward, loss, backward, global-norm clipping and the optimizer update.
   * Equivalent to lazyResetGrad + trainStep + optimizerStep, except that the gradients it leaves behind
   * (none when the update runs in the graph) are not for optimizerStep: call lazyResetGrad before
   * accumulating again.
   */
  fusedStep(
    feeds: Record<string, HostTensor>,
    options: { levelGradientNorms?: boolean } = {},
  ): Promise<FusedStepResult> {
    const levelNorms = options.levelGradientNorms ?? false;
    if (levelNorms && !this.measuresLevelGradientNorms) {
      return Promise.reject(
        new RlpkdError('fusedStep: these artifacts or this session cannot measure level gradient norms', {
          hint: 'generate the artifacts with levelGradientNorms and update on the host (CPU, onnxruntime-node)',
        }),
      );
    }
    return this.exclusive('fusedStep', async () => {
      const step = this.store.step + 1;
      const learningRate = this.lrOverride ?? this.schedule(step);
      const r = await this.strategy.fusedStep(
        feeds,
        step,
        learningRate,
        this.options.maxGradNorm ?? Infinity,
        levelNorms,
      );
      this.store.resetGradients();
      this.store.step = step;
      return { ...r, step, learningRate };
    });
  }

  /** Copies of the current parameters, in manifest order. */
  async getParameters(): Promise<Record<string, HostTensor>> {
    return this.store.copyParameters();
  }

  /**
   * Runs `fn` with views of the session's own parameter storage (no copy: a ResNet-50's are 107 MB), e.g.
   * to feed another graph the current parameters. The session refuses every other call until `fn`
   * settles, so the views cannot change under it; `fn` must not write them or keep them.
   */
  withParameterViews<T>(fn: (params: Readonly<Record<string, HostTensor>>) => Promise<T>): Promise<T> {
    return this.exclusive('withParameterViews', () => fn(this.store.parameterViews()));
  }

  /**
   * Runs `fn` with the current state as a checkpoint whose tensors are views of the session's own storage
   * (no copy: with AdamW three times the model), e.g. to write it to disk. Like withParameterViews, the
   * session refuses every other call until `fn` settles; `fn` must not write the views or keep them.
   */
  withCheckpointViews<T>(fn: (state: Readonly<CheckpointState>) => Promise<T>): Promise<T> {
    return this.exclusive('withCheckpointViews', () => fn(this.store.checkpointViews()));
  }

  /** Copies of the accumulated gradients (parameters the loss does not reach have none). */
  async getGradients(): Promise<Record<string, HostTensor>> {
    return this.store.copyGradients();
  }

  /** Number of float32 values in all parameters (the size of getContiguousParameters). */
  getParametersSize(): number {
    return this.store.parametersSize;
  }

  /** All parameters in one Float32Array, in manifest order (ORT's getContiguousParameters). */
  async getContiguousParameters(): Promise<Float32Array> {
    return this.store.contiguousParameters();
  }

  /** Replaces all parameters from one buffer in manifest order (ORT's loadParametersBuffer). */
  async loadParametersBuffer(buffer: Float32Array): Promise<void> {
    this.assertIdle('loadParametersBuffer');
    this.store.loadParametersBuffer(buffer);
  }

  /** Replaces some or all parameters (copied); unknown names and wrong shapes are errors. */
  async loadParameters(params: Record<string, HostTensor>): Promise<void> {
    this.assertIdle('loadParameters');
    this.store.loadParameters(params);
  }

  /** The current state as a checkpoint (parameters, optimizer state and step; copies). */
  checkpointState(metadata?: Record<string, string>): CheckpointState {
    return this.store.checkpointState(metadata);
  }

  /**
   * Copies parameters, optimizer state and step into `into` (a snapshot this session made before, reused
   * without allocating) or a new snapshot; `restore` puts them back. For trial updates that are rolled
   * back every time (the RL environment's phase 2), where checkpointState would allocate the model three
   * times over per trial. When `into` already holds the current state (nothing changed since it was taken
   * or restored), nothing is copied.
   */
  snapshot(into?: TrainingSnapshot): TrainingSnapshot {
    this.assertIdle('snapshot');
    return this.store.snapshot(into);
  }

  /** Puts back what `snapshot` copied; accumulated gradients are dropped (as loadCheckpoint does). */
  async restore(snapshot: TrainingSnapshot): Promise<void> {
    this.assertIdle('restore');
    this.store.restore(snapshot);
  }

  /**
   * Zeroes the optimizer state and the step count, parameters unchanged: the next update is an optimizer's
   * first (a trial update between snapshot and restore). Accumulated gradients are dropped.
   */
  resetOptimizerState(): void {
    this.assertIdle('resetOptimizerState');
    this.store.resetOptimizerState();
  }

  /**
   * Rewrites the optimizer state so the next update is the step's own gradient preconditioned by the run's
   * second moments, without momentum (ParameterStore.preconditionOptimizerState); for a trial update between
   * snapshot and restore. Accumulated gradients are dropped.
   */
  preconditionOptimizerState(): void {
    this.assertIdle('preconditionOptimizerState');
    this.store.preconditionOptimizerState();
  }

  /** Writes parameters, optimizer state and step to an ONNX checkpoint file (atomically). */
  async saveCheckpoint(file: string, metadata?: Record<string, string>): Promise<void> {
    saveCheckpoint(file, this.checkpointState(metadata));
  }

  /** Restores parameters, optimizer state and step; accumulated gradients are dropped. */
  async loadCheckpoint(checkpoint: string | CheckpointState): Promise<void> {
    this.assertIdle('loadCheckpoint');
    if (typeof checkpoint === 'string')
      this.store.applyCheckpoint(loadCheckpoint(checkpoint), `checkpoint '${checkpoint}'`);
    else this.store.applyCheckpoint(checkpoint, 'the checkpoint');
  }

  /**
   * The trained model as a plain ONNX graph (parameters as initializers, pruned to `outputs`, default the
   * original model's outputs); written to `file` when given.
   */
  async exportModelForInference(
    file?: string,
    options: { outputs?: readonly string[] } = {},
  ): Promise<OnnxModel> {
    const model = exportModelForInference(this.artifacts, this.store.copyParameters(), options);
    if (file) saveModel(model, file);
    return model;
  }

  /** Releases every onnxruntime session. */
  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) {
      try {
        await (await s).release();
      } catch {
        // a session that failed to open has nothing to release
      }
    }
  }
}
