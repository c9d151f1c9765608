/**
 * The policy as ONNX graphs built with GraphBuilder, so it trains through the engine and runs unchanged in
 * onnxruntime-web. One parameter set, three graphs:
 * - step graph: one decision step for a batch of environments in one run (sequential: an LSTM cell fed
 *   the state, the previous decision, h, c and the level's one-hot; independent: an MLP giving all L
 *   logits at once);
 * - sequence graph: whole episodes in one run, the LSTM unrolled over the L levels with the stored
 *   previous decisions fed back (teacher forcing), for `evaluateActions` and the PPO loss;
 * - deploy graph: the step graph with the state normalization baked in (for the browser).
 * The unrolled steps use exactly the step graph's ops on [batch, ·] tensors, so both produce the same
 * float32 logits for the same inputs.
 */
import { RlpkdError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { floatTensor } from '../onnx/tensor-data';
import { DataType, type OnnxModel } from '../onnx/types';
import type { Rng } from '../util/rng';
import { orthogonalMatrix } from './init';

/** The policy's shape and kind. */
export interface PolicyArchitecture {
  /** 'sequential': an LSTM decides level by level; 'independent': an MLP gives all levels at once. */
  mode: 'sequential' | 'independent';
  stateDim: number;
  numLevels: number;
  /** LSTM hidden size (sequential) or MLP width (independent); 256 by default. */
  hiddenSize: number;
  /** Sequential: width of the Linear+Tanh state encoder in front of the LSTM (default hiddenSize). */
  encoderSize?: number;
  /** Independent: number of hidden Linear+Tanh layers (default 2). */
  mlpLayers?: number;
  /** How each LSTM step knows its level: a one-hot input, or a learned embedding (default 'onehot'). */
  levelEmbedding?: 'onehot' | 'learned';
  /** Size of the learned level embedding (default 16). */
  embeddingDim?: number;
}

/** A named float32 parameter, row-major. */
export interface PolicyParameter {
  name: string;
  dims: number[];
  data: Float32Array;
}

/** Where the graphs read the parameters from. */
export type ParameterBinding = 'initializers' | 'inputs';

/** Names of the step graph's tensors (stable: the browser runtime uses them). */
export const STEP_IO = {
  state: 'state',
  prevAction: 'prev_action',
  h: 'h',
  c: 'c',
  levelOneHot: 'level_onehot',
  logits: 'logits',
  value: 'value',
  hOut: 'h_out',
  cOut: 'c_out',
} as const;

/** Names of the sequence graph's tensors. */
export const SEQUENCE_IO = {
  states: 'states',
  prevActions: 'prev_actions',
  h0: 'h0',
  c0: 'c0',
  logits: 'logits',
  values: 'values',
} as const;

/** The architecture with every default filled in. */
export function resolveArchitecture(arch: PolicyArchitecture): Required<PolicyArchitecture> {
  const r: Required<PolicyArchitecture> = {
    mode: arch.mode,
    stateDim: arch.stateDim,
    numLevels: arch.numLevels,
    hiddenSize: arch.hiddenSize,
    encoderSize: arch.encoderSize ?? arch.hiddenSize,
    mlpLayers: arch.mlpLayers ?? 2,
    levelEmbedding: arch.levelEmbedding ?? 'onehot',
    embeddingDim: arch.embeddingDim ?? 16,
  };
  if (r.mode !== 'sequential' && r.mode !== 'independent') {
    throw new RlpkdError(`policy mode must be 'sequential' or 'independent', got '${String(r.mode)}'`);
  }
  for (const k of [
    'stateDim',
    'numLevels',
    'hiddenSize',
    'encoderSize',
    'mlpLayers',
    'embeddingDim',
  ] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 1)
      throw new RlpkdError(`policy ${k} must be a positive integer, got ${r[k]}`);
  }
  if (r.levelEmbedding !== 'onehot' && r.levelEmbedding !== 'learned') {
    throw new RlpkdError(
      `policy levelEmbedding must be 'onehot' or 'learned', got '${String(r.levelEmbedding)}'`,
    );
  }
  return r;
}

/** Steps per episode and decisions per step of a policy. */
export function episodeLayout(arch: PolicyArchitecture): { steps: number; decisions: number } {
  return arch.mode === 'sequential'
    ? { steps: arch.numLevels, decisions: 1 }
    : { steps: 1, decisions: arch.numLevels };
}

interface ParamSpec {
  name: string;
  dims: number[];
}

/** Names and shapes of the parameters, in a fixed order. */
export function policyParameterSpecs(archIn: PolicyArchitecture): ParamSpec[] {
  const a = resolveArchitecture(archIn);
  const { stateDim: D, numLevels: L, hiddenSize: H } = a;
  if (a.mode === 'sequential') {
    const E = a.encoderSize;
    const specs: ParamSpec[] = [
      { name: 'encoder.weight', dims: [D, E] },
      { name: 'encoder.bias', dims: [E] },
      { name: 'lstm.weight', dims: [E + 1 + H, 4 * H] },
      { name: 'lstm.bias', dims: [4 * H] },
    ];
    if (a.levelEmbedding === 'learned') {
      specs.push({ name: 'level_embedding', dims: [L, a.embeddingDim] });
      specs.push({ name: 'lstm.level_weight', dims: [a.embeddingDim, 4 * H] });
    } else {
      specs.push({ name: 'lstm.level_weight', dims: [L, 4 * H] });
    }
    specs.push(
      { name: 'actor.weight', dims: [H, 1] },
      { name: 'actor.bias', dims: [1] },
      { name: 'critic.weight', dims: [H, 1] },
      { name: 'critic.bias', dims: [1] },
    );
    return specs;
  }
  const specs: ParamSpec[] = [];
  let width = D;
  for (let i = 0; i < a.mlpLayers; i++) {
    specs.push({ name: `mlp.${i}.weight`, dims: [width, H] }, { name: `mlp.${i}.bias`, dims: [H] });
    width = H;
  }
  specs.push(
    { name: 'actor.weight', dims: [H, L] },
    { name: 'actor.bias', dims: [L] },
    { name: 'critic.weight', dims: [H, 1] },
    { name: 'critic.bias', dims: [1] },
  );
  return specs;
}

/**
 * Fresh parameters: orthogonal weights (gain √2 for the Tanh encoder/MLP layers, 1 for the LSTM's input
 * and recurrent blocks, 0.01 for the action head so the first policy is near p = 0.5, 1 for the value
 * head), zero biases, N(0, 1) level embeddings.
 */
export function initPolicyParameters(archIn: PolicyArchitecture, rng: Rng): PolicyParameter[] {
  const a = resolveArchitecture(archIn);
  const H = a.hiddenSize;
  // The LSTM's input block (encoder output, previous decision and the level rows kept in
  // lstm.level_weight) and its recurrent block are each orthogonal with gain 1, as PyTorch's
  // weight_ih / weight_hh.
  const E = a.encoderSize;
  const levelRows = a.levelEmbedding === 'learned' ? a.embeddingDim : a.numLevels;
  const lstm =
    a.mode === 'sequential'
      ? {
          ih: orthogonalMatrix(E + 1 + levelRows, 4 * H, 1, rng.fork('lstm.ih')),
          hh: orthogonalMatrix(H, 4 * H, 1, rng.fork('lstm.hh')),
        }
      : undefined;
  return policyParameterSpecs(a).map((spec) => {
    const size = spec.dims.reduce((x, y) => x * y, 1);
    let data: Float32Array;
    if (spec.dims.length === 1) data = new Float32Array(size);
    else if (spec.name === 'level_embedding') data = rng.fork(spec.name).fillNormal(new Float32Array(size));
    else if (spec.name === 'lstm.weight' && lstm) {
      data = new Float32Array(size);
      data.set(lstm.ih.subarray(0, (E + 1) * 4 * H), 0);
      data.set(lstm.hh, (E + 1) * 4 * H);
    } else if (spec.name === 'lstm.level_weight' && lstm) {
      data = lstm.ih.slice((E + 1) * 4 * H);
    } else {
      const gain = spec.name.startsWith('actor.') ? 0.01 : spec.name.startsWith('critic.') ? 1 : Math.SQRT2;
      data = orthogonalMatrix(spec.dims[0], spec.dims[1], gain, rng.fork(spec.name));
    }
    return { name: spec.name, dims: spec.dims, data };
  });
}

/** Checks that a parameter set matches the architecture (names, order-independent; shapes). */
export function checkPolicyParameters(arch: PolicyArchitecture, params: readonly PolicyParameter[]): void {
  const byName = new Map(params.map((p) => [p.name, p]));
  for (const spec of policyParameterSpecs(arch)) {
    const p = byName.get(spec.name);
    if (!p) throw new RlpkdError(`policy parameter '${spec.name}' is missing`);
    const size = spec.dims.reduce((x, y) => x * y, 1);
    if (p.dims.join(',') !== spec.dims.join(',') || p.data.length !== size) {
      throw new RlpkdError(
        `policy parameter '${spec.name}' has shape [${p.dims.join(', ')}], the architecture needs [${spec.dims.join(', ')}]`,
      );
    }
  }
}

/** Adds the parameters to a builder (as initializers or graph inputs) and returns name → tensor name. */
export function emitPolicyParameters(
  b: GraphBuilder,
  params: readonly PolicyParameter[],
  binding: ParameterBinding,
): Map<string, string> {
  const names = new Map<string, string>();
  for (const p of params) {
    if (binding === 'initializers') {
      names.set(p.name, b.initializer(floatTensor(p.name, p.dims, p.data), { exactName: true }));
    } else {
      names.set(p.name, b.input(p.name, DataType.FLOAT, p.dims));
    }
  }
  return names;
}

/** Tensor names of the parameters inside a graph under construction. */
type ParamNames = Map<string, string>;

function param(names: ParamNames, name: string): string {
  const n = names.get(name);
  if (!n) throw new RlpkdError(`policy graph: parameter '${name}' was not emitted`);
  return n;
}

/** Sequential cell: one LSTM step for a batch. Returns logit [B,1], value [B,1], h' and c' [B,H]. */
function emitCell(
  b: GraphBuilder,
  a: Required<PolicyArchitecture>,
  p: ParamNames,
  x: string,
  prev: string,
  h: string,
  c: string,
  levelOneHot: string,
  prefix: string,
): { logit: string; value: string; h: string; c: string } {
  const H = a.hiddenSize;
  const n = (s: string): { name: string } => ({ name: `${prefix}${s}` });
  const enc = b.op(
    'Tanh',
    [b.op('Gemm', [x, param(p, 'encoder.weight'), param(p, 'encoder.bias')], {}, n('encoder'))],
    {},
    n('encoder_tanh'),
  );
  const z = b.op('Concat', [enc, prev, h], { axis: 1 }, n('lstm_input'));
  let levelRow: string;
  if (a.levelEmbedding === 'learned') {
    const e = b.op('MatMul', [levelOneHot, param(p, 'level_embedding')], {}, n('level_embed'));
    levelRow = b.op('MatMul', [e, param(p, 'lstm.level_weight')], {}, n('level_gates'));
  } else {
    levelRow = b.op('MatMul', [levelOneHot, param(p, 'lstm.level_weight')], {}, n('level_gates'));
  }
  const gates = b.op(
    'Add',
    [b.op('Gemm', [z, param(p, 'lstm.weight'), param(p, 'lstm.bias')], {}, n('lstm_gemm')), levelRow],
    {},
    n('lstm_gates'),
  );
  const splits = b.constInt64([H, H, H, H], [4], `${prefix}gate_sizes`);
  const [gi, gf, gg, go] = b.node('Split', [gates, splits], { axis: 1 }, { ...n('gate_split'), outputs: 4 });
  const i = b.op('Sigmoid', [gi], {}, n('input_gate'));
  const f = b.op('Sigmoid', [gf], {}, n('forget_gate'));
  const g = b.op('Tanh', [gg], {}, n('cell_candidate'));
  const o = b.op('Sigmoid', [go], {}, n('output_gate'));
  const c2 = b.op(
    'Add',
    [b.op('Mul', [f, c], {}, n('keep')), b.op('Mul', [i, g], {}, n('write'))],
    {},
    n('cell'),
  );
  const h2 = b.op('Mul', [o, b.op('Tanh', [c2], {}, n('cell_tanh'))], {}, n('hidden'));
  const logit = b.op('Gemm', [h2, param(p, 'actor.weight'), param(p, 'actor.bias')], {}, n('actor'));
  const value = b.op('Gemm', [h2, param(p, 'critic.weight'), param(p, 'critic.bias')], {}, n('critic'));
  return { logit, value, h: h2, c: c2 };
}

/** Independent MLP: logits [B,L] and value [B,1] from a batch of states [B,D]. */
function emitMlp(
  b: GraphBuilder,
  a: Required<PolicyArchitecture>,
  p: ParamNames,
  x: string,
): { logits: string; value: string } {
  let hidden = x;
  for (let i = 0; i < a.mlpLayers; i++) {
    const pre = b.op(
      'Gemm',
      [hidden, param(p, `mlp.${i}.weight`), param(p, `mlp.${i}.bias`)],
      {},
      { name: `mlp${i}` },
    );
    hidden = b.op('Tanh', [pre], {}, { name: `mlp${i}_tanh` });
  }
  const logits = b.op(
    'Gemm',
    [hidden, param(p, 'actor.weight'), param(p, 'actor.bias')],
    {},
    { name: 'actor' },
  );
  const value = b.op(
    'Gemm',
    [hidden, param(p, 'critic.weight'), param(p, 'critic.bias')],
    {},
    { name: 'critic' },
  );
  return { logits, value };
}

/** Optional state normalization baked into a graph: clip((x − mean)·invStd, ±clip). */
export interface BakedNormalization {
  mean: ArrayLike<number>;
  invStd: ArrayLike<number>;
  clip: number;
}

function emitNormalization(b: GraphBuilder, x: string, norm: BakedNormalization, D: number): string {
  const mean = b.constFloat(Float32Array.from(norm.mean), [1, D], 'obs_mean');
  const inv = b.constFloat(Float32Array.from(norm.invStd), [1, D], 'obs_inv_std');
  const lo = b.constFloat(-norm.clip, [], 'obs_clip_min');
  const hi = b.constFloat(norm.clip, [], 'obs_clip_max');
  const z = b.op('Mul', [b.op('Sub', [x, mean], {}, { name: 'obs_center' }), inv], {}, { name: 'obs_scale' });
  return b.op('Clip', [z, lo, hi], {}, { name: 'obs_clip' });
}

export interface StepGraphOptions {
  binding?: ParameterBinding;
  /** Bake the normalization in (deploy graph); otherwise the graph takes normalized states. */
  normalization?: BakedNormalization;
}

/** The one-decision-step graph (see module doc). */
export function buildPolicyStepGraph(
  archIn: PolicyArchitecture,
  params: readonly PolicyParameter[],
  options: StepGraphOptions = {},
): OnnxModel {
  const a = resolveArchitecture(archIn);
  checkPolicyParameters(a, params);
  const { stateDim: D, numLevels: L, hiddenSize: H } = a;
  const b = new GraphBuilder({ name: `rlpkd_policy_${a.mode}_step` });
  const rawState = b.input(STEP_IO.state, DataType.FLOAT, ['batch', D]);
  const p = emitPolicyParameters(b, params, options.binding ?? 'initializers');
  const state = options.normalization ? emitNormalization(b, rawState, options.normalization, D) : rawState;
  if (a.mode === 'sequential') {
    const prev = b.input(STEP_IO.prevAction, DataType.FLOAT, ['batch', 1]);
    const h = b.input(STEP_IO.h, DataType.FLOAT, ['batch', H]);
    const c = b.input(STEP_IO.c, DataType.FLOAT, ['batch', H]);
    const level = b.input(STEP_IO.levelOneHot, DataType.FLOAT, [1, L]);
    const cell = emitCell(b, a, p, state, prev, h, c, level, '');
    b.op('Identity', [cell.logit], {}, { name: 'logits_out', outputs: [STEP_IO.logits] });
    b.op('Identity', [cell.value], {}, { name: 'value_out', outputs: [STEP_IO.value] });
    b.op('Identity', [cell.h], {}, { name: 'h_out_id', outputs: [STEP_IO.hOut] });
    b.op('Identity', [cell.c], {}, { name: 'c_out_id', outputs: [STEP_IO.cOut] });
    b.output(STEP_IO.logits, DataType.FLOAT, ['batch', 1]);
    b.output(STEP_IO.value, DataType.FLOAT, ['batch', 1]);
    b.output(STEP_IO.hOut, DataType.FLOAT, ['batch', H]);
    b.output(STEP_IO.cOut, DataType.FLOAT, ['batch', H]);
  } else {
    const mlp = emitMlp(b, a, p, state);
    b.op('Identity', [mlp.logits], {}, { name: 'logits_out', outputs: [STEP_IO.logits] });
    b.op('Identity', [mlp.value], {}, { name: 'value_out', outputs: [STEP_IO.value] });
    b.output(STEP_IO.logits, DataType.FLOAT, ['batch', L]);
    b.output(STEP_IO.value, DataType.FLOAT, ['batch', 1]);
  }
  b.metadata['rlpkd.policy.mode'] = a.mode;
  return b.build();
}

/** Tensor names of an emitted sequence forward. */
export interface SequenceTensors {
  /** [M, L] logits, decision order (sequential: one per step; independent: all of the single step). */
  logits: string;
  /** [M, S] values, one per step. */
  values: string;
}

/**
 * Emits the whole-episode forward into `b` given tensor names of its inputs: states [M, S, D] (normalized),
 * and for the sequential mode prev_actions [M, L] (the stored decision of the previous level, 0 first),
 * h0 and c0 [M, H]. Used by the sequence graph and by the PPO loss graph.
 */
export function emitPolicySequence(
  b: GraphBuilder,
  archIn: PolicyArchitecture,
  p: Map<string, string>,
  inputs: { states: string; prevActions?: string; h0?: string; c0?: string },
): SequenceTensors {
  const a = resolveArchitecture(archIn);
  const { stateDim: D, numLevels: L } = a;
  if (a.mode === 'independent') {
    const x = b.op(
      'Reshape',
      [inputs.states, b.constInt64([-1, D], [2], 'state_rows')],
      {},
      { name: 'states_2d' },
    );
    const mlp = emitMlp(b, a, p, x);
    return { logits: mlp.logits, values: mlp.value };
  }
  if (!inputs.prevActions || !inputs.h0 || !inputs.c0) {
    throw new RlpkdError('emitPolicySequence: the sequential policy needs prev_actions, h0 and c0');
  }
  const stateSteps = b.node(
    'Split',
    [inputs.states, b.constInt64(new Array<number>(L).fill(1), [L], 'step_sizes')],
    { axis: 1 },
    {
      name: 'split_states',
      outputs: L,
    },
  );
  const prevSteps = b.node(
    'Split',
    [inputs.prevActions, b.constInt64(new Array<number>(L).fill(1), [L], 'prev_sizes')],
    { axis: 1 },
    { name: 'split_prev', outputs: L },
  );
  const rowShape = b.constInt64([-1, D], [2], 'state_rows');
  let h = inputs.h0;
  let c = inputs.c0;
  const logits: string[] = [];
  const values: string[] = [];
  for (let t = 0; t < L; t++) {
    const x = b.op('Reshape', [stateSteps[t], rowShape], {}, { name: `t${t}_state` });
    const onehot = b.constFloat(
      Array.from({ length: L }, (_, j) => (j === t ? 1 : 0)),
      [1, L],
      `level_onehot_${t}`,
    );
    const cell = emitCell(b, a, p, x, prevSteps[t], h, c, onehot, `t${t}_`);
    logits.push(cell.logit);
    values.push(cell.value);
    h = cell.h;
    c = cell.c;
  }
  return {
    logits: b.op('Concat', logits, { axis: 1 }, { name: 'logits_concat' }),
    values: b.op('Concat', values, { axis: 1 }, { name: 'values_concat' }),
  };
}

/** Declares the sequence graph's inputs in `b` and returns their names. */
export function declareSequenceInputs(
  b: GraphBuilder,
  archIn: PolicyArchitecture,
): { states: string; prevActions?: string; h0?: string; c0?: string } {
  const a = resolveArchitecture(archIn);
  const { steps } = episodeLayout(a);
  const states = b.input(SEQUENCE_IO.states, DataType.FLOAT, ['episodes', steps, a.stateDim]);
  if (a.mode === 'independent') return { states };
  return {
    states,
    prevActions: b.input(SEQUENCE_IO.prevActions, DataType.FLOAT, ['episodes', a.numLevels]),
    h0: b.input(SEQUENCE_IO.h0, DataType.FLOAT, ['episodes', a.hiddenSize]),
    c0: b.input(SEQUENCE_IO.c0, DataType.FLOAT, ['episodes', a.hiddenSize]),
  };
}

/** The whole-episode graph: states (+ prev_actions, h0, c0) → logits [M, L], values [M, S]. */
export function buildPolicySequenceGraph(
  archIn: PolicyArchitecture,
  params: readonly PolicyParameter[],
  options: { binding?: ParameterBinding } = {},
): OnnxModel {
  const a = resolveArchitecture(archIn);
  checkPolicyParameters(a, params);
  const b = new GraphBuilder({ name: `rlpkd_policy_${a.mode}_sequence` });
  const inputs = declareSequenceInputs(b, a);
  const p = emitPolicyParameters(b, params, options.binding ?? 'initializers');
  const seq = emitPolicySequence(b, a, p, inputs);
  const { steps } = episodeLayout(a);
  b.op('Identity', [seq.logits], {}, { name: 'logits_out', outputs: [SEQUENCE_IO.logits] });
  b.op('Identity', [seq.values], {}, { name: 'values_out', outputs: [SEQUENCE_IO.values] });
  b.output(SEQUENCE_IO.logits, DataType.FLOAT, ['episodes', a.numLevels]);
  b.output(SEQUENCE_IO.values, DataType.FLOAT, ['episodes', steps]);
  return b.build();
}
