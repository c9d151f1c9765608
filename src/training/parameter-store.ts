/**
 * Where a training session's numbers live: parameters, optimizer state and gradients in a few contiguous
 * Float32Arrays (one block per fused parameter group), each tensor a view into its block, plus the step
 * count. One map of parameters and one set of gradients; snapshots, checkpoints and the parameter
 * accessors of TrainingSession all read and write through it. It runs no graph.
 */
import { RlpkdError } from '../errors';
import { shapeSize } from '../onnx/tensor-data';
import type { HostTensor } from '../runtime/tensors';
import { fusedLayout, type ArtifactManifest, type FusedParameterGroup } from './artifacts';
import { checkCheckpointFits, type CheckpointState } from './checkpoint';
import type { HostUpdateMemory } from './host-update';
import { optimizerStateNames, resolveOptimizerConfig, stateTensorName } from './optimizers';
import { float32Data, sameDims } from './tensor-checks';

/** Parameters, optimizer state and step of a session, as TrainingSession.snapshot copies them. */
export interface TrainingSnapshot {
  readonly step: number;
  /** The session's storage arrays, in its own order. */
  readonly arrays: readonly Float32Array[];
  /** The state's version when copied (see ParameterStore.version). */
  readonly version: number;
}

/** Versions are unique across stores, so equal versions mean equal contents even between two sessions. */
let nextVersion = 1;

/** A fused parameter group's flat blocks: the parameters, each optimizer state and the gradient, contiguous. */
export interface FlatBlock {
  readonly group: FusedParameterGroup;
  readonly params: Float32Array;
  /** Optimizer state name → block. */
  readonly state: Readonly<Record<string, Float32Array>>;
  /** The block's gradient (allocated with the block for host updates, else on the first trainStep). */
  grad?: Float32Array;
  /** Parameter → its gradient's view into `grad`. */
  gradViews?: Map<string, Float32Array>;
}

/** The flat blocks of a manifest: its fused layout, or the same grouping for artifacts without fused graphs. */
export function parameterGroups(manifest: ArtifactManifest): readonly FusedParameterGroup[] {
  return (manifest.fusedLayout ?? fusedLayout(manifest.parameters, manifest.gradients, manifest.optimizer))
    .groups;
}

/** Parameters, optimizer state, gradients and step of one training session (see the module doc). */
export class ParameterStore {
  private updates = 0;
  /**
   * Identifies the current parameters, optimizer state and step: a new, never used value after every
   * change made through the store (updates set `step`; loads, resets and restores), the snapshot's value
   * after a restore. A snapshot of an unchanged state need not be copied again.
   */
  version = nextVersion++;
  readonly blocks: FlatBlock[] = [];
  /** Parameter → its values (a view into a block, or its own array when it gets no gradient). */
  private readonly params = new Map<string, Float32Array>();
  /** State tensor (`<param>.<state>`) → its values. */
  private readonly state = new Map<string, Float32Array>();
  /** State tensor → its parameter. */
  private readonly stateOwner = new Map<string, string>();
  private readonly dims = new Map<string, readonly number[]>();
  /** Every array parameters and optimizer state live in, in a fixed order (blocks first): what snapshots copy. */
  private readonly storage: Float32Array[] = [];
  /** True when the gradients hold nothing (none computed since the last reset). */
  private gradientsStale = true;

  /**
   * Allocates the blocks, from `memory` when the host kernels update them (their gradients too, since
   * the gradient step graph writes into them), else as ordinary arrays.
   */
  constructor(
    readonly manifest: ArtifactManifest,
    memory?: HostUpdateMemory,
  ) {
    for (const p of manifest.parameters) this.dims.set(p.name, p.dims);
    const alloc = (n: number): Float32Array => (memory ? memory.alloc(n) : new Float32Array(n));
    const stateNames = optimizerStateNames(manifest.optimizer);
    for (const group of parameterGroups(manifest)) {
      const size = group.params.reduce((n, p) => n + shapeSize(this.dims.get(p)!), 0);
      const state: Record<string, Float32Array> = {};
      const block: FlatBlock = { group, params: alloc(size), state };
      for (const s of stateNames) state[s] = alloc(size);
      if (memory) this.attachGradient(block, alloc(size));
      let offset = 0;
      for (const p of group.params) {
        const n = shapeSize(this.dims.get(p)!);
        this.params.set(p, block.params.subarray(offset, offset + n));
        for (const s of stateNames) this.addState(p, s, state[s].subarray(offset, offset + n));
        offset += n;
      }
      this.blocks.push(block);
      this.storage.push(block.params, ...Object.values(state));
    }
    for (const p of manifest.parameters) {
      if (this.params.has(p.name)) continue;
      const own = [p, ...stateNames].map(() => new Float32Array(shapeSize(p.dims)));
      this.params.set(p.name, own[0]);
      stateNames.forEach((s, i) => this.addState(p.name, s, own[i + 1]));
      this.storage.push(...own);
    }
  }

  /** Optimizer updates taken so far (setting it marks a new state: every update sets it). */
  get step(): number {
    return this.updates;
  }

  set step(value: number) {
    this.updates = value;
    this.changed();
  }

  /** Marks the parameters or optimizer state as changed (a new version). */
  changed(): void {
    this.version = nextVersion++;
  }

  private addState(param: string, s: string, values: Float32Array): void {
    this.state.set(stateTensorName(param, s), values);
    this.stateOwner.set(stateTensorName(param, s), param);
  }

  private attachGradient(block: FlatBlock, grad: Float32Array): void {
    block.grad = grad;
    block.gradViews = new Map();
    let offset = 0;
    for (const p of block.group.params) {
      const n = shapeSize(this.dims.get(p)!);
      block.gradViews.set(p, grad.subarray(offset, offset + n));
      offset += n;
    }
  }

  /** True when `name` is a trainable parameter. */
  has(name: string): boolean {
    return this.params.has(name);
  }

  /** A parameter's values (the live view, not a copy). */
  parameter(name: string): Float32Array {
    return this.params.get(name)!;
  }

  /** A parameter's shape. */
  dimsOf(name: string): readonly number[] {
    return this.dims.get(name)!;
  }

  /** The live view of a parameter as a tensor (for feeds). */
  parameterTensor(name: string): HostTensor | undefined {
    const p = this.params.get(name);
    return p && { data: p, dims: this.dims.get(name)! };
  }

  /** Copies of the parameters (in manifest order). */
  copyParameters(): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const p of this.manifest.parameters)
      out[p.name] = { data: this.params.get(p.name)!.slice(), dims: [...p.dims] };
    return out;
  }

  /** Live views of the parameters (in manifest order); the caller must not keep or write them. */
  parameterViews(): Record<string, HostTensor> {
    const views: Record<string, HostTensor> = {};
    for (const p of this.manifest.parameters)
      views[p.name] = { data: this.params.get(p.name)!, dims: p.dims };
    return views;
  }

  /** Number of float32 values in all parameters. */
  get parametersSize(): number {
    return this.manifest.parameters.reduce((n, p) => n + shapeSize(p.dims), 0);
  }

  /** All parameters in one array, in manifest order. */
  contiguousParameters(): Float32Array {
    const out = new Float32Array(this.parametersSize);
    let o = 0;
    for (const p of this.manifest.parameters) {
      const d = this.params.get(p.name)!;
      out.set(d, o);
      o += d.length;
    }
    return out;
  }

  /** Replaces all parameters from one buffer in manifest order. */
  loadParametersBuffer(buffer: Float32Array): void {
    const size = this.parametersSize;
    if (buffer.length !== size) {
      throw new RlpkdError(`loadParametersBuffer: expected ${size} float32 values, got ${buffer.length}`);
    }
    let o = 0;
    for (const p of this.manifest.parameters) {
      const d = this.params.get(p.name)!;
      d.set(buffer.subarray(o, o + d.length));
      o += d.length;
    }
    this.changed();
  }

  /** Replaces some or all parameters (copied); unknown names and wrong shapes are errors, checked first. */
  loadParameters(params: Record<string, HostTensor>): void {
    const names = this.manifest.parameters.map((p) => p.name);
    for (const [name, t] of Object.entries(params)) {
      const dims = this.dims.get(name);
      if (!dims) {
        throw new RlpkdError(`loadParameters: '${name}' is not a trainable parameter of this session`, {
          hint: `parameters: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''}`,
        });
      }
      if (!sameDims(t.dims, dims)) {
        throw new RlpkdError(
          `loadParameters: '${name}' is [${t.dims.join(', ')}], expected [${dims.join(', ')}]`,
        );
      }
    }
    for (const [name, t] of Object.entries(params))
      this.params.get(name)!.set(float32Data(t, `parameter '${name}'`));
    this.changed();
  }

  /** Per-parameter optimizer state tensors as feeds (the per-parameter optimizer graph reads them). */
  stateTensors(): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = {};
    for (const [name, data] of this.state)
      feeds[name] = { data, dims: this.dims.get(this.stateOwner.get(name)!)! };
    return feeds;
  }

  /** A state tensor's live values. */
  stateValues(name: string): Float32Array {
    return this.state.get(name)!;
  }

  /** The current state as a checkpoint (copies). */
  checkpointState(metadata?: Record<string, string>): CheckpointState {
    const state: Record<string, HostTensor> = {};
    for (const [name, data] of this.state) {
      state[name] = { data: data.slice(), dims: [...this.dims.get(this.stateOwner.get(name)!)!] };
    }
    return {
      parameters: this.copyParameters(),
      optimizer: { config: this.manifest.optimizer, step: this.step, state },
      ...(metadata ? { metadata } : {}),
    };
  }

  /**
   * The current state as a checkpoint whose tensors are views of this store (no copy); valid until the
   * store changes, so the caller must neither write nor keep them.
   */
  checkpointViews(): CheckpointState {
    return {
      parameters: this.parameterViews(),
      optimizer: { config: this.manifest.optimizer, step: this.step, state: this.stateTensors() },
    };
  }

  /** Zeroes the optimizer state and the step, parameters unchanged (an optimizer's first update next). */
  resetOptimizerState(): void {
    for (const s of this.state.values()) s.fill(0);
    this.step = 0;
    this.resetGradients();
  }

  /**
   * Rewrites the optimizer state so that the next update is this step's own gradient g preconditioned by
   * the run's second moments, with no momentum (a trial update that measures what this gradient does, not
   * where the run was already heading). AdamW: m ← 0, v ← v̂·(1 − β2)/β2 with v̂ = v/(1 − β2^T) the run's
   * bias-corrected second moment, step ← 0; the update at t = 1 is then lr·g/(√(v̂ + g²) + ε) (and the
   * decoupled weight decay). Before any update (v = 0) that is a fresh first step. SGD: momentum ← 0,
   * step ← 0, i.e. a plain gradient step. Parameters unchanged; gradients dropped.
   */
  preconditionOptimizerState(): void {
    const resolved = resolveOptimizerConfig(this.manifest.optimizer);
    for (const [name, data] of this.state) {
      if (resolved.type === 'adamw' && name.endsWith('.exp_avg_sq')) {
        const beta2 = resolved.betas[1];
        const T = this.step;
        const scale = T > 0 ? (1 - beta2) / beta2 / (1 - Math.pow(beta2, T)) : 0;
        for (let i = 0; i < data.length; i++) data[i] = Math.fround(data[i] * scale);
      } else data.fill(0);
    }
    this.step = 0;
    this.resetGradients();
  }

  /** Puts a checkpoint's parameters, optimizer state and step in place; gradients are dropped. */
  applyCheckpoint(state: CheckpointState, what: string): void {
    checkCheckpointFits(
      state,
      { parameters: this.manifest.parameters, optimizer: this.manifest.optimizer },
      what,
    );
    for (const p of this.manifest.parameters) {
      this.params.get(p.name)!.set(float32Data(state.parameters[p.name], `parameter '${p.name}'`));
      for (const s of optimizerStateNames(this.manifest.optimizer)) {
        const key = stateTensorName(p.name, s);
        this.state.get(key)!.set(float32Data(state.optimizer.state[key], `optimizer state '${key}'`));
      }
    }
    this.step = state.optimizer.step;
    this.resetGradients();
  }

  /**
   * Copies parameters, optimizer state and step into `into` (when it fits) or new arrays; `into` as it is
   * when it already holds this very state (same version: e.g. the trial updates of phase 2, restored
   * after each, leave the state unchanged between them).
   */
  snapshot(into?: TrainingSnapshot): TrainingSnapshot {
    const reuse = into && this.fits(into) ? into : undefined;
    if (reuse && reuse.version === this.version) return reuse;
    const copies = this.storage.map((a, i) => (reuse ? reuse.arrays[i] : new Float32Array(a.length)));
    this.storage.forEach((a, i) => copies[i].set(a));
    return { step: this.step, arrays: copies, version: this.version };
  }

  /** Puts back what `snapshot` copied; gradients are dropped. */
  restore(snapshot: TrainingSnapshot): void {
    if (!this.fits(snapshot)) {
      throw new RlpkdError('restore: the snapshot was taken from a session with other parameters', {
        hint: 'restore a snapshot into the session (or one on the same artifacts) that made it',
      });
    }
    this.storage.forEach((a, i) => a.set(snapshot.arrays[i]));
    this.step = snapshot.step;
    this.version = snapshot.version;
    this.resetGradients();
  }

  private fits(snapshot: TrainingSnapshot): boolean {
    return (
      snapshot.arrays.length === this.storage.length &&
      this.storage.every((a, i) => a.length === snapshot.arrays[i].length)
    );
  }

  /** The next gradients written replace the held ones instead of adding to them. */
  resetGradients(): void {
    this.gradientsStale = true;
  }

  /** True when gradients were computed since the last reset. */
  get hasGradients(): boolean {
    return !this.gradientsStale && Object.keys(this.manifest.gradients).length > 0;
  }

  /** Bytes of one set of gradients (float32, every parameter that gets one). */
  get gradientBytes(): number {
    return this.blocks.reduce((n, b) => n + 4 * b.group.size, 0);
  }

  /** Parameter → its gradient's view, allocating the gradient blocks on first use. */
  gradientViews(): Map<string, Float32Array> {
    const views = new Map<string, Float32Array>();
    for (const block of this.blocks) {
      if (!block.grad) this.attachGradient(block, new Float32Array(block.group.size));
      for (const [p, v] of block.gradViews!) views.set(p, v);
    }
    return views;
  }

  /**
   * Adds one run's gradients (parameter → values) to the held ones, or replaces them after a reset; after a
   * reset, parameters the run has no gradient for (a graph pruned to some pyramid levels) start from zero.
   */
  accumulateGradients(grads: ReadonlyMap<string, Float32Array>): void {
    const views = this.gradientViews();
    for (const [param, g] of grads) {
      const acc = views.get(param);
      if (!acc) {
        throw new RlpkdError(`gradients for '${param}', which is not a trained parameter of this session`, {
          hint: 'accumulate gradients of a graph over (a subset of) the same parameters',
        });
      }
      if (acc.length !== g.length) {
        throw new RlpkdError(
          `the gradient of '${param}' has ${g.length} values, the parameter ${acc.length}`,
        );
      }
      if (this.gradientsStale) acc.set(g);
      else for (let i = 0; i < acc.length; i++) acc[i] += g[i];
    }
    if (this.gradientsStale) for (const [param, acc] of views) if (!grads.has(param)) acc.fill(0);
    this.gradientsStale = false;
  }

  /** Marks the gradient blocks as holding this step's gradients (written there by a graph). */
  gradientsWritten(): void {
    this.gradientsStale = false;
  }

  /** Copies of the held gradients (parameters the loss does not reach have none; none after a reset). */
  copyGradients(): Record<string, HostTensor> {
    if (this.gradientsStale) return {};
    const views = this.gradientViews();
    const out: Record<string, HostTensor> = {};
    for (const p of this.manifest.parameters) {
      const g = views.get(p.name);
      if (g) out[p.name] = { data: g.slice(), dims: [...p.dims] };
    }
    return out;
  }

  /** Global 2-norm of the held gradients, summed in float64 in the manifest's gradient order. */
  gradientNorm(): number {
    const views = this.gradientViews();
    let sum = 0;
    for (const param of Object.keys(this.manifest.gradients)) {
      const g = views.get(param)!;
      for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
    }
    return Math.sqrt(sum);
  }

  /** Multiplies the held gradients by `coef` in place (clipping, as PyTorch's clip_grad_norm_ does). */
  scaleGradients(coef: number): void {
    for (const g of this.gradientViews().values()) for (let i = 0; i < g.length; i++) g[i] *= coef;
  }
}
