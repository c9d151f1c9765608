/**
 * Training checkpoints as ONNX files: a graph without nodes whose initializers are the trainable
 * parameters, the optimizer's per-parameter state (`<p>.exp_avg`, ...) and the step count, with a
 * metadata manifest (format version, optimizer name and hyperparameters). Any ONNX tool can open one; the
 * parameters keep their model names, so weights can be read back with nothing but an ONNX reader.
 */
import { InputFileError, RlpkdError } from '../errors';
import { loadModel, saveModel } from '../onnx/model-io';
import { DataType, type OnnxModel, type OnnxTensor } from '../onnx/types';
import type { HostTensor } from '../runtime/tensors';
import {
  optimizerStateNames,
  resolveOptimizerConfig,
  stateTensorName,
  type OptimizerConfig,
  type ResolvedOptimizerConfig,
} from './optimizers';
import { float32Data } from './tensor-checks';

/** Version of the checkpoint layout this code writes (and the newest it reads). */
export const CHECKPOINT_FORMAT_VERSION = 1;

/** Initializer holding the number of optimizer steps taken (int64 scalar). */
export const CHECKPOINT_STEP_TENSOR = 'optimizer.step';

const META = {
  format: 'rlpkd.checkpoint.format',
  optimizer: 'rlpkd.checkpoint.optimizer',
  parameters: 'rlpkd.checkpoint.parameters',
  optimizerState: 'rlpkd.checkpoint.optimizer_state',
  userPrefix: 'user.',
} as const;

/** Everything needed to resume training: parameters, optimizer state and step, plus user metadata. */
export interface CheckpointState {
  /** Parameter name → float32 value, in the training graph's parameter order. */
  parameters: Record<string, HostTensor>;
  optimizer: {
    config: ResolvedOptimizerConfig;
    /** Optimizer steps taken so far (the next update is step + 1). */
    step: number;
    /** `<parameter>.<state name>` → float32 value. */
    state: Record<string, HostTensor>;
  };
  /** Free-form strings saved with the checkpoint (epoch, run id, ...). */
  metadata?: Record<string, string>;
  /**
   * Saved without optimizer state (a lighter file): read back, `optimizer.state` is all zeros, which is
   * enough to evaluate or export the parameters but not to continue training as if never stopped.
   */
  optimizerStateOmitted?: boolean;
}

/** The state to save without its optimizer moments (about 1/3 the size for AdamW). */
export function withoutOptimizerState(state: CheckpointState): CheckpointState {
  return { ...state, optimizer: { ...state.optimizer, state: {} }, optimizerStateOmitted: true };
}

/** The expected layout of a checkpoint: parameter names and shapes, and the optimizer. */
export interface CheckpointLayout {
  parameters: readonly { name: string; dims: readonly number[] }[];
  optimizer: OptimizerConfig;
}

/** A fresh checkpoint for `parameters`: optimizer state zero, step 0. */
export function initialCheckpoint(
  parameters: Record<string, HostTensor>,
  optimizer: OptimizerConfig,
): CheckpointState {
  const config = resolveOptimizerConfig(optimizer);
  const state: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(parameters)) {
    for (const s of optimizerStateNames(config)) {
      state[stateTensorName(name, s)] = { data: new Float32Array(t.data.length), dims: [...t.dims] };
    }
  }
  return { parameters, optimizer: { config, step: 0, state } };
}

/** The checkpoint as an ONNX model (no nodes; everything is an initializer). */
export function checkpointToModel(state: CheckpointState): OnnxModel {
  const initializers: OnnxTensor[] = [];
  const add = (name: string, t: HostTensor, what: string): void => {
    initializers.push({
      name,
      dataType: DataType.FLOAT,
      dims: [...t.dims],
      data: float32Data(t, `checkpoint: ${what}`),
    });
  };
  for (const [name, t] of Object.entries(state.parameters)) add(name, t, `parameter '${name}'`);
  if (!state.optimizerStateOmitted)
    for (const [name, t] of Object.entries(state.optimizer.state)) add(name, t, `optimizer state '${name}'`);
  if (!Number.isSafeInteger(state.optimizer.step) || state.optimizer.step < 0) {
    throw new RlpkdError(`checkpoint: step must be a non-negative integer, got ${state.optimizer.step}`);
  }
  initializers.push({
    name: CHECKPOINT_STEP_TENSOR,
    dataType: DataType.INT64,
    dims: [],
    data: BigInt64Array.of(BigInt(state.optimizer.step)),
  });
  const metadata: Record<string, string> = {
    [META.format]: String(CHECKPOINT_FORMAT_VERSION),
    [META.optimizer]: JSON.stringify(state.optimizer.config),
    [META.parameters]: JSON.stringify(Object.keys(state.parameters)),
    ...(state.optimizerStateOmitted ? { [META.optimizerState]: 'omitted' } : {}),
  };
  for (const [k, v] of Object.entries(state.metadata ?? {})) metadata[`${META.userPrefix}${k}`] = v;
  return {
    irVersion: 8,
    opsetImports: [{ domain: '', version: 17 }],
    producerName: 'rl-pyramidkd',
    producerVersion: '',
    domain: '',
    modelVersion: 0,
    docString: 'rl-pyramidkd training checkpoint: parameters, optimizer state and step as initializers',
    // The step is also a graph output: ONNX readers (ours included) reject a graph without nodes or outputs.
    graph: {
      name: 'rlpkd_checkpoint',
      nodes: [],
      initializers,
      inputs: [],
      outputs: [{ name: CHECKPOINT_STEP_TENSOR, dataType: DataType.INT64, shape: [] }],
      valueInfo: [],
    },
    metadata,
  };
}

/** Reads a checkpoint back from its ONNX form; `what` names the source in errors. */
export function checkpointFromModel(model: OnnxModel, what: string): CheckpointState {
  const notCheckpoint = (why: string): never => {
    throw new InputFileError(`${what} is not an rl-pyramidkd checkpoint: ${why}`, {
      hint: 'pass a file written by TrainingSession.saveCheckpoint or generateArtifacts (checkpoint.onnx)',
    });
  };
  const format = model.metadata[META.format];
  if (format === undefined) notCheckpoint(`metadata '${META.format}' is missing`);
  if (Number(format) > CHECKPOINT_FORMAT_VERSION || !(Number(format) >= 1)) {
    throw new InputFileError(
      `${what} has checkpoint format ${format}; this version reads formats 1..${CHECKPOINT_FORMAT_VERSION}`,
      { hint: 'upgrade rl-pyramidkd to read it' },
    );
  }
  let config: ResolvedOptimizerConfig;
  let parameterNames: string[];
  try {
    config = resolveOptimizerConfig(JSON.parse(model.metadata[META.optimizer] ?? 'null') as OptimizerConfig);
    parameterNames = JSON.parse(model.metadata[META.parameters] ?? 'null') as string[];
    if (!Array.isArray(parameterNames)) throw new Error('parameter list missing');
  } catch (err) {
    return notCheckpoint(`unreadable metadata (${(err as Error).message})`);
  }
  const byName = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const tensor = (name: string): HostTensor => {
    const t = byName.get(name);
    if (!t) return notCheckpoint(`tensor '${name}' is missing`);
    if (t.dataType !== DataType.FLOAT) return notCheckpoint(`tensor '${name}' is not float32`);
    return { data: t.data, dims: [...t.dims] };
  };
  const omitted = model.metadata[META.optimizerState] === 'omitted';
  const parameters: Record<string, HostTensor> = {};
  const state: Record<string, HostTensor> = {};
  for (const name of parameterNames) {
    const p = tensor(name);
    parameters[name] = p;
    for (const s of optimizerStateNames(config)) {
      const key = stateTensorName(name, s);
      state[key] = omitted ? { data: new Float32Array(p.data.length), dims: [...p.dims] } : tensor(key);
    }
  }
  const stepTensor = byName.get(CHECKPOINT_STEP_TENSOR);
  if (!stepTensor || stepTensor.dataType !== DataType.INT64)
    notCheckpoint(`int64 '${CHECKPOINT_STEP_TENSOR}' is missing`);
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(model.metadata)) {
    if (k.startsWith(META.userPrefix)) metadata[k.slice(META.userPrefix.length)] = v;
  }
  return {
    parameters,
    optimizer: { config, step: Number((stepTensor!.data as BigInt64Array)[0]), state },
    ...(Object.keys(metadata).length ? { metadata } : {}),
    ...(omitted ? { optimizerStateOmitted: true } : {}),
  };
}

/** Writes a checkpoint atomically (temporary file + rename), so a crash never leaves half a file. */
export function saveCheckpoint(file: string, state: CheckpointState): void {
  saveModel(checkpointToModel(state), file);
}

/** Reads a checkpoint file. */
export function loadCheckpoint(file: string): CheckpointState {
  return checkpointFromModel(loadModel(file), `'${file}'`);
}

/**
 * Checks that a checkpoint fits a session's parameters and optimizer; throws one error listing every
 * missing, unexpected or differently shaped parameter. Differing hyperparameters of the same optimizer
 * are allowed (the session's apply).
 */
export function checkCheckpointFits(state: CheckpointState, layout: CheckpointLayout, what: string): void {
  const problems: string[] = [];
  const expected = new Map(layout.parameters.map((p) => [p.name, p.dims]));
  const missing = layout.parameters.map((p) => p.name).filter((n) => !(n in state.parameters));
  const unexpected = Object.keys(state.parameters).filter((n) => !expected.has(n));
  const list = (names: string[]): string =>
    names
      .slice(0, 5)
      .map((n) => `'${n}'`)
      .join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');
  if (missing.length) problems.push(`missing parameters ${list(missing)}`);
  if (unexpected.length) problems.push(`parameters the session does not train: ${list(unexpected)}`);
  for (const [name, dims] of expected) {
    const t = state.parameters[name];
    if (t && (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i]))) {
      problems.push(
        `'${name}' is [${t.dims.join(', ')}] in the checkpoint but [${dims.join(', ')}] in the session`,
      );
    }
  }
  const want = resolveOptimizerConfig(layout.optimizer);
  if (want.type !== state.optimizer.config.type) {
    problems.push(`it holds ${state.optimizer.config.type} state but the session uses ${want.type}`);
  } else {
    for (const name of expected.keys()) {
      if (!(name in state.parameters)) continue;
      for (const s of optimizerStateNames(want)) {
        const key = stateTensorName(name, s);
        const t = state.optimizer.state[key];
        if (!t || t.data.length !== state.parameters[name].data.length)
          problems.push(`optimizer state '${key}' is missing or mis-sized`);
      }
    }
  }
  if (problems.length) {
    throw new RlpkdError(`${what} does not fit this training session: ${problems.join('; ')}`, {
      hint: 'load a checkpoint saved from the same model, trainable set and optimizer (or regenerate the artifacts)',
    });
  }
}
