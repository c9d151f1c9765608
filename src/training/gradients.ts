/**
 * One gradient evaluation of a plain regression loss, L = Σ_outputs mean((output − target)²), with
 * respect to every trainable parameter: what `rlpkd grad` writes so users can compare the engine with
 * PyTorch autograd on the same graph. One forward + backward run of one gradient-graph session.
 */
import { buildGradientGraph } from '../autodiff/gradient-graph';
import { classifyParameters } from '../analysis/parameters';
import { GraphError, RlpkdError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { inferShapes } from '../onnx/shape-inference';
import { untieSharedInitializersDetailed } from '../onnx/shared-initializers';
import { DataType, type Dim, type OnnxModel, type TensorData } from '../onnx/types';
import {
  createSession,
  type ExecutionProviderName,
  type ResolvedExecutionProvider,
} from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import { moveInitializersToInputs, pruneToOutputs } from './graph-edit';
import { mseLoss } from './losses';
import { sameDims } from './tensor-checks';

/** What to differentiate: data inputs, a target per regressed output, and optionally the parameters. */
export interface ComputeGradientsOptions {
  /** Every graph input that is not an initializer, by name. */
  inputs: Record<string, HostTensor>;
  /** Output name → target of the same shape; the loss sums one MSE term per entry. */
  targets: Record<string, HostTensor>;
  /** Only 'mse' for now (the default). */
  loss?: 'mse';
  /**
   * Initializers to differentiate by (a name that untying replaced stands for all its copies). Default:
   * the trainable set of `classifyParameters` (Conv/Gemm/MatMul weights and biases).
   */
  parameters?: readonly string[];
  /** Give each consumer of a shared parameter initializer its own copy (default true, as training does). */
  untie?: boolean;
  executionProvider?: ExecutionProviderName;
  /**
   * 'concrete' (default) builds the gradient graph for the fed shapes; 'declared' keeps the model's
   * symbolic dims (e.g. a dynamic batch), as training artifacts do.
   */
  shapes?: 'concrete' | 'declared';
  /** Forward tensors to return as well (e.g. activations to inspect), by name. */
  keepOutputs?: readonly string[];
}

/** The loss, its terms, and dL/dp for each parameter (in initializer order). */
export interface GradientResult {
  loss: number;
  /** mean((output − target)²) per regressed output. */
  perOutputLoss: Record<string, number>;
  /** Parameter name → float32 gradient with the parameter's dims. */
  gradients: Map<string, HostTensor>;
  /** Copies made by untying shared initializers: new parameter name → the initializer it copies. */
  untied: Record<string, string>;
  /** The execution provider that ran the graph. */
  executionProvider: ResolvedExecutionProvider;
  /** The tensors `keepOutputs` asked for. */
  outputs: Record<string, HostTensor>;
}

const TYPED_DATA_TYPES: [DataType, string, (d: TensorData) => boolean][] = [
  [DataType.FLOAT, 'float32', (d) => d instanceof Float32Array],
  [DataType.DOUBLE, 'float64', (d) => d instanceof Float64Array],
  [DataType.INT64, 'int64', (d) => d instanceof BigInt64Array],
  [DataType.INT32, 'int32', (d) => d instanceof Int32Array],
  [DataType.UINT8, 'uint8', (d) => d instanceof Uint8Array],
];

function typeName(d: TensorData): string {
  return TYPED_DATA_TYPES.find(([, , is]) => is(d))?.[1] ?? d.constructor.name;
}

function checkTensor(name: string, what: string, t: HostTensor, dataType: DataType, shape?: Dim[]): void {
  const entry = TYPED_DATA_TYPES.find(([dt]) => dt === dataType);
  if (!entry) {
    throw new RlpkdError(`${what} '${name}' has element type ${DataType[dataType]}, which grad cannot feed`);
  }
  if (!entry[2](t.data)) {
    throw new RlpkdError(`${what} '${name}' must be ${entry[1]}, got ${typeName(t.data)}`, {
      hint: `convert it first, e.g. numpy.save(FILE, a.astype(numpy.${entry[1]}))`,
    });
  }
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) {
    throw new RlpkdError(`${what} '${name}': dims [${t.dims.join(', ')}] do not fit ${t.data.length} values`);
  }
  if (shape) {
    const bad =
      shape.length !== t.dims.length || shape.some((d, i) => typeof d === 'number' && d !== t.dims[i]);
    if (bad) {
      throw new RlpkdError(
        `${what} '${name}' has dims [${t.dims.join(', ')}], the graph declares [${shape.map((d) => d ?? '?').join(', ')}]`,
      );
    }
  }
}

/** The model (untied or not) and the parameters to differentiate by, checked. */
function resolveParameters(
  model: OnnxModel,
  options: Pick<ComputeGradientsOptions, 'parameters' | 'untie'>,
): { model: OnnxModel; parameters: string[]; untied: Record<string, string> } {
  const untie = options.untie ?? true;
  const untied: Record<string, string> = {};
  if (!options.parameters) {
    const c = classifyParameters(model, { untie });
    for (const copy of c.untiedCopies) untied[copy.name] = copy.from;
    return { model: c.model, parameters: c.trainable.map((e) => e.name), untied };
  }
  const r = untie
    ? untieSharedInitializersDetailed(model, { filter: (g) => g.kind === 'parameter' })
    : { model, copies: [] };
  for (const copy of r.copies) untied[copy.name] = copy.from;
  const byName = new Map(r.model.graph.initializers.map((t) => [t.name, t]));
  const wanted = new Set(options.parameters);
  const unknown: string[] = [];
  for (const name of options.parameters) {
    if (byName.has(name)) continue;
    const copies = r.copies.filter((c) => c.from === name).map((c) => c.name);
    if (copies.length === 0) unknown.push(name);
    wanted.delete(name);
    for (const c of copies) wanted.add(c);
  }
  if (unknown.length > 0) {
    throw new RlpkdError(
      `parameters not found among the initializers of graph '${model.graph.name}': ${unknown.slice(0, 6).join(', ')}`,
      { hint: '`rlpkd inspect --json` lists the parameters' },
    );
  }
  // Initializer order, so results are listed the way the model stores them.
  const parameters = r.model.graph.initializers.map((t) => t.name).filter((n) => wanted.has(n));
  return { model: r.model, parameters, untied };
}

/** Checks that inputs and targets name the graph's inputs and outputs; errors list what the graph has. */
function checkFeeds(model: OnnxModel, options: ComputeGradientsOptions): void {
  const g = model.graph;
  const inits = new Set(g.initializers.map((t) => t.name));
  const dataInputs = g.inputs.filter((v) => !inits.has(v.name));
  const list = (names: string[]): string => names.map((n) => `'${n}'`).join(', ') || 'none';
  for (const name of Object.keys(options.inputs)) {
    const v = g.inputs.find((i) => i.name === name);
    if (!v) {
      throw new GraphError(
        `'${name}' is not an input of graph '${g.name}' (inputs: ${list(dataInputs.map((i) => i.name))})`,
        { hint: '`rlpkd inspect` lists the inputs' },
      );
    }
    checkTensor(name, 'input', options.inputs[name], v.dataType, v.shape);
  }
  const missing = dataInputs.filter((v) => !(v.name in options.inputs)).map((v) => v.name);
  if (missing.length > 0) {
    throw new RlpkdError(`no value given for graph input(s) ${list(missing)} of graph '${g.name}'`, {
      hint: 'pass each input as NAME=FILE.npy',
    });
  }
  const outputs = g.outputs.map((o) => o.name);
  if (Object.keys(options.targets).length === 0) {
    throw new RlpkdError(`no targets given; the loss needs at least one (outputs: ${list(outputs)})`, {
      hint: 'pass a target per regressed output as OUTPUT=FILE.npy',
    });
  }
  for (const name of Object.keys(options.targets)) {
    const o = g.outputs.find((v) => v.name === name);
    if (!o) {
      throw new GraphError(`'${name}' is not an output of graph '${g.name}' (outputs: ${list(outputs)})`, {
        hint: '`rlpkd inspect` lists the outputs',
      });
    }
    checkTensor(name, 'target', options.targets[name], DataType.FLOAT, o.shape);
  }
}

function scalar(t: HostTensor | undefined, what: string): number {
  if (!t || t.data.length !== 1) throw new RlpkdError(`internal: ${what} is not a scalar`);
  return Number(t.data[0]);
}

/**
 * dL/dp for L = Σ_{o ∈ targets} mean((o − target_o)²) and every trainable parameter p, from one run of
 * a gradient graph in onnxruntime. Parameters the loss does not reach get zero gradients.
 */
export async function computeGradients(
  source: OnnxModel,
  options: ComputeGradientsOptions,
): Promise<GradientResult> {
  if ((options.loss ?? 'mse') !== 'mse') {
    throw new RlpkdError(`loss '${String(options.loss)}' is not supported by computeGradients (mse)`);
  }
  checkFeeds(source, options);
  const { model, parameters, untied } = resolveParameters(source, options);
  if (parameters.length === 0) {
    throw new RlpkdError(`graph '${source.graph.name}' has no parameters to differentiate by`, {
      hint: 'name the initializers explicitly (parameters: [...])',
    });
  }
  const byName = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const notFloat = parameters.filter((p) => byName.get(p)!.dataType !== DataType.FLOAT);
  if (notFloat.length > 0) {
    throw new RlpkdError(`parameters must be float32; not so: ${notFloat.slice(0, 5).join(', ')}`);
  }
  const forward = moveInitializersToInputs(model, parameters);
  const concrete = (options.shapes ?? 'concrete') === 'concrete';

  const b = GraphBuilder.fromModel(forward);
  const shapes: Record<string, Dim[]> = {};
  if (concrete) for (const [n, t] of Object.entries(options.inputs)) shapes[n] = [...t.dims];
  const targetInputs: Record<string, string> = {};
  const terms: Record<string, string> = {};
  let total: string | undefined;
  for (const [output, t] of Object.entries(options.targets)) {
    let name = `${output}.target`;
    for (let k = 1; b.has(name); k++) name = `${output}.target_${k}`;
    const declared = forward.graph.outputs.find((o) => o.name === output)!.shape;
    b.input(name, DataType.FLOAT, concrete ? [...t.dims] : declared);
    if (concrete) shapes[name] = [...t.dims];
    targetInputs[output] = name;
    terms[output] = mseLoss(b, output, name);
    total =
      total === undefined ? terms[output] : b.op('Add', [total, terms[output]], {}, { name: 'loss/sum' });
  }
  const loss = total!;
  const outputs = Object.keys(options.targets);
  const extra = [...(options.keepOutputs ?? [])];
  for (const name of extra) {
    if (!b.has(name) || Object.values(targetInputs).includes(name)) {
      throw new GraphError(`keepOutputs: '${name}' is not a tensor of graph '${source.graph.name}'`);
    }
  }
  const evalModel = pruneToOutputs(b.build(), [loss, ...Object.values(terms), ...outputs, ...extra]);

  if (concrete) {
    // A target of another shape would broadcast silently in Sub: compare with the inferred output shapes.
    const infos = inferShapes(
      forward,
      Object.fromEntries(Object.entries(options.inputs).map(([n, t]) => [n, [...t.dims]])),
    );
    for (const o of outputs) {
      const s = infos.get(o)?.shape;
      if (s && s.every((d) => typeof d === 'number') && !sameDims(options.targets[o].dims, s)) {
        throw new RlpkdError(
          `target '${o}' has dims [${options.targets[o].dims.join(', ')}] but output '${o}' is [${s.join(', ')}] for these inputs`,
        );
      }
    }
  }

  const reached = new Set(evalModel.graph.inputs.map((v) => v.name));
  const wrt = parameters.filter((p) => reached.has(p));
  const grad =
    wrt.length > 0
      ? buildGradientGraph(evalModel, {
          targets: [{ loss, wrt }],
          keepOutputs: [...Object.values(terms), ...outputs, ...extra],
          ...(concrete ? { inputShapes: shapes } : {}),
        })
      : { model: evalModel, gradients: [] };

  const session = await createSession(grad.model, { executionProvider: options.executionProvider ?? 'cpu' });
  let out: Record<string, HostTensor>;
  try {
    const feeds: Record<string, HostTensor> = {};
    const available: Record<string, HostTensor> = { ...options.inputs };
    for (const [o, name] of Object.entries(targetInputs)) available[name] = options.targets[o];
    for (const p of wrt) {
      const t = byName.get(p)!;
      available[p] = { data: t.data, dims: t.dims };
    }
    for (const name of session.inputNames) {
      if (!available[name]) throw new RlpkdError(`internal: gradient graph input '${name}' has no feed`);
      feeds[name] = available[name];
    }
    out = await session.run(feeds);
  } finally {
    await session.release();
  }

  for (const o of outputs) {
    const got = out[o];
    if (got && !sameDims(options.targets[o].dims, got.dims)) {
      throw new RlpkdError(
        `target '${o}' has dims [${options.targets[o].dims.join(', ')}] but output '${o}' is [${got.dims.join(', ')}]`,
      );
    }
  }
  const perOutputLoss: Record<string, number> = {};
  for (const [o, term] of Object.entries(terms)) perOutputLoss[o] = scalar(out[term], `loss term of '${o}'`);
  const outputOf = new Map(grad.gradients.map((g) => [g.parameter, g.output]));
  const gradients = new Map<string, HostTensor>();
  for (const p of parameters) {
    const dims = byName.get(p)!.dims;
    const name = outputOf.get(p);
    const g = name ? out[name] : { data: new Float32Array(byName.get(p)!.data.length), dims };
    if (!g || !(g.data instanceof Float32Array) || !sameDims(g.dims, dims)) {
      throw new RlpkdError(`internal: the gradient of '${p}' is missing or not float32 [${dims.join(', ')}]`);
    }
    gradients.set(p, { data: g.data, dims: [...dims] });
  }
  return {
    loss: scalar(out[loss], 'the loss'),
    perOutputLoss,
    gradients,
    untied,
    executionProvider: session.executionProvider,
    outputs: Object.fromEntries(extra.map((name) => [name, out[name]])),
  };
}
