/**
 * PolicyNetwork: the level-selection policy. The network is an ONNX graph run by onnxruntime (one run
 * per decision step for a whole batch of environments, one run per batch of stored episodes when
 * re-evaluating); the distribution on top of its logits — Bernoulli on logits, budget masking and
 * `minLevels` forcing — is plain float64 TypeScript shared by sampling and evaluation, so a stored action
 * always carries the log-prob of the distribution it was drawn from. No stochastic layers: evaluating the
 * stored decisions right after a rollout reproduces the rollout's logits exactly.
 */
import { RlpkdError } from '../errors';
import { loadModel, saveModel } from '../onnx/model-io';
import { tensorValuesAsNumbers } from '../onnx/tensor-data';
import type { OnnxModel } from '../onnx/types';
import { createSession, type ExecutionProviderName, type GraphSession } from '../runtime/session';
import { Rng, type RngState, type Seed } from '../util/rng';
import { constrainedDecision, DecisionKind, DecisionTracker, type DecisionConstraints } from './bernoulli';
import {
  buildPolicySequenceGraph,
  buildPolicyStepGraph,
  checkPolicyParameters,
  episodeLayout,
  initPolicyParameters,
  policyParameterSpecs,
  resolveArchitecture,
  SEQUENCE_IO,
  STEP_IO,
  type PolicyArchitecture,
  type PolicyParameter,
} from './policy-graph';
import type { DeployLevel } from './deploy-state';
import type { PolicyStateKind, StateLevel } from './policy-state';
import { duplicateRows } from './row-padding';
import { RunningMeanStd, type RunningMeanStdState } from './running-mean-std';

/** Everything that defines a policy besides its weights. */
export interface PolicyConfig extends PolicyArchitecture {
  /** Level costs in decision order (for budget masking). */
  costs: readonly number[];
  /** At least this many levels per episode, enforced in the sampler (default 1). */
  minLevels?: number;
  /** Normalize states with running mean/std (default true). */
  normalizeStates?: boolean;
  /** The state kind it was trained on (policy-state.ts; absent: 'train'); only 'deploy' can be exported. */
  stateKind?: PolicyStateKind;
  /** 'deploy' state: the student's levels in decision order (names and graph outputs). */
  stateLevels?: DeployLevel[];
  /** 'deploy' state: the trunk tensors it pools (deploy-state.ts), so an export can check the student. */
  stateSources?: StateLevel[];
}

export interface PolicyOptions {
  /** Seed of the initial weights and of the sampling stream (default 0). */
  seed?: Seed;
  /** Start from these weights instead of a fresh orthogonal initialization. */
  parameters?: readonly PolicyParameter[];
  executionProvider?: ExecutionProviderName;
  /**
   * onnxruntime intra-op threads of the policy's sessions (default 1). With one thread every batch size
   * takes the same vectorized code path through Sigmoid/Tanh, so the logits of a rollout and of the PPO
   * update agree bit for bit (with several threads, partition boundaries move with the batch size and
   * MLAS's scalar tail code can differ from its SIMD code in the last bit). Keep the hidden size a
   * multiple of 16 for the same reason. The policy is small: one thread is also the fastest here.
   */
  intraOpNumThreads?: number;
}

/** Per-environment recurrent and constraint state of the episodes in progress. */
export interface PolicyMemory {
  numEnvs: number;
  /** Index of the next decision step (all environments run in lockstep). */
  step: number;
  /** [N, H] LSTM hidden state (sequential only). */
  h: Float32Array;
  /** [N, H] LSTM cell state (sequential only). */
  c: Float32Array;
  /** [N] previous decision (sequential only). */
  prev: Float32Array;
  /** [N] the episodes' budgets. */
  budgets: Float64Array;
  trackers: DecisionTracker[];
}

/** What `selectAction` decided for one step of every environment. */
export interface SelectActionResult {
  /** [N, A] 0/1 decisions (A = 1 sequential, L independent). */
  actions: Uint8Array;
  /** [N, A] DecisionKind of each decision. */
  kinds: Uint8Array;
  /** [N, A] the graph's logits. */
  logits: Float32Array;
  /** [N, A] P(a = 1) after masking: exactly 0 for a masked level, 1 for a forced one. */
  probs: Float64Array;
  /** [N] log π(actions) (Σ over the step's decisions; forced decisions add 0). */
  logProbs: Float64Array;
  /** [N] entropy of the step's distribution (forced decisions add 0). */
  entropy: Float64Array;
  /** [N] V(s). */
  values: Float64Array;
  /** [N, D] the states as fed to the graph (normalized). */
  states: Float32Array;
  /** The memory after this step (the same object, advanced). */
  memory: PolicyMemory;
}

/** Log-probs, entropies and values of stored episodes. */
export interface EvaluateActionsResult {
  /** [M, S] Σ of the step's decision log-probs. */
  logProbs: Float64Array;
  /** [M, S] Σ of the step's decision entropies. */
  entropy: Float64Array;
  /** [M, S] V(s). */
  values: Float64Array;
  /** [M, L] logits, decision order. */
  logits: Float32Array;
  /** [M, L] DecisionKind of each decision. */
  kinds: Uint8Array;
  /** [M, L] P(a = 1) after masking. */
  probs: Float64Array;
}

const METADATA_KEY = 'rlpkd.policy';

/**
 * Version of the policy file's metadata (config, normalizer statistics, sampling stream). Files written
 * before it was recorded hold the same fields and read as version 1.
 */
export const POLICY_FORMAT_VERSION = 1;

/** The metadata a saved policy carries. */
interface PolicyMetadata {
  version?: number;
  config: PolicyConfig;
  normalizer: RunningMeanStdState | null;
  rng: RngState;
}

/** The level-selection policy (see module doc). */
export class PolicyNetwork {
  readonly config: PolicyConfig;
  readonly arch: Required<PolicyArchitecture>;
  readonly constraints: DecisionConstraints;
  readonly normalizer: RunningMeanStd | null;
  /** Steps per episode (S) and decisions per step (A). */
  readonly layout: { steps: number; decisions: number };
  private params: PolicyParameter[];
  private rng: Rng;
  private stepSession: GraphSession | null = null;
  private seqSession: GraphSession | null = null;
  private readonly sessionOptions: Pick<PolicyOptions, 'executionProvider' | 'intraOpNumThreads'>;

  private constructor(config: PolicyConfig, options: PolicyOptions) {
    this.arch = resolveArchitecture(config);
    this.config = { ...config, costs: [...config.costs] };
    if (config.costs.length !== this.arch.numLevels) {
      throw new RlpkdError(
        `policy: costs has ${config.costs.length} entries, numLevels is ${this.arch.numLevels}`,
      );
    }
    const minLevels = config.minLevels ?? 1;
    if (!Number.isInteger(minLevels) || minLevels < 0 || minLevels > this.arch.numLevels) {
      throw new RlpkdError(
        `policy: minLevels must be an integer in 0..${this.arch.numLevels}, got ${minLevels}`,
      );
    }
    this.constraints = { costs: [...config.costs], minLevels };
    this.normalizer = config.normalizeStates === false ? null : new RunningMeanStd(this.arch.stateDim);
    this.layout = episodeLayout(this.arch);
    const root = new Rng(options.seed ?? 0);
    this.params = options.parameters
      ? options.parameters.map((p) => ({ name: p.name, dims: [...p.dims], data: Float32Array.from(p.data) }))
      : initPolicyParameters(this.arch, root.fork('policy-init'));
    checkPolicyParameters(this.arch, this.params);
    this.rng = root.fork('policy-sampling');
    this.sessionOptions = {
      executionProvider: options.executionProvider,
      intraOpNumThreads: options.intraOpNumThreads ?? 1,
    };
  }

  /** A policy with fresh (or given) weights. */
  static async create(config: PolicyConfig, options: PolicyOptions = {}): Promise<PolicyNetwork> {
    return new PolicyNetwork(config, options);
  }

  /** Copies of the current weights. */
  getParameters(): PolicyParameter[] {
    return this.params.map((p) => ({ name: p.name, dims: [...p.dims], data: Float32Array.from(p.data) }));
  }

  /** Replaces the weights (e.g. after an optimizer step); the sessions read them from the next run on. */
  async setParameters(params: readonly PolicyParameter[]): Promise<void> {
    checkPolicyParameters(this.arch, params);
    const byName = new Map(params.map((p) => [p.name, p]));
    this.params = this.params.map((p) => ({
      name: p.name,
      dims: [...p.dims],
      data: Float32Array.from(byName.get(p.name)!.data),
    }));
  }

  /** Execution provider and intra-op threads of the policy's sessions (trainers reuse them). */
  get runtimeOptions(): { executionProvider?: ExecutionProviderName; intraOpNumThreads: number } {
    return {
      ...(this.sessionOptions.executionProvider
        ? { executionProvider: this.sessionOptions.executionProvider }
        : {}),
      intraOpNumThreads: this.sessionOptions.intraOpNumThreads ?? 1,
    };
  }

  /** The sampling stream (exposed so trainers can checkpoint it). */
  get samplingRng(): Rng {
    return this.rng;
  }

  /** The step graph with the current weights as initializers (normalized-state input). */
  stepGraph(): OnnxModel {
    return buildPolicyStepGraph(this.arch, this.params);
  }

  /** The whole-episode graph with the current weights as initializers. */
  sequenceGraph(): OnnxModel {
    return buildPolicySequenceGraph(this.arch, this.params);
  }

  /**
   * Feeds of the weights. The policy's own sessions take the weights as graph inputs, exactly as the
   * engine's training graphs do: onnxruntime computes a Gemm with a constant (prepacked) weight in a
   * different summation order than with a weight input, so only this keeps a rollout's logits and the
   * PPO update's logits bit-identical. It also means new weights need no new session.
   */
  private parameterFeeds(): Record<string, { data: Float32Array; dims: number[] }> {
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const p of this.params) feeds[p.name] = { data: p.data, dims: p.dims };
    return feeds;
  }

  /** The deployable step graph: raw states in, normalization baked in, config and statistics as metadata. */
  exportForInference(): OnnxModel {
    const n = this.normalizer;
    const model = buildPolicyStepGraph(this.arch, this.params, {
      normalization: n
        ? { mean: n.mean, invStd: Array.from(n.var, (v) => 1 / Math.sqrt(v + n.epsilon)), clip: n.clip }
        : undefined,
    });
    const meta: PolicyMetadata = {
      version: POLICY_FORMAT_VERSION,
      config: this.config,
      normalizer: n ? n.toJSON() : null,
      rng: this.rng.getState(),
    };
    model.metadata[METADATA_KEY] = JSON.stringify(meta);
    return model;
  }

  /**
   * Writes the deployable graph (weights as initializers, config and statistics in its metadata): the
   * policy's one save format, used for exported policies and run checkpoints alike.
   */
  save(file: string): void {
    saveModel(this.exportForInference(), file);
  }

  /** Reads a policy written by `save` (weights, config, normalizer statistics, sampling stream). */
  static async load(
    file: string,
    options: Omit<PolicyOptions, 'parameters' | 'seed'> = {},
  ): Promise<PolicyNetwork> {
    return PolicyNetwork.fromModel(loadModel(file), options, `'${file}'`);
  }

  /** Restores a policy from `exportForInference()` output (what `save` writes); `source` names it in errors. */
  static async fromModel(
    model: OnnxModel,
    options: Omit<PolicyOptions, 'parameters' | 'seed'> = {},
    source = 'the model',
  ): Promise<PolicyNetwork> {
    const meta = model.metadata[METADATA_KEY];
    if (!meta) {
      throw new RlpkdError(
        `${source} is not a policy saved by rl-pyramidkd (no '${METADATA_KEY}' metadata)`,
        {
          hint: "pass the policy.onnx in a run's checkpoints/final/ folder (written by `rlpkd train`) or a file saved with PolicyNetwork.save",
        },
      );
    }
    const parsed = JSON.parse(meta) as PolicyMetadata;
    const version = parsed.version ?? 1;
    if (version !== POLICY_FORMAT_VERSION) {
      throw new RlpkdError(
        `${source} holds a policy of format ${version}; this rl-pyramidkd reads format ${POLICY_FORMAT_VERSION}`,
        { hint: 'load it with the rl-pyramidkd version that saved it (or a newer one)' },
      );
    }
    const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
    const arch = resolveArchitecture(parsed.config);
    const parameters = policyParameterSpecs(arch).map((spec) => {
      const t = inits.get(spec.name);
      if (!t) throw new RlpkdError(`${source}: policy parameter '${spec.name}' is missing`);
      return { name: spec.name, dims: [...t.dims], data: Float32Array.from(tensorValuesAsNumbers(t)) };
    });
    const policy = new PolicyNetwork(parsed.config, { ...options, parameters });
    if (parsed.normalizer && policy.normalizer) policy.normalizer.load(parsed.normalizer);
    policy.rng.setState(parsed.rng);
    return policy;
  }

  /** Memory for fresh episodes in `budgets.length` environments. */
  newMemory(budgets: ArrayLike<number>): PolicyMemory {
    const n = budgets.length;
    const H = this.arch.hiddenSize;
    const seq = this.arch.mode === 'sequential';
    const b = Float64Array.from(budgets);
    return {
      numEnvs: n,
      step: 0,
      h: new Float32Array(seq ? n * H : 0),
      c: new Float32Array(seq ? n * H : 0),
      prev: new Float32Array(seq ? n : 0),
      budgets: b,
      trackers: Array.from(b, (budget) => new DecisionTracker(this.constraints, budget)),
    };
  }

  /** Normalizes raw states with the current statistics (after merging them in when `update`). */
  normalizeStates(raw: Float32Array, update = false): Float32Array {
    if (raw.length % this.arch.stateDim !== 0) {
      throw new RlpkdError(
        `policy: ${raw.length} state values is not a multiple of stateDim ${this.arch.stateDim}`,
      );
    }
    if (!this.normalizer) return Float32Array.from(raw);
    if (update) this.normalizer.update(raw);
    return this.normalizer.normalize(raw);
  }

  /**
   * One decision step for a batch of environments: one graph run, then masking/forcing and sampling (or
   * the mode, when `deterministic`) in TypeScript. Sequential policies need the episodes' `memory`
   * (from `newMemory`, or created here from `budgets` at the first step); it is advanced in place.
   */
  async selectAction(
    states: Float32Array,
    options: {
      deterministic?: boolean;
      memory?: PolicyMemory;
      budgets?: ArrayLike<number>;
      /** Merge these states into the normalization statistics first (rollouts in training). */
      updateNormalizer?: boolean;
      /** The states are already normalized. */
      normalized?: boolean;
    } = {},
  ): Promise<SelectActionResult> {
    const N = this.stateRows(states, 'selectAction');
    const memory = options.memory ?? this.newMemory(options.budgets ?? new Float64Array(N).fill(Infinity));
    const seq = this.arch.mode === 'sequential';
    const { out, x } = await this.runStep(states, memory, {
      what: 'selectAction',
      normalized: options.normalized ?? false,
      updateNormalizer: options.updateNormalizer ?? false,
    });
    const logits = out[STEP_IO.logits].data as Float32Array;
    const valuesF = out[STEP_IO.value].data as Float32Array;
    const A = this.layout.decisions;
    const actions = new Uint8Array(N * A);
    const kinds = new Uint8Array(N * A);
    const probs = new Float64Array(N * A);
    const logProbs = new Float64Array(N);
    const entropy = new Float64Array(N);
    for (let e = 0; e < N; e++) {
      const tracker = memory.trackers[e];
      for (let j = 0; j < A; j++) {
        const i = e * A + j;
        const kind = tracker.nextKind();
        const z = logits[i];
        let a: number;
        if (kind === DecisionKind.ForcedOn) a = 1;
        else if (kind === DecisionKind.ForcedOff) a = 0;
        else if (options.deterministic) a = z > 0 ? 1 : 0;
        else a = this.rng.next() < constrainedDecision(z, 1, kind).probOne ? 1 : 0;
        const d = constrainedDecision(z, a, kind);
        actions[i] = a;
        kinds[i] = kind;
        probs[i] = d.probOne;
        logProbs[e] += d.logProb;
        entropy[e] += d.entropy;
        tracker.push(a);
      }
    }
    if (seq) {
      memory.h = Float32Array.from(out[STEP_IO.hOut].data as Float32Array);
      memory.c = Float32Array.from(out[STEP_IO.cOut].data as Float32Array);
      memory.prev = Float32Array.from(actions);
    }
    memory.step++;
    return {
      actions,
      kinds,
      logits: Float32Array.from(logits),
      probs,
      logProbs,
      entropy,
      values: Float64Array.from(valuesF),
      states: x,
      memory,
    };
  }

  /** V(s) for the current step of each environment, without deciding or advancing the memory. */
  async predictValues(
    states: Float32Array,
    memory?: PolicyMemory,
    normalized = false,
  ): Promise<Float64Array> {
    const N = this.stateRows(states, 'predictValues');
    const mem = memory ?? this.newMemory(new Float64Array(N).fill(Infinity));
    const { out } = await this.runStep(states, mem, {
      what: 'predictValues',
      normalized,
      updateNormalizer: false,
      fetches: [STEP_IO.value],
    });
    return Float64Array.from(out[STEP_IO.value].data);
  }

  /** N of N×stateDim states (an error naming `what` otherwise). */
  private stateRows(states: Float32Array, what: string): number {
    const D = this.arch.stateDim;
    const N = states.length / D;
    if (!Number.isInteger(N) || N < 1)
      throw new RlpkdError(`${what}: ${states.length} values is not N×${D} states`);
    return N;
  }

  /**
   * One run of the step graph at the memory's current step: the one feed building `selectAction` and
   * `predictValues` share (states — checked, then normalized unless they already are — and for the
   * sequential policy the previous decision, LSTM state and the step's level one-hot). Nothing changes,
   * the normalizer statistics included, when the input is rejected. `what` names the caller in errors.
   */
  private async runStep(
    states: Float32Array,
    memory: PolicyMemory,
    o: { what: string; normalized: boolean; updateNormalizer: boolean; fetches?: readonly string[] },
  ): Promise<{ out: Record<string, { data: Float32Array; dims: readonly number[] }>; x: Float32Array }> {
    const D = this.arch.stateDim;
    const L = this.arch.numLevels;
    const what = o.what;
    const N = this.stateRows(states, what);
    if (memory.numEnvs !== N)
      throw new RlpkdError(`${what}: memory is for ${memory.numEnvs} envs, got ${N} states`);
    if (memory.step >= this.layout.steps) {
      throw new RlpkdError(`${what}: the episodes' ${this.layout.steps} decision steps are done`, {
        hint: 'start the next episodes with policy.newMemory(budgets)',
      });
    }
    const x = o.normalized ? states : this.normalizeStates(states, o.updateNormalizer);
    const session = await this.getStepSession();
    const batchFeeds: Feeds = { [STEP_IO.state]: { data: x, dims: [N, D] } };
    const fixed: Feeds = this.parameterFeeds();
    if (this.arch.mode === 'sequential') {
      const H = this.arch.hiddenSize;
      const onehot = new Float32Array(L);
      onehot[memory.step] = 1;
      batchFeeds[STEP_IO.prevAction] = { data: memory.prev, dims: [N, 1] };
      batchFeeds[STEP_IO.h] = { data: memory.h, dims: [N, H] };
      batchFeeds[STEP_IO.c] = { data: memory.c, dims: [N, H] };
      fixed[STEP_IO.levelOneHot] = { data: onehot, dims: [1, L] };
    }
    return { out: await runRows(session, batchFeeds, fixed, N, o.fetches), x };
  }

  /**
   * Re-evaluates stored episodes in one graph run: states [M, S, D], actions [M, L] (decision order;
   * the sequential LSTM is fed the stored previous decisions), budgets [M] (default: unconstrained).
   */
  async evaluateActions(
    states: Float32Array,
    actions: ArrayLike<number>,
    options: { budgets?: ArrayLike<number>; normalized?: boolean } = {},
  ): Promise<EvaluateActionsResult> {
    const { steps: S, decisions: A } = this.layout;
    const D = this.arch.stateDim;
    const L = this.arch.numLevels;
    const M = states.length / (S * D);
    if (!Number.isInteger(M) || M < 1) {
      throw new RlpkdError(
        `evaluateActions: ${states.length} values is not M×${S}×${D} (episodes × steps × stateDim)`,
      );
    }
    if (actions.length !== M * L)
      throw new RlpkdError(`evaluateActions: expected ${M}×${L} actions, got ${actions.length}`);
    const budgets = options.budgets ?? new Float64Array(M).fill(Infinity);
    if (budgets.length !== M)
      throw new RlpkdError(`evaluateActions: expected ${M} budgets, got ${budgets.length}`);
    const x = options.normalized ? states : this.normalizeStates(states, false);
    const { logits, values } = await this.runSequence(x, actions, M);
    const logProbs = new Float64Array(M * S);
    const entropy = new Float64Array(M * S);
    const kinds = new Uint8Array(M * L);
    const probs = new Float64Array(M * L);
    for (let m = 0; m < M; m++) {
      const tracker = new DecisionTracker(this.constraints, budgets[m]);
      for (let k = 0; k < L; k++) {
        const i = m * L + k;
        const kind = tracker.nextKind();
        const d = constrainedDecision(logits[i], actions[i], kind);
        kinds[i] = kind;
        probs[i] = d.probOne;
        const s = Math.floor(k / A);
        logProbs[m * S + s] += d.logProb;
        entropy[m * S + s] += d.entropy;
        tracker.push(actions[i]);
      }
    }
    return { logProbs, entropy, values: Float64Array.from(values), logits, kinds, probs };
  }

  /** Runs the sequence graph on normalized states with teacher-forced previous decisions. */
  async runSequence(
    x: Float32Array,
    actions: ArrayLike<number>,
    M: number,
  ): Promise<{ logits: Float32Array; values: Float32Array }> {
    const { steps: S } = this.layout;
    const D = this.arch.stateDim;
    const L = this.arch.numLevels;
    const session = await this.getSequenceSession();
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
      [SEQUENCE_IO.states]: { data: x, dims: [M, S, D] },
    };
    if (this.arch.mode === 'sequential') {
      const H = this.arch.hiddenSize;
      feeds[SEQUENCE_IO.prevActions] = { data: previousDecisions(actions, M, L), dims: [M, L] };
      feeds[SEQUENCE_IO.h0] = { data: new Float32Array(M * H), dims: [M, H] };
      feeds[SEQUENCE_IO.c0] = { data: new Float32Array(M * H), dims: [M, H] };
    }
    const out = await runRows(session, feeds, this.parameterFeeds(), M);
    return {
      logits: Float32Array.from(out[SEQUENCE_IO.logits].data as Float32Array),
      values: Float32Array.from(out[SEQUENCE_IO.values].data as Float32Array),
    };
  }

  private async getStepSession(): Promise<GraphSession> {
    if (!this.stepSession) {
      const graph = buildPolicyStepGraph(this.arch, this.params, { binding: 'inputs' });
      this.stepSession = await createSession(graph, this.sessionOptions);
    }
    return this.stepSession;
  }

  private async getSequenceSession(): Promise<GraphSession> {
    if (!this.seqSession) {
      const graph = buildPolicySequenceGraph(this.arch, this.params, { binding: 'inputs' });
      this.seqSession = await createSession(graph, this.sessionOptions);
    }
    return this.seqSession;
  }

  private async releaseSessions(): Promise<void> {
    const s = [this.stepSession, this.seqSession];
    this.stepSession = null;
    this.seqSession = null;
    for (const x of s) if (x) await x.release();
  }

  /** Releases the onnxruntime sessions. */
  async release(): Promise<void> {
    await this.releaseSessions();
  }
}

type Feeds = Record<string, { data: Float32Array; dims: number[] }>;

/**
 * Runs a graph on `rows` batch rows. `batchFeeds` have the batch as their first dimension, `fixed` feeds
 * (weights, the level one-hot) do not. A single row is run as two identical rows and the first kept
 * (see row-padding.ts).
 */
async function runRows(
  session: GraphSession,
  batchFeeds: Feeds,
  fixed: Feeds,
  rows: number,
  fetches?: readonly string[],
): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  if (rows !== 1) {
    const out = await session.run({ ...batchFeeds, ...fixed }, fetches);
    return out as Record<string, { data: Float32Array; dims: readonly number[] }>;
  }
  const doubled: Feeds = {};
  for (const [k, v] of Object.entries(batchFeeds))
    doubled[k] = { data: duplicateRows(v.data), dims: [2, ...v.dims.slice(1)] };
  const out = await session.run({ ...doubled, ...fixed }, fetches);
  const first: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
  for (const [k, v] of Object.entries(out)) {
    const d = v.data as Float32Array;
    first[k] = { data: d.slice(0, d.length / 2), dims: [1, ...v.dims.slice(1)] };
  }
  return first;
}

/** prev[m, t] = actions[m, t − 1], 0 at t = 0: the teacher-forced LSTM input. */
export function previousDecisions(actions: ArrayLike<number>, M: number, L: number): Float32Array {
  const prev = new Float32Array(M * L);
  for (let m = 0; m < M; m++) for (let t = 1; t < L; t++) prev[m * L + t] = actions[m * L + t - 1] ? 1 : 0;
  return prev;
}
