/**
 * Optimizer updates as graphs of standard ONNX ops (replacing onnxruntime-training's contrib
 * AdamWOptimizer/SGDOptimizerV2): parameters, gradients and moments in, updated tensors out. The learning
 * rate and the step are graph inputs, so schedules and bias correction need no rebuild. Semantics follow
 * PyTorch 1.13 (`torch.optim.AdamW`, `torch.optim.SGD`, `clip_grad_norm_`).
 */
import { RlpkdError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { DataType, type OnnxModel } from '../onnx/types';

/** PyTorch AdamW: decoupled weight decay p·(1−lr·wd), bias-corrected moments, eps added outside the sqrt. */
export interface AdamWConfig {
  type: 'adamw';
  /** Base learning rate (default 1e-3); a schedule scales from it. */
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Default 1e-2, as in PyTorch. */
  weightDecay?: number;
  /** Parameters exempt from weight decay (e.g. biases). */
  noWeightDecay?: string[];
}

/** PyTorch SGD: L2 weight decay added to the gradient, momentum buffer, optional dampening and Nesterov. */
export interface SgdConfig {
  type: 'sgd';
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  noWeightDecay?: string[];
}

export type OptimizerConfig = AdamWConfig | SgdConfig;

export type ResolvedAdamW = Required<AdamWConfig>;
export type ResolvedSgd = Required<SgdConfig>;
/** An optimizer configuration with every default filled in (what checkpoints and hashes record). */
export type ResolvedOptimizerConfig = ResolvedAdamW | ResolvedSgd;

/** Names of the scalar inputs of optimizer and fused-step graphs. */
export const OPTIMIZER_INPUTS = {
  /** float32 [] — learning rate of this step. */
  learningRate: 'optimizer.learning_rate',
  /** int64 [] — 1-based index of this update (AdamW bias correction, SGD's first momentum step). */
  step: 'optimizer.step',
  /** float32 [] — global gradient-norm bound of the fused graph (+Infinity: no clipping). */
  maxGradNorm: 'optimizer.max_grad_norm',
} as const;

/** Name of the fused graph's output holding the global gradient norm before clipping. */
export const GRAD_NORM_OUTPUT = 'optimizer.grad_norm';

/** A parameter the optimizer updates. */
export interface OptimizerParameter {
  name: string;
  dims: readonly number[];
}

/** Fills in PyTorch's defaults and checks ranges; errors name the bad field. */
export function resolveOptimizerConfig(config: OptimizerConfig): ResolvedOptimizerConfig {
  const bad = (msg: string): never => {
    throw new RlpkdError(`optimizer ${config.type}: ${msg}`);
  };
  const nonNegative = (v: number, what: string): void => {
    if (!(v >= 0) || !Number.isFinite(v)) bad(`${what} must be a finite number ≥ 0, got ${v}`);
  };
  if (config.type === 'adamw') {
    const r: ResolvedAdamW = {
      type: 'adamw',
      lr: config.lr ?? 1e-3,
      betas: [...(config.betas ?? [0.9, 0.999])] as [number, number],
      eps: config.eps ?? 1e-8,
      weightDecay: config.weightDecay ?? 1e-2,
      noWeightDecay: [...(config.noWeightDecay ?? [])],
    };
    nonNegative(r.lr, 'lr');
    nonNegative(r.eps, 'eps');
    nonNegative(r.weightDecay, 'weightDecay');
    r.betas.forEach((beta, i) => {
      if (!(beta >= 0 && beta < 1)) bad(`betas[${i}] must be in [0, 1), got ${beta}`);
    });
    return r;
  }
  if (config.type === 'sgd') {
    const r: ResolvedSgd = {
      type: 'sgd',
      lr: config.lr ?? 1e-3,
      momentum: config.momentum ?? 0,
      dampening: config.dampening ?? 0,
      nesterov: config.nesterov ?? false,
      weightDecay: config.weightDecay ?? 0,
      noWeightDecay: [...(config.noWeightDecay ?? [])],
    };
    nonNegative(r.lr, 'lr');
    nonNegative(r.momentum, 'momentum');
    nonNegative(r.weightDecay, 'weightDecay');
    if (!(r.dampening >= 0 && r.dampening <= 1)) bad(`dampening must be in [0, 1], got ${r.dampening}`);
    if (r.nesterov && (r.momentum <= 0 || r.dampening !== 0)) {
      bad('nesterov needs momentum > 0 and dampening 0 (as in PyTorch)');
    }
    return r;
  }
  throw new RlpkdError(`unknown optimizer '${(config as { type: string }).type}' (adamw | sgd)`);
}

/** Per-parameter state tensors an optimizer keeps, by PyTorch's state names. */
export function optimizerStateNames(config: ResolvedOptimizerConfig): string[] {
  if (config.type === 'adamw') return ['exp_avg', 'exp_avg_sq'];
  return config.momentum > 0 ? ['momentum_buffer'] : [];
}

/** Graph/checkpoint name of one parameter's state tensor, e.g. `conv.weight.exp_avg`. */
export function stateTensorName(parameter: string, state: string): string {
  return `${parameter}.${state}`;
}

/** Output name carrying the updated value of an input tensor. */
export function updatedName(name: string): string {
  return `${name}.updated`;
}

/** One parameter's tensors in an update being appended to a graph. */
export interface UpdateSlot {
  /** Parameter name (for weight-decay exclusion and error messages). */
  name: string;
  /** Tensor holding the parameter's current value. */
  param: string;
  /** Tensor holding its gradient. */
  grad: string;
  /** State name (exp_avg, ...) → tensor holding its current value. */
  state: Record<string, string>;
}

/** The tensors an appended update produces. */
export interface UpdateResult {
  params: string[];
  /** Per slot: state name → updated tensor. */
  states: Record<string, string>[];
}

function constDouble(b: GraphBuilder, value: number, base: string): string {
  return b.initializer({ name: base, dataType: DataType.DOUBLE, dims: [], data: Float64Array.of(value) });
}

/**
 * Appends the optimizer update for `slots` to `b`, reading the scalar learning rate (float32 []) and step
 * (int64 []) tensors. Scalars derived from them (bias corrections, step size, decay factor) are computed
 * in float64, as PyTorch computes them in Python, and cast to float32 once.
 */
export function appendOptimizerUpdate(
  b: GraphBuilder,
  slots: readonly UpdateSlot[],
  config: ResolvedOptimizerConfig,
  scalars: { learningRate: string; step: string },
  outputName: (tensor: string) => string = updatedName,
): UpdateResult {
  const noDecay = new Set(config.noWeightDecay);
  const lrD = b.op('Cast', [scalars.learningRate], { to: DataType.DOUBLE }, { name: 'optimizer/lr_f64' });
  const toFloat = (x: string, name: string): string => b.op('Cast', [x], { to: DataType.FLOAT }, { name });
  const f = (v: number, base: string): string => b.constFloat(v, [], base);
  const params: string[] = [];
  const states: Record<string, string>[] = [];

  if (config.type === 'adamw') {
    const [beta1, beta2] = config.betas;
    const one = constDouble(b, 1, 'optimizer/one_f64');
    const t = b.op('Cast', [scalars.step], { to: DataType.DOUBLE }, { name: 'optimizer/step_f64' });
    const bc1 = b.op('Sub', [one, b.op('Pow', [constDouble(b, beta1, 'optimizer/beta1_f64'), t])]);
    const bc2 = b.op('Sub', [one, b.op('Pow', [constDouble(b, beta2, 'optimizer/beta2_f64'), t])]);
    const negStepSize = toFloat(b.op('Neg', [b.op('Div', [lrD, bc1])]), 'optimizer/neg_step_size');
    const bc2Sqrt = toFloat(b.op('Sqrt', [bc2]), 'optimizer/bias_correction2_sqrt');
    const decay =
      config.weightDecay !== 0
        ? toFloat(
            b.op('Sub', [one, b.op('Mul', [lrD, constDouble(b, config.weightDecay, 'optimizer/wd_f64')])]),
            'optimizer/decay',
          )
        : undefined;
    const beta1F = f(beta1, 'optimizer/beta1');
    const oneMinusBeta1 = f(1 - beta1, 'optimizer/one_minus_beta1');
    const beta2F = f(beta2, 'optimizer/beta2');
    const oneMinusBeta2 = f(1 - beta2, 'optimizer/one_minus_beta2');
    const eps = f(config.eps, 'optimizer/eps');
    for (const s of slots) {
      const m = s.state.exp_avg;
      const v = s.state.exp_avg_sq;
      if (!m || !v) throw new RlpkdError(`AdamW update of '${s.name}': exp_avg and exp_avg_sq are required`);
      const p1 = decay && !noDecay.has(s.name) ? b.op('Mul', [s.param, decay]) : s.param;
      const m1 = b.op('Add', [b.op('Mul', [m, beta1F]), b.op('Mul', [s.grad, oneMinusBeta1])]);
      const g2 = b.op('Mul', [s.grad, s.grad]);
      const v1 = b.op('Add', [b.op('Mul', [v, beta2F]), b.op('Mul', [g2, oneMinusBeta2])]);
      const denom = b.op('Add', [b.op('Div', [b.op('Sqrt', [v1]), bc2Sqrt]), eps]);
      const p2 = b.op('Add', [p1, b.op('Mul', [b.op('Div', [m1, denom]), negStepSize])]);
      params.push(b.op('Identity', [p2], {}, { outputs: [outputName(s.param)] }));
      states.push({
        exp_avg: b.op('Identity', [m1], {}, { outputs: [outputName(m)] }),
        exp_avg_sq: b.op('Identity', [v1], {}, { outputs: [outputName(v)] }),
      });
    }
    return { params, states };
  }

  const negLr = toFloat(b.op('Neg', [lrD]), 'optimizer/neg_lr');
  const wd = config.weightDecay !== 0 ? f(config.weightDecay, 'optimizer/weight_decay') : undefined;
  const momentum = config.momentum > 0 ? f(config.momentum, 'optimizer/momentum') : undefined;
  // PyTorch's first momentum step sets buf = d_p (no dampening); later steps buf = μ·buf + (1−τ)·d_p.
  const firstStep =
    momentum && config.dampening !== 0
      ? b.op('Equal', [scalars.step, b.constInt64(1, [], 'optimizer/one_i64')])
      : undefined;
  const oneMinusDampening = firstStep ? f(1 - config.dampening, 'optimizer/one_minus_dampening') : undefined;
  for (const s of slots) {
    let d = wd && !noDecay.has(s.name) ? b.op('Add', [s.grad, b.op('Mul', [s.param, wd])]) : s.grad;
    const st: Record<string, string> = {};
    if (momentum) {
      const buf = s.state.momentum_buffer;
      if (!buf) throw new RlpkdError(`SGD update of '${s.name}': momentum_buffer is required`);
      const decayed = b.op('Mul', [buf, momentum]);
      let buf1: string;
      if (firstStep && oneMinusDampening) {
        buf1 = b.op('Where', [firstStep, d, b.op('Add', [decayed, b.op('Mul', [d, oneMinusDampening])])]);
      } else buf1 = b.op('Add', [decayed, d]);
      st.momentum_buffer = b.op('Identity', [buf1], {}, { outputs: [outputName(buf)] });
      d = config.nesterov ? b.op('Add', [d, b.op('Mul', [buf1, momentum])]) : buf1;
    }
    const p1 = b.op('Add', [s.param, b.op('Mul', [d, negLr])]);
    params.push(b.op('Identity', [p1], {}, { outputs: [outputName(s.param)] }));
    states.push(st);
  }
  return { params, states };
}

/**
 * Appends the global 2-norm of `grads` (float32 sum of each tensor's ReduceSumSquare), the norm that
 * clipping uses; host-side updates read it from the graph so they clip exactly as the fused graph does.
 */
export function appendGlobalNorm(b: GraphBuilder, grads: readonly string[]): string {
  if (grads.length === 0) throw new RlpkdError('gradient norm: no gradients');
  const squares = grads.map((g) => b.op('ReduceSumSquare', [g], { keepdims: 0 }));
  const total = squares.length === 1 ? squares[0] : b.op('Sum', squares);
  return b.op('Sqrt', [total], {}, { name: 'clip/norm' });
}

/**
 * Appends PyTorch's `clip_grad_norm_` (2-norm over all gradients; coefficient min(max/(norm+1e-6), 1)
 * applied to every gradient). A bound of +Infinity leaves gradients unchanged. Returns the clipped
 * gradients and the norm before clipping.
 */
export function appendGlobalNormClip(
  b: GraphBuilder,
  grads: readonly string[],
  maxNorm: string,
): { grads: string[]; norm: string } {
  const norm = appendGlobalNorm(b, grads);
  const coef = b.op('Min', [
    b.op('Div', [maxNorm, b.op('Add', [norm, b.constFloat(1e-6, [], 'clip/eps')])]),
    b.constFloat(1, [], 'clip/one'),
  ]);
  return { grads: grads.map((g) => b.op('Mul', [g, coef])), norm };
}

/**
 * A standalone optimizer graph: inputs learning rate, step, then per parameter the parameter, its
 * gradient (`<p>_grad`) and its state tensors (`<p>.exp_avg`, ...); outputs `<name>.updated` for each
 * parameter and state tensor.
 */
export function buildOptimizerModel(
  parameters: readonly OptimizerParameter[],
  config: OptimizerConfig,
  options: { opset?: number; gradName?: (parameter: string) => string } = {},
): OnnxModel {
  const resolved = resolveOptimizerConfig(config);
  const gradName = options.gradName ?? ((p: string) => `${p}_grad`);
  const b = new GraphBuilder({ name: `${resolved.type}_optimizer`, opset: options.opset });
  const lr = b.input(OPTIMIZER_INPUTS.learningRate, DataType.FLOAT, []);
  const step = b.input(OPTIMIZER_INPUTS.step, DataType.INT64, []);
  const stateNames = optimizerStateNames(resolved);
  const slots: UpdateSlot[] = parameters.map((p) => {
    const dims = [...p.dims];
    const state: Record<string, string> = {};
    for (const s of stateNames) state[s] = b.input(stateTensorName(p.name, s), DataType.FLOAT, dims);
    return {
      name: p.name,
      param: b.input(p.name, DataType.FLOAT, dims),
      grad: b.input(gradName(p.name), DataType.FLOAT, dims),
      state,
    };
  });
  const result = appendOptimizerUpdate(b, slots, resolved, { learningRate: lr, step });
  parameters.forEach((p, i) => {
    b.output(result.params[i], DataType.FLOAT, [...p.dims]);
    for (const s of stateNames) b.output(result.states[i][s], DataType.FLOAT, [...p.dims]);
  });
  b.metadata['rlpkd.optimizer'] = JSON.stringify(resolved);
  return b.build();
}
