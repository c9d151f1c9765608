/**
 * TrainingSession: the API of onnxruntime's removed JS TrainingSession (trainStep, evalStep,
 * optimizerStep, lazyResetGrad, parameters in/out, checkpoints, exportModelForInference) on ordinary
 * inference sessions running the standard-op artifacts. Parameters, accumulated gradients and optimizer
 * state live in JS Float32Arrays and are fed to every run (CPU inputs are wrapped without copies).
 * `fusedStep` does forward, backward, clipping and the update in one run for transfer-bound providers.
 */
import { RlpkdError } from '../errors';
import { modelToBytes, saveModel } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import {
  createSession,
  collectGarbage,
  resolveExecutionProvider,
  type ExecutionProviderName,
  type GraphSession,
} from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import { createWebSession } from '../runtime/web-session';
import {
  artifactGraphs,
  artifactModel,
  artifactPath,
  exportModelForInference,
  fusedLayout,
  loadArtifacts,
  type ArtifactGraph,
  type ArtifactGraphs,
  type ArtifactManifest,
  type FusedParameterGroup,
  type TrainingArtifacts,
} from './artifacts';
import { checkCheckpointFits, loadCheckpoint, saveCheckpoint, type CheckpointState } from './checkpoint';
import {
  HostUpdateKernels,
  HostUpdateMemory,
  adamwUpdateScalars,
  clipCoefficient,
  hostUpdateSupported,
  sgdUpdateScalars,
} from './host-update';
import { createLrSchedule, type LrSchedule, type LrScheduleConfig } from './lr-schedules';
import {
  GRAD_NORM_OUTPUT,
  OPTIMIZER_INPUTS,
  optimizerStateNames,
  stateTensorName,
  updatedName,
} from './optimizers';

/** What a TrainingSession needs from a runtime session (Node sessions and wasm sessions both fit). */

/** Parameter bytes updated per run above which a forced garbage collection pays for itself. */
const GC_THRESHOLD_BYTES = 32 * 1024 * 1024;
export type RunnableGraph = Pick<GraphSession, 'inputNames' | 'outputNames' | 'run' | 'release' | 'runInto'>;

/** Which onnxruntime runs the graphs: onnxruntime-node (cpu/cuda) or onnxruntime-web's wasm backend. */
export type TrainingRuntime = 'node' | 'web';

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

/** Parameters, optimizer state and step of a session, as TrainingSession.snapshot copies them. */
export interface TrainingSnapshot {
  readonly step: number;
  /** The session's storage arrays, in its own order. */
  readonly arrays: readonly Float32Array[];
}

/** The options a session keeps once created. */
type SessionSettings = Omit<TrainingSessionOptions, 'artifacts' | 'checkpoint'>;

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

function float32(t: HostTensor, what: string): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new RlpkdError(`${what} must be a float32 tensor`);
  return t.data;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A fused parameter group's flat blocks: the parameters and each optimizer state, contiguous. */
interface FlatBlock {
  group: FusedParameterGroup;
  params: Float32Array;
  /** Optimizer state name → block. */
  state: Record<string, Float32Array>;
  /** The block's gradient, written by the gradient step graph (host updates only). */
  grad?: Float32Array;
  /** Parameter → its gradient's view into `grad`. */
  gradViews?: Map<string, Float32Array>;
}

/**
 * Trains the parameters of a set of artifacts with onnxruntime inference sessions. Parameters and
 * optimizer state live in a few contiguous Float32Arrays (one per fused parameter group); each parameter
 * and state tensor is a view into them, so the fused step reads and updates them in place.
 */
export class TrainingSession {
  private readonly sessions = new Map<ArtifactGraph, Promise<RunnableGraph>>();
  /** Parameter → its values (a view into a flat block, or its own array when it gets no gradient). */
  private readonly params = new Map<string, Float32Array>();
  /** State tensor (`<param>.<state>`) → its values (a view into a flat block, or its own array). */
  private readonly state = new Map<string, Float32Array>();
  private readonly blocks: FlatBlock[] = [];
  private readonly grads = new Map<string, Float32Array>();
  private readonly paramDims = new Map<string, readonly number[]>();
  /** Optimizer state tensor → its parameter. */
  private readonly stateOwner = new Map<string, string>();
  private resetPending = true;
  private stepCount = 0;
  private schedule: LrSchedule;
  private busy = false;
  /** Kernels of host-side updates; set when optimizerStep (and fusedStep, see fusedOnHost) update on the host. */
  private hostKernels?: HostUpdateKernels;
  /** True when fusedStep runs the gradient step graph and then the host kernels. */
  private fusedOnHost = false;
  /** Every array parameters and optimizer state live in, in a fixed order (blocks first): what snapshots copy. */
  private readonly storage: Float32Array[] = [];
  /** Bytes of one set of gradients (float32, every parameter that gets one). */
  private readonly gradientBytes: number;

  private constructor(
    /**
     * The artifacts' graphs. Not their initial checkpoint: the session copies that into its own storage
     * once, and holding it would keep a model-sized copy (and its optimizer state) alive for nothing.
     */
    readonly artifacts: ArtifactGraphs,
    private readonly options: SessionSettings,
  ) {
    for (const p of artifacts.manifest.parameters) this.paramDims.set(p.name, p.dims);
    const m = artifacts.manifest;
    // The flat blocks parameters and optimizer state live in (also for artifacts without fused graphs).
    const groups = (m.fusedLayout ?? fusedLayout(m.parameters, m.gradients, m.optimizer)).groups;
    this.allocateStorage(groups, this.hostMemory(groups));
    this.gradientBytes = Object.keys(m.gradients).reduce(
      (n, param) => n + 4 * this.paramDims.get(param)!.reduce((a, d) => a * d, 1),
      0,
    );
    this.schedule = createLrSchedule(
      options.lrSchedule ?? { type: 'constant' },
      options.learningRate ?? artifacts.manifest.optimizer.lr,
    );
    if (options.maxGradNorm !== undefined && !(options.maxGradNorm > 0)) {
      throw new RlpkdError(`maxGradNorm must be > 0, got ${options.maxGradNorm}`);
    }
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
        : { state: options.checkpoint ?? artifacts.checkpoint, what: 'the checkpoint' };
    s.applyCheckpoint(start.state, start.what);
    await s.session('training'); // fail early on provider or graph problems
    return s;
  }

  /** The manifest: parameter names and shapes, inputs, loss outputs, optimizer settings. */
  get manifest(): ArtifactManifest {
    return this.artifacts.manifest;
  }

  /** Optimizer updates taken so far. */
  get step(): number {
    return this.stepCount;
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
    return this.schedule(this.stepCount + 1);
  }

  /**
   * True when fusedStep can also return ‖∇_W L_l‖ per level loss from the step's own forward pass: the
   * artifacts were generated with levelGradientNorms and the step updates on the host.
   */
  get measuresLevelGradientNorms(): boolean {
    const m = this.manifest;
    return (
      this.fusedOnHost &&
      Boolean(m.levelGradientNorms && (m.files.levelNormStep ?? this.artifacts.models.levelNormStep))
    );
  }

  /** Where fusedStep updates: 'host' (gradient graph + WebAssembly kernels) or 'graph' (fused graph). */
  get updateLocation(): 'host' | 'graph' {
    return this.fusedOnHost ? 'host' : 'graph';
  }

  /**
   * The memory for host-side updates, or undefined when the update graphs update (see
   * TrainingSessionOptions.optimizerOnHost for the default). Asking for host updates where they cannot
   * work is an error naming the reason.
   */
  private hostMemory(groups: readonly FusedParameterGroup[]): HostUpdateMemory | undefined {
    const requested = this.options.optimizerOnHost;
    if (requested === false) return undefined;
    if (!hostUpdateSupported()) {
      if (requested) {
        throw new RlpkdError('optimizerOnHost: this JavaScript engine has no WebAssembly SIMD', {
          hint: 'leave optimizerOnHost unset',
        });
      }
      return undefined;
    }
    if (requested === undefined) {
      if ((this.options.runtime ?? 'node') !== 'node') return undefined;
      if (resolveExecutionProvider(this.options.executionProvider ?? 'cpu') !== 'cpu') return undefined;
    }
    const slots = 2 + optimizerStateNames(this.manifest.optimizer).length; // parameters, gradient, states
    const floats = groups.reduce((n, g) => n + g.size * slots, 0);
    try {
      return HostUpdateMemory.create(floats);
    } catch (err) {
      if (requested) throw err;
      return undefined; // too large for one WebAssembly memory: the update graphs update instead
    }
  }

  private session(graph: ArtifactGraph): Promise<RunnableGraph> {
    let s = this.sessions.get(graph);
    if (!s) {
      s = this.openSession(graph);
      this.sessions.set(graph, s);
      s.catch(() => this.sessions.delete(graph));
    }
    return s;
  }

  private async openSession(graph: ArtifactGraph): Promise<RunnableGraph> {
    const source: string | Uint8Array =
      artifactPath(this.artifacts, graph) ?? modelToBytes(artifactModel(this.artifacts, graph));
    if ((this.options.runtime ?? 'node') === 'web') {
      return createWebSession(source, {
        ...(this.options.graphOptimizationLevel
          ? { graphOptimizationLevel: this.options.graphOptimizationLevel }
          : {}),
      });
    }
    return createSession(source, {
      executionProvider: this.options.executionProvider ?? 'cpu',
      memArena: this.options.memArena ?? false,
      ...(this.options.intraOpNumThreads ? { intraOpNumThreads: this.options.intraOpNumThreads } : {}),
      ...(this.options.graphOptimizationLevel
        ? { graphOptimizationLevel: this.options.graphOptimizationLevel }
        : {}),
    });
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
      if (this.params.has(name)) {
        throw new RlpkdError(`${what}: '${name}' is a trainable parameter, not a data input`, {
          hint: 'change parameters with loadParameters()',
        });
      }
    }
    for (const name of session.inputNames) {
      const p = this.params.get(name);
      if (p) feeds[name] = { data: p, dims: this.paramDims.get(name)! };
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
      // Each run returns fresh gradient arrays: let gradients about to be replaced go, and collect them
      // (and the previous runs' output copies) before this run allocates (see runUpdating).
      if (this.resetPending) this.grads.clear();
      if (this.gradientBytes >= GC_THRESHOLD_BYTES) collectGarbage();
      const out = await session.run(this.feeds(session, feeds, {}, 'trainStep'), fetches);
      for (const [param, name] of gradOutputs) {
        const g = float32(out[name], `gradient '${name}'`);
        const acc = this.grads.get(param);
        if (this.resetPending || !acc) this.grads.set(param, g);
        else for (let i = 0; i < acc.length; i++) acc[i] += g[i];
      }
      this.resetPending = false;
      return this.pick(out, this.manifest.stepOutputs);
    });
  }

  /** Runs the eval graph (forward + loss); no gradients. */
  evalStep(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    return this.exclusive('evalStep', async () => {
      const session = await this.session('eval');
      const out = await session.run(this.feeds(session, feeds, {}, 'evalStep'), this.manifest.stepOutputs);
      return this.pick(out, this.manifest.stepOutputs);
    });
  }

  private pick(out: Record<string, HostTensor>, names: readonly string[]): Record<string, HostTensor> {
    const r: Record<string, HostTensor> = {};
    for (const n of names) r[n] = out[n];
    return r;
  }

  /** The next gradients trainStep produces replace the accumulated ones instead of adding to them. */
  async lazyResetGrad(): Promise<void> {
    this.assertIdle('lazyResetGrad');
    this.resetPending = true;
  }

  /** Global 2-norm of the accumulated gradients (float64 sum). */
  private gradientNorm(): number {
    let sum = 0;
    for (const g of this.grads.values()) for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
    return Math.sqrt(sum);
  }

  private scalarFeeds(step: number, lr: number): Record<string, HostTensor> {
    return {
      [OPTIMIZER_INPUTS.learningRate]: { data: Float32Array.of(lr), dims: [] },
      [OPTIMIZER_INPUTS.step]: { data: BigInt64Array.of(BigInt(step)), dims: [] },
    };
  }

  private stateFeeds(): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = {};
    for (const [name, data] of this.state)
      feeds[name] = { data, dims: this.paramDims.get(this.stateOwner.get(name)!)! };
    return feeds;
  }

  /** The storage each updated tensor of the per-parameter optimizer graph belongs in. */
  private updateTargets(): Record<string, HostTensor> {
    const into: Record<string, HostTensor> = {};
    for (const name of Object.keys(this.manifest.gradients)) {
      const dims = this.paramDims.get(name)!;
      into[updatedName(name)] = { data: this.params.get(name)!, dims };
      for (const s of optimizerStateNames(this.manifest.optimizer)) {
        const key = stateTensorName(name, s);
        into[updatedName(key)] = { data: this.state.get(key)!, dims };
      }
    }
    return into;
  }

  /**
   * Runs a graph whose `into` outputs are the new values of tensors it reads: written in place where the
   * runtime supports it, else fetched and copied over.
   */
  private async runUpdating(
    session: RunnableGraph,
    feeds: Record<string, HostTensor>,
    into: Record<string, HostTensor>,
    fetches: readonly string[],
  ): Promise<Record<string, HostTensor>> {
    if (session.runInto) {
      // The previous update's output copies are unreachable by now: free them before this run allocates.
      // Only worth a full collection when the copies are big; for small models it would dominate the step.
      let bytes = 0;
      for (const t of Object.values(into)) bytes += t.data.byteLength;
      if (bytes >= GC_THRESHOLD_BYTES) collectGarbage();
      return session.runInto(feeds, into, fetches);
    }
    const out = await session.run(feeds, [...fetches, ...Object.keys(into)]);
    for (const [name, target] of Object.entries(into)) {
      (target.data as Float32Array).set(float32(out[name], `updated '${name}'`));
    }
    return out;
  }

  /**
   * Updates the parameters from the accumulated gradients (clipped to maxGradNorm first, in place, as
   * PyTorch does); the learning rate comes from the schedule. Gradients stay until lazyResetGrad.
   */
  optimizerStep(): Promise<OptimizerStepResult> {
    return this.exclusive('optimizerStep', async () => {
      if (this.grads.size === 0 || this.resetPending) {
        throw new RlpkdError('optimizerStep: no gradients accumulated since the last lazyResetGrad', {
          hint: 'call trainStep first',
        });
      }
      const step = this.stepCount + 1;
      const learningRate = this.schedule(step);
      const gradNorm = this.gradientNorm();
      const bound = this.options.maxGradNorm;
      if (bound !== undefined) {
        const coef = bound / (gradNorm + 1e-6);
        if (coef < 1) for (const g of this.grads.values()) for (let i = 0; i < g.length; i++) g[i] *= coef;
      }
      if (this.hostKernels) {
        // The accumulated gradients stay where they are (fusedStep leaves them alone too); the update
        // reads a copy in the blocks' gradient scratch, with the kernels' float32 operation order, which is
        // the optimizer graph's.
        for (const block of this.blocks) {
          for (const [param, view] of block.gradViews!) view.set(this.grads.get(param)!);
        }
        this.updateOnHost(this.hostKernels, step, learningRate, 1);
        this.stepCount = step;
        return { step, learningRate, gradNorm };
      }
      const session = await this.session('optimizer');
      const extra = { ...this.scalarFeeds(step, learningRate), ...this.stateFeeds() };
      for (const [param, name] of Object.entries(this.manifest.gradients)) {
        extra[name] = { data: this.grads.get(param)!, dims: this.paramDims.get(param)! };
      }
      await this.runUpdating(
        session,
        this.feeds(session, {}, extra, 'optimizerStep'),
        this.updateTargets(),
        [],
      );
      this.stepCount = step;
      return { step, learningRate, gradNorm };
    });
  }

  /**
   * One training step in one run: forward, loss, backward, global-norm clipping and the optimizer update.
   * Equivalent to lazyResetGrad + trainStep + optimizerStep; accumulated gradients are left untouched.
   */
  fusedStep(
    feeds: Record<string, HostTensor>,
    options: { levelGradientNorms?: boolean } = {},
  ): Promise<FusedStepResult> {
    if (options.levelGradientNorms) {
      if (!this.measuresLevelGradientNorms) {
        return Promise.reject(
          new RlpkdError('fusedStep: these artifacts or this session cannot measure level gradient norms', {
            hint: 'generate the artifacts with levelGradientNorms and update on the host (CPU, onnxruntime-node)',
          }),
        );
      }
      return this.exclusive('fusedStep', () => this.hostStep(feeds, this.hostKernels!, true));
    }
    if (this.fusedOnHost)
      return this.exclusive('fusedStep', () => this.hostStep(feeds, this.hostKernels!, false));
    return this.exclusive('fusedStep', async () => {
      const session = await this.session('fused');
      const step = this.stepCount + 1;
      const learningRate = this.schedule(step);
      const extra: Record<string, HostTensor> = {
        ...this.scalarFeeds(step, learningRate),
        [OPTIMIZER_INPUTS.maxGradNorm]: {
          data: Float32Array.of(this.options.maxGradNorm ?? Infinity),
          dims: [],
        },
      };
      let into: Record<string, HostTensor>;
      if (this.manifest.fusedLayout) {
        into = {};
        for (const block of this.blocks) {
          const dims = [block.group.size];
          extra[block.group.input] = { data: block.params, dims };
          into[updatedName(block.group.input)] = { data: block.params, dims };
          for (const [s, name] of Object.entries(block.group.stateInputs)) {
            extra[name] = { data: block.state[s], dims };
            into[updatedName(name)] = { data: block.state[s], dims };
          }
        }
      } else {
        Object.assign(extra, this.stateFeeds());
        into = this.updateTargets();
      }
      const fetches = [...this.manifest.stepOutputs, GRAD_NORM_OUTPUT];
      const out = await this.runUpdating(
        session,
        this.feeds(session, feeds, extra, 'fusedStep'),
        into,
        fetches,
      );
      this.stepCount = step;
      const gradNorm = (out[GRAD_NORM_OUTPUT].data as Float32Array)[0];
      return { outputs: this.pick(out, this.manifest.stepOutputs), step, learningRate, gradNorm };
    });
  }

  /**
   * fusedStep with the update on the host: the gradient step graph writes each gradient into its slice of
   * the session's gradient blocks and returns the global norm; the kernels then clip and update in place with
   * the scalars and float32 operation order of the fused graph (appendGlobalNormClip + appendOptimizerUpdate).
   */
  private async hostStep(
    feeds: Record<string, HostTensor>,
    kernels: HostUpdateKernels,
    levelNorms: boolean,
  ): Promise<FusedStepResult> {
    const session = await this.session(levelNorms ? 'levelNormStep' : 'gradientStep');
    const normOutputs = levelNorms ? this.manifest.levelGradientNorms!.outputs : [];
    const step = this.stepCount + 1;
    const learningRate = this.schedule(step);
    const into: Record<string, HostTensor> = {};
    for (const block of this.blocks) {
      for (const [param, view] of block.gradViews!) {
        const name = this.manifest.gradients[param];
        const dims = this.manifest.fusedLayout?.gradientShapes?.[name] ?? this.paramDims.get(param)!;
        into[name] = { data: view, dims };
      }
    }
    const fetches = [...this.manifest.stepOutputs, GRAD_NORM_OUTPUT, ...normOutputs];
    const out = await this.runUpdating(session, this.feeds(session, feeds, {}, 'fusedStep'), into, fetches);
    const gradNorm = (out[GRAD_NORM_OUTPUT].data as Float32Array)[0];
    this.updateOnHost(
      kernels,
      step,
      learningRate,
      clipCoefficient(gradNorm, this.options.maxGradNorm ?? Infinity),
    );
    this.stepCount = step;
    const result: FusedStepResult = {
      outputs: this.pick(out, this.manifest.stepOutputs),
      step,
      learningRate,
      gradNorm,
    };
    if (levelNorms)
      result.levelGradientNorms = normOutputs.map((o) => Math.sqrt((out[o].data as Float32Array)[0]));
    return result;
  }

  /** Updates every block in place from its gradient scratch (`gradScale` multiplies the gradients first). */
  private updateOnHost(
    kernels: HostUpdateKernels,
    step: number,
    learningRate: number,
    gradScale: number,
  ): void {
    const config = this.manifest.optimizer;
    const noDecay = new Set(config.noWeightDecay);
    for (const block of this.blocks) {
      const decays = !noDecay.has(block.group.params[0]);
      if (config.type === 'adamw') {
        const s = adamwUpdateScalars(config, step, learningRate, gradScale, decays);
        kernels.adamw(block.params, block.grad!, block.state.exp_avg, block.state.exp_avg_sq, s);
      } else {
        const s = sgdUpdateScalars(config, step, learningRate, gradScale, decays);
        kernels.sgd(block.params, block.grad!, config.momentum > 0 ? block.state.momentum_buffer : null, s);
      }
    }
  }

  private copyMap(m: Map<string, Float32Array>): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const p of this.manifest.parameters) {
      const d = m.get(p.name);
      if (d) out[p.name] = { data: d.slice(), dims: [...p.dims] };
    }
    return out;
  }

  /** Copies of the current parameters, in manifest order. */
  async getParameters(): Promise<Record<string, HostTensor>> {
    return this.copyMap(this.params);
  }

  /**
   * Runs `fn` with views of the session's own parameter storage (no copy: a ResNet-50's are 107 MB), e.g.
   * to feed another graph the current parameters. The session refuses every other call until `fn`
   * settles, so the views cannot change under it; `fn` must not write them or keep them.
   */
  withParameterViews<T>(fn: (params: Readonly<Record<string, HostTensor>>) => Promise<T>): Promise<T> {
    return this.exclusive('withParameterViews', () => {
      const views: Record<string, HostTensor> = {};
      for (const p of this.manifest.parameters)
        views[p.name] = { data: this.params.get(p.name)!, dims: p.dims };
      return fn(views);
    });
  }

  /**
   * Runs `fn` with the current state as a checkpoint whose tensors are views of the session's own storage
   * (no copy: with AdamW three times the model), e.g. to write it to disk. Like withParameterViews, the
   * session refuses every other call until `fn` settles; `fn` must not write the views or keep them.
   */
  withCheckpointViews<T>(fn: (state: Readonly<CheckpointState>) => Promise<T>): Promise<T> {
    return this.exclusive('withCheckpointViews', () => {
      const parameters: Record<string, HostTensor> = {};
      const state: Record<string, HostTensor> = {};
      for (const p of this.manifest.parameters)
        parameters[p.name] = { data: this.params.get(p.name)!, dims: p.dims };
      for (const [name, data] of this.state) {
        state[name] = { data, dims: [...this.paramDims.get(this.stateOwner.get(name)!)!] };
      }
      return fn({ parameters, optimizer: { config: this.manifest.optimizer, step: this.stepCount, state } });
    });
  }

  /** Copies of the accumulated gradients (parameters the loss does not reach have none). */
  async getGradients(): Promise<Record<string, HostTensor>> {
    return this.resetPending ? {} : this.copyMap(this.grads);
  }

  /** Number of float32 values in all parameters (the size of getContiguousParameters). */
  getParametersSize(): number {
    return this.manifest.parameters.reduce((n, p) => n + p.dims.reduce((a, d) => a * d, 1), 0);
  }

  /** All parameters in one Float32Array, in manifest order (ORT's getContiguousParameters). */
  async getContiguousParameters(): Promise<Float32Array> {
    const out = new Float32Array(this.getParametersSize());
    let o = 0;
    for (const p of this.manifest.parameters) {
      const d = this.params.get(p.name)!;
      out.set(d, o);
      o += d.length;
    }
    return out;
  }

  /** Replaces all parameters from one buffer in manifest order (ORT's loadParametersBuffer). */
  async loadParametersBuffer(buffer: Float32Array): Promise<void> {
    this.assertIdle('loadParametersBuffer');
    const size = this.getParametersSize();
    if (buffer.length !== size) {
      throw new RlpkdError(`loadParametersBuffer: expected ${size} float32 values, got ${buffer.length}`);
    }
    let o = 0;
    for (const p of this.manifest.parameters) {
      const d = this.params.get(p.name)!;
      d.set(buffer.subarray(o, o + d.length));
      o += d.length;
    }
  }

  /** Replaces some or all parameters (copied); unknown names and wrong shapes are errors. */
  async loadParameters(params: Record<string, HostTensor>): Promise<void> {
    this.assertIdle('loadParameters');
    for (const [name, t] of Object.entries(params)) {
      const dims = this.paramDims.get(name);
      if (!dims) {
        throw new RlpkdError(`loadParameters: '${name}' is not a trainable parameter of this session`, {
          hint: `parameters: ${this.parameterNames.slice(0, 8).join(', ')}${this.parameterNames.length > 8 ? ', ...' : ''}`,
        });
      }
      if (!sameDims(t.dims, dims)) {
        throw new RlpkdError(
          `loadParameters: '${name}' is [${t.dims.join(', ')}], expected [${dims.join(', ')}]`,
        );
      }
    }
    for (const [name, t] of Object.entries(params))
      this.params.get(name)!.set(float32(t, `parameter '${name}'`));
  }

  /** The current state as a checkpoint (parameters, optimizer state and step; copies). */
  checkpointState(metadata?: Record<string, string>): CheckpointState {
    const state: Record<string, HostTensor> = {};
    for (const [name, data] of this.state) {
      state[name] = { data: data.slice(), dims: [...this.paramDims.get(this.stateOwner.get(name)!)!] };
    }
    return {
      parameters: this.copyMap(this.params),
      optimizer: { config: this.manifest.optimizer, step: this.stepCount, state },
      ...(metadata ? { metadata } : {}),
    };
  }

  /**
   * Copies parameters, optimizer state and step into `into` (a snapshot this session made before, reused
   * without allocating) or a new snapshot; `restore` puts them back. For trial updates that are rolled
   * back every time (the RL environment's phase 2), where checkpointState would allocate the model three
   * times over per trial.
   */
  snapshot(into?: TrainingSnapshot): TrainingSnapshot {
    this.assertIdle('snapshot');
    const reuse = into && this.fits(into) ? into : undefined;
    const copies = this.storage.map((a, i) => (reuse ? reuse.arrays[i] : new Float32Array(a.length)));
    this.storage.forEach((a, i) => copies[i].set(a));
    return { step: this.stepCount, arrays: copies };
  }

  /** Puts back what `snapshot` copied; accumulated gradients are dropped (as loadCheckpoint does). */
  async restore(snapshot: TrainingSnapshot): Promise<void> {
    this.assertIdle('restore');
    if (!this.fits(snapshot)) {
      throw new RlpkdError('restore: the snapshot was taken from a session with other parameters', {
        hint: 'restore a snapshot into the session (or one on the same artifacts) that made it',
      });
    }
    this.storage.forEach((a, i) => a.set(snapshot.arrays[i]));
    this.stepCount = snapshot.step;
    this.grads.clear();
    this.resetPending = true;
  }

  /**
   * Zeroes the optimizer state and the step count, parameters unchanged: the next update is an optimizer's
   * first (a trial update between snapshot and restore). Accumulated gradients are dropped.
   */
  resetOptimizerState(): void {
    this.assertIdle('resetOptimizerState');
    for (const s of this.state.values()) s.fill(0);
    this.stepCount = 0;
    this.grads.clear();
    this.resetPending = true;
  }

  private fits(snapshot: TrainingSnapshot): boolean {
    return (
      snapshot.arrays.length === this.storage.length &&
      this.storage.every((a, i) => a.length === snapshot.arrays[i].length)
    );
  }

  /** Writes parameters, optimizer state and step to an ONNX checkpoint file (atomically). */
  async saveCheckpoint(file: string, metadata?: Record<string, string>): Promise<void> {
    saveCheckpoint(file, this.checkpointState(metadata));
  }

  /** Restores parameters, optimizer state and step; accumulated gradients are dropped. */
  async loadCheckpoint(checkpoint: string | CheckpointState): Promise<void> {
    this.assertIdle('loadCheckpoint');
    if (typeof checkpoint === 'string')
      this.applyCheckpoint(loadCheckpoint(checkpoint), `checkpoint '${checkpoint}'`);
    else this.applyCheckpoint(checkpoint, 'the checkpoint');
  }

  /**
   * One flat block per parameter group (the manifest's fusedLayout, or the same grouping computed for
   * artifacts without fused graphs) holding the parameters and each optimizer state; views into it stand
   * for the individual tensors. Parameters without a gradient get their own arrays.
   */
  private allocateStorage(groups: readonly FusedParameterGroup[], memory?: HostUpdateMemory): void {
    const m = this.manifest;
    const alloc = (n: number): Float32Array => (memory ? memory.alloc(n) : new Float32Array(n));
    const stateNames = optimizerStateNames(m.optimizer);
    const numel = (name: string): number => this.paramDims.get(name)!.reduce((a, d) => a * d, 1);
    for (const group of groups) {
      const size = group.params.reduce((n, p) => n + numel(p), 0);
      const block: FlatBlock = { group, params: alloc(size), state: {} };
      for (const s of stateNames) block.state[s] = alloc(size);
      if (memory) {
        block.grad = alloc(size);
        block.gradViews = new Map();
      }
      let offset = 0;
      for (const p of group.params) {
        const n = numel(p);
        this.params.set(p, block.params.subarray(offset, offset + n));
        block.gradViews?.set(p, block.grad!.subarray(offset, offset + n));
        for (const s of stateNames) {
          this.state.set(stateTensorName(p, s), block.state[s].subarray(offset, offset + n));
          this.stateOwner.set(stateTensorName(p, s), p);
        }
        offset += n;
      }
      this.blocks.push(block);
      this.storage.push(block.params, ...Object.values(block.state));
    }
    if (memory) {
      this.hostKernels = HostUpdateKernels.create(memory);
      this.fusedOnHost = Boolean(m.files.gradientStep ?? this.artifacts.models.gradientStep);
    }
    for (const p of m.parameters) {
      if (this.params.has(p.name)) continue;
      const own = [new Float32Array(numel(p.name)), ...stateNames.map(() => new Float32Array(numel(p.name)))];
      this.params.set(p.name, own[0]);
      stateNames.forEach((s, i) => {
        this.state.set(stateTensorName(p.name, s), own[i + 1]);
        this.stateOwner.set(stateTensorName(p.name, s), p.name);
      });
      this.storage.push(...own);
    }
  }

  private applyCheckpoint(state: CheckpointState, what: string): void {
    checkCheckpointFits(
      state,
      { parameters: this.manifest.parameters, optimizer: this.manifest.optimizer },
      what,
    );
    for (const p of this.manifest.parameters) {
      this.params.get(p.name)!.set(float32(state.parameters[p.name], `parameter '${p.name}'`));
      for (const s of optimizerStateNames(this.manifest.optimizer)) {
        const key = stateTensorName(p.name, s);
        this.state.get(key)!.set(float32(state.optimizer.state[key], `optimizer state '${key}'`));
      }
    }
    this.stepCount = state.optimizer.step;
    this.grads.clear();
    this.resetPending = true;
  }

  /**
   * The trained model as a plain ONNX graph (parameters as initializers, pruned to `outputs`, default the
   * original model's outputs); written to `file` when given.
   */
  async exportModelForInference(
    file?: string,
    options: { outputs?: readonly string[] } = {},
  ): Promise<OnnxModel> {
    const model = exportModelForInference(this.artifacts, this.copyMap(this.params), options);
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
