/**
 * The adaptive student in a browser (or Node) on onnxruntime-web: per image, the trunk runs, the
 * policy decides from the deploy state which pyramid levels to compute, and only those level parts
 * run, then the task head on those levels (task-head.ts), decoded. The state and the decision
 * constraints are the training code's own (src/rl/policy-state.ts, src/rl/bernoulli.ts), so the deployed
 * policy sees exactly the state it was trained on; the decision is the policy's mode (a free level is
 * computed when its logit is > 0).
 */
import type * as OrtWeb from 'onnxruntime-web';
import { RlpkdError } from '../errors';
import { DecisionKind, DecisionTracker } from '../rl/bernoulli';
import { pooledStateFeatures, stateLayout, writeState, type StateLayout } from '../rl/policy-state';
import type { BundleLevel, BundleMeta } from './bundle-format';
import { readBundle, urlBundleReader, type BundleReader } from './bundle-source';
import { TaskHead, type HeadResult } from './task-head';
import {
  loadOrtWeb,
  wasmThreads,
  webEnvironment,
  type OrtWebModule,
  type WebExecutionProvider,
} from './ort-web';

/** How to load a bundle. */
export interface LoadOptions {
  /** 'wasm' (default) or 'webgpu' (when the browser offers an adapter). */
  executionProvider?: WebExecutionProvider;
  /** wasm threads (default: min(4, cores) on a cross-origin isolated page, else 1). */
  numThreads?: number;
  /** Where onnxruntime-web's .wasm files are (default: beside the script that loaded it). */
  wasmPaths?: string;
}

/** A dense float tensor. */
export interface FloatTensor {
  data: Float32Array;
  dims: number[];
}

/** One level's decision, in decision order. */
export interface LevelDecision {
  level: string;
  /** The policy's logit (NaN for a level the caller forced). */
  logit: number;
  /** 'free': the logit decided; 'forced-on'/'forced-off': the budget or minLevels did. */
  kind: 'free' | 'forced-on' | 'forced-off';
  selected: boolean;
}

/** Milliseconds spent in each part of one image's inference. */
export interface PartTimes {
  trunk: number;
  /** Pooling the trunk tensors into the state (all steps). */
  state: number;
  /** The policy's graph runs (all steps). */
  policy: number;
  /** Each computed level part, by level name. */
  levels: Record<string, number>;
  /** The task head: its parts (by level), merge and decoding (all 0 without a head). */
  head: { parts: Record<string, number>; merge: number; decode: number };
  total: number;
}

/** What one image's adaptive inference gives. */
export interface AdaptiveResult {
  /** Computed levels, in the student's output order (finest first). */
  levels: string[];
  decisions: LevelDecision[];
  /** Feature maps of the computed levels [1, C, H, W], by level name. */
  features: Record<string, FloatTensor>;
  times: PartTimes;
  /** MACs run (trunk + computed parts), of the full pyramid, and the share saved. */
  macs: { used: number; total: number; saved: number };
  /**
   * The task head on the computed levels, decoded (detections, label map or top classes), with its raw
   * outputs, times and MACs; null when the bundle has no head.
   */
  task: HeadResult | null;
}

/** Options of one image's inference. */
export interface RunOptions {
  /** Budget as a share of the full pyramid's level costs (default 1: every level affordable). */
  budget?: number;
  /** Compute these levels instead of asking the policy (a baseline, or timing a fixed selection). */
  levels?: readonly string[];
}

const KIND_NAMES: Record<DecisionKind, LevelDecision['kind']> = {
  [DecisionKind.Free]: 'free',
  [DecisionKind.ForcedOn]: 'forced-on',
  [DecisionKind.ForcedOff]: 'forced-off',
};

type Session = OrtWeb.InferenceSession;
type OrtTensor = OrtWeb.Tensor;

const now = (): number => globalThis.performance.now();

/** A loaded bundle: sessions for the trunk, each level part and the policy (see module doc). */
export class AdaptiveModel {
  private readonly layout: StateLayout;

  private constructor(
    private readonly ort: OrtWebModule,
    readonly meta: BundleMeta,
    readonly executionProvider: WebExecutionProvider,
    readonly numThreads: number,
    private readonly trunk: Session,
    private readonly parts: Map<string, Session>,
    private readonly policy: Session,
    private readonly head: TaskHead | undefined,
  ) {
    const order = meta.policy.decisionOrder;
    this.layout = stateLayout(
      'deploy',
      order.map((name) => ({ name, stride: 1, channels: 1 })),
      meta.state.sources.map((s) => ({
        name: s.name,
        channels: s.channels,
        // Only the coarsest source's position matters to the layout (it is pooled twice).
        stride: s.name === meta.state.coarsest ? 2 : 1,
      })),
    );
    if (this.layout.dim !== meta.state.dim || this.layout.coarsest.name !== meta.state.coarsest) {
      throw new RlpkdError(
        `meta.json's state layout (${meta.state.dim} values) is not the deploy state of its sources (${this.layout.dim})`,
        { hint: 'export the bundle again' },
      );
    }
  }

  /**
   * Loads a bundle from a base URL (its folder, served) or a reader, checks it (bundle-source.ts) and
   * opens its sessions.
   */
  static async load(source: string | BundleReader, options: LoadOptions = {}): Promise<AdaptiveModel> {
    const { meta, files } = await readBundle(typeof source === 'string' ? urlBundleReader(source) : source);
    const env = webEnvironment();
    const ep = options.executionProvider ?? 'wasm';
    if (ep === 'webgpu' && !env.webgpu) {
      throw new RlpkdError('WebGPU was asked for, but this environment has no navigator.gpu', {
        hint: 'use the wasm execution provider, or a browser with WebGPU enabled',
      });
    }
    const threads = wasmThreads(env, options.numThreads);
    const ort = await loadOrtWeb();
    ort.env.wasm.numThreads = threads;
    if (options.wasmPaths !== undefined) ort.env.wasm.wasmPaths = options.wasmPaths;
    const open = async (file: string): Promise<Session> => {
      try {
        return await ort.InferenceSession.create(files.get(file)!, {
          executionProviders: [ep],
          graphOptimizationLevel: 'all',
        });
      } catch (err) {
        throw new RlpkdError(`onnxruntime-web (${ep}) could not load '${file}': ${(err as Error).message}`, {
          hint: ep === 'webgpu' ? 'try the wasm execution provider' : 'export the bundle again',
          cause: err,
        });
      }
    };
    const trunk = await open(meta.trunk.file);
    const parts = new Map<string, Session>();
    for (const l of meta.levels) parts.set(l.name, await open(l.file));
    const policy = await open(meta.policy.file);
    let head: TaskHead | undefined;
    if (meta.head) {
      const headParts = new Map<string, Session>();
      for (const p of meta.head.parts) headParts.set(p.level, await open(p.file));
      const merge = meta.head.merge ? await open(meta.head.merge.file) : undefined;
      head = new TaskHead(ort, meta.head, meta, headParts, merge);
    }
    return new AdaptiveModel(ort, meta, ep, threads, trunk, parts, policy, head);
  }

  /** One image's adaptive inference: `input` is [1, 3, H, W] (preprocessImage / imageToInput). */
  async run(input: Float32Array, options: RunOptions = {}): Promise<AdaptiveResult> {
    const { meta } = this;
    const { height: H, width: W } = meta.input;
    if (input.length !== 3 * H * W) {
      throw new RlpkdError(`the input has ${input.length} values, the student takes [1, 3, ${H}, ${W}]`);
    }
    const start = now();
    const image = new this.ort.Tensor('float32', input, [1, 3, H, W]);
    let t = now();
    const trunkOut = await this.trunk.run({ [meta.input.name]: image });
    const trunkMs = now() - t;
    const tensors: Record<string, FloatTensor> = {};
    for (const [k, v] of Object.entries(trunkOut))
      tensors[k] = { data: v.data as Float32Array, dims: [...v.dims] };

    const decided = options.levels
      ? this.fixedDecisions(options.levels)
      : await this.decide(tensors, options.budget ?? 1);

    const levelMs: Record<string, number> = {};
    const features: Record<string, FloatTensor> = {};
    const chosen = meta.levels.filter((l) => decided.decisions.find((d) => d.level === l.name)!.selected);
    for (const level of chosen) {
      t = now();
      features[level.name] = await this.runPart(level, tensors, image);
      levelMs[level.name] = now() - t;
    }
    const used = meta.trunk.macs + chosen.reduce((n, l) => n + l.macs, 0);
    const task = this.head ? await this.head.run(features) : null;
    return {
      levels: chosen.map((l) => l.name),
      decisions: decided.decisions,
      features,
      times: {
        trunk: trunkMs,
        state: decided.stateMs,
        policy: decided.policyMs,
        levels: levelMs,
        head: task?.times ?? { parts: {}, merge: 0, decode: 0 },
        total: now() - start,
      },
      macs: { used, total: meta.totalMacs, saved: meta.totalMacs > 0 ? 1 - used / meta.totalMacs : 0 },
      task,
    };
  }

  /** Runs one level part on the trunk tensors (and the image, for a part that reads it). */
  private async runPart(
    level: BundleLevel,
    tensors: Record<string, FloatTensor>,
    image: OrtTensor,
  ): Promise<FloatTensor> {
    const feeds: Record<string, OrtTensor> = {};
    for (const name of level.inputs) {
      const t = tensors[name];
      feeds[name] = t ? new this.ort.Tensor('float32', t.data, t.dims) : image;
    }
    const out = (await this.parts.get(level.name)!.run(feeds))[level.output];
    return { data: out.data as Float32Array, dims: [...out.dims] };
  }

  /** The caller's selection as decisions (no policy run). */
  private fixedDecisions(levels: readonly string[]): {
    decisions: LevelDecision[];
    stateMs: number;
    policyMs: number;
  } {
    const known = this.meta.levels.map((l) => l.name);
    const unknown = levels.filter((l) => !known.includes(l));
    if (unknown.length > 0 || levels.length === 0) {
      throw new RlpkdError(`levels [${levels.join(', ')}] are not a selection of the bundle's levels`, {
        hint: `levels: ${known.join(', ')}`,
      });
    }
    const decisions = this.meta.policy.decisionOrder.map((level): LevelDecision => ({
      level,
      logit: Number.NaN,
      kind: levels.includes(level) ? 'forced-on' : 'forced-off',
      selected: levels.includes(level),
    }));
    return { decisions, stateMs: 0, policyMs: 0 };
  }

  /** The policy's decisions on the deploy state (one step per level, or one for every level). */
  private async decide(
    tensors: Record<string, FloatTensor>,
    budget: number,
  ): Promise<{ decisions: LevelDecision[]; stateMs: number; policyMs: number }> {
    const { policy: p } = this.meta;
    const L = p.decisionOrder.length;
    const D = this.layout.dim;
    let t = now();
    const pooled = pooledStateFeatures(this.layout, tensors, 1);
    let stateMs = now() - t;
    let policyMs = 0;
    const tracker = new DecisionTracker({ costs: p.costs, minLevels: p.minLevels }, budget);
    const selected = new Float32Array(L);
    const decisions: LevelDecision[] = [];
    const state = new Float32Array(D);
    const stateTensor = (): OrtTensor => {
      const s = now();
      writeState(this.layout, pooled, { loss: 0, selected, budgetLeft: budget - tracker.usedCost }, 0, state);
      stateMs += now() - s;
      return new this.ort.Tensor('float32', Float32Array.from(state), [1, D]);
    };
    const decideOne = (k: number, logit: number): void => {
      const kind = tracker.nextKind();
      const a = kind === DecisionKind.ForcedOn ? 1 : kind === DecisionKind.ForcedOff ? 0 : logit > 0 ? 1 : 0;
      tracker.push(a);
      selected[k] = a;
      decisions.push({ level: p.decisionOrder[k], logit, kind: KIND_NAMES[kind], selected: a === 1 });
    };
    if (p.mode === 'independent') {
      const feeds = { [p.io.state]: stateTensor() };
      t = now();
      const logits = (await this.policy.run(feeds))[p.io.logits].data as Float32Array;
      policyMs += now() - t;
      for (let k = 0; k < L; k++) decideOne(k, logits[k]);
    } else {
      const H = p.hiddenSize;
      let h = new Float32Array(H);
      let c = new Float32Array(H);
      let prev = 0;
      for (let k = 0; k < L; k++) {
        const onehot = new Float32Array(L);
        onehot[k] = 1;
        const feeds = {
          [p.io.state]: stateTensor(),
          [p.io.prevAction!]: new this.ort.Tensor('float32', Float32Array.of(prev), [1, 1]),
          [p.io.h!]: new this.ort.Tensor('float32', h, [1, H]),
          [p.io.c!]: new this.ort.Tensor('float32', c, [1, H]),
          [p.io.levelOneHot!]: new this.ort.Tensor('float32', onehot, [1, L]),
        };
        t = now();
        const out = await this.policy.run(feeds);
        policyMs += now() - t;
        h = Float32Array.from(out[p.io.hOut!].data as Float32Array);
        c = Float32Array.from(out[p.io.cOut!].data as Float32Array);
        decideOne(k, (out[p.io.logits].data as Float32Array)[0]);
        prev = selected[k];
      }
    }
    return { decisions, stateMs, policyMs };
  }

  /** Releases every session. */
  async release(): Promise<void> {
    await Promise.all([this.trunk, this.policy, ...this.parts.values()].map((s) => s.release()));
    await this.head?.release();
  }
}
