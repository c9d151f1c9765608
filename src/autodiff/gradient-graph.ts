/**
 * Reverse-mode autodiff over ONNX graphs, emitting standard ONNX ops only, so the gradient graph runs on
 * any onnxruntime build and execution provider. One forward pass is shared by every target (a loss and
 * the parameters to differentiate it by), so GradNorm can read ‖∇_W L_l‖ of several losses from one run.
 */
import { GraphError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { defaultOpset, nodeReads, topologicalSort, validateModel } from '../onnx/graph-structure';
import { inferShapes, type TensorInfo } from '../onnx/shape-inference';
import { DataType, type Dim, type OnnxModel, type OnnxNode, type ValueInfo } from '../onnx/types';
import { GradBuildState, nodeLabel } from './grad-context';
import { MAX_OPSET, MIN_OPSET, raiseOpset } from './opset-upgrade';
import { differentiableSlots, hasRule, pathNodes, pathTensors } from './paths';
import { GRADIENT_RULES } from './rules';
import { checkGradientShapes, type ShapeExpectation } from './shape-check';

/** One loss and the tensors to differentiate it by. */
export interface GradientTarget {
  /** Float scalar tensor ([] or [1]). */
  loss: string;
  /** Parameters: initializers or graph inputs. */
  wrt: string[];
  /** Gradient outputs are named `<param>_grad_<suffix>` (or `<param>_grad` without a suffix). */
  suffix?: string;
}

/** What to differentiate and what to keep. */
export interface GradientGraphOptions {
  targets: GradientTarget[];
  /** Overrides of graph input shapes for shape inference. */
  inputShapes?: Record<string, Dim[]>;
  /** Forward tensors to keep as outputs besides the losses (default none). */
  keepOutputs?: string[];
}

/** The gradient graph and where each gradient comes out. */
export interface GradientGraph {
  model: OnnxModel;
  gradients: { target: number; parameter: string; output: string }[];
}

const FLOAT_TYPES = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

/** Element-type test over inferred info; unknown types count as float (so a missing rule is reported). */
function floatTest(infos: ReadonlyMap<string, TensorInfo>): (name: string) => boolean {
  return (name) => {
    const dt = infos.get(name)?.dataType;
    return dt === undefined || dt === DataType.UNDEFINED || FLOAT_TYPES.has(dt);
  };
}

function checkOpset(model: OnnxModel): number {
  const opset = defaultOpset(model);
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new GraphError(
      `the autodiff supports default-domain opsets ${MIN_OPSET}..${MAX_OPSET}; the model is opset ${opset}`,
      {
        hint:
          opset < MIN_OPSET
            ? 'convert it (python -m onnx.version_converter or re-export with opset_version=17)'
            : 're-export the model with opset_version=17',
      },
    );
  }
  return opset;
}

/** Op types on a path from `parameters` to `losses` (default: the graph outputs) that have no gradient rule. */
export function listUnsupportedOps(
  model: OnnxModel,
  parameters: string[],
  losses?: string[],
): { opType: string; node: string }[] {
  const infos = inferShapes(model);
  const isFloat = floatTest(infos);
  const nodes = topologicalSort(model.graph);
  const seen = new Set<OnnxNode>();
  const found: { opType: string; node: string }[] = [];
  for (const loss of losses ?? model.graph.outputs.map((o) => o.name)) {
    const path = pathTensors(nodes, parameters, loss, isFloat);
    for (const n of pathNodes(nodes, path, isFloat)) {
      if (!hasRule(n) && !seen.has(n)) {
        seen.add(n);
        found.push({
          opType: n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType,
          node: n.name || n.outputs[0],
        });
      }
    }
  }
  return found;
}

function gradientName(param: string, suffix: string | undefined): string {
  return suffix ? `${param}_grad_${suffix}` : `${param}_grad`;
}

function checkTargets(
  model: OnnxModel,
  options: GradientGraphOptions,
  infos: ReadonlyMap<string, TensorInfo>,
): void {
  const g = model.graph;
  const produced = new Set<string>([...g.inputs.map((v) => v.name), ...g.nodes.flatMap((n) => n.outputs)]);
  const params = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.map((t) => t.name)]);
  if (options.targets.length === 0) throw new GraphError('buildGradientGraph: no targets given');
  const outNames = new Map<string, number>();
  options.targets.forEach((t, k) => {
    if (!produced.has(t.loss)) {
      throw new GraphError(`target ${k}: loss '${t.loss}' is not a tensor of graph '${g.name}'`, {
        hint: 'name a tensor that a node of the graph produces',
      });
    }
    const li = infos.get(t.loss);
    if (li && li.dataType !== DataType.UNDEFINED && !FLOAT_TYPES.has(li.dataType)) {
      throw new GraphError(`target ${k}: loss '${t.loss}' is not a float tensor`);
    }
    if (li?.shape && !(li.shape.length === 0 || (li.shape.length === 1 && li.shape[0] === 1))) {
      throw new GraphError(
        `target ${k}: loss '${t.loss}' must be a scalar ([] or [1]), its shape is [${li.shape.join(', ')}]`,
        { hint: 'reduce it first, e.g. with ReduceMean (keepdims=0)' },
      );
    }
    const seen = new Set<string>();
    for (const p of t.wrt) {
      if (!params.has(p)) {
        throw new GraphError(`target ${k}: parameter '${p}' is neither an initializer nor a graph input`);
      }
      const pi = infos.get(p);
      if (pi && pi.dataType !== DataType.FLOAT) {
        throw new GraphError(`target ${k}: parameter '${p}' must be float32 to be trained`);
      }
      if (seen.has(p)) throw new GraphError(`target ${k}: parameter '${p}' is listed twice`);
      seen.add(p);
      const out = gradientName(p, t.suffix);
      const prev = outNames.get(out);
      if (prev !== undefined) {
        throw new GraphError(`targets ${prev} and ${k} would both write '${out}'`, {
          hint: 'give each target that shares a parameter a distinct suffix',
        });
      }
      if (produced.has(out) || params.has(out)) {
        throw new GraphError(`gradient output '${out}' clashes with a tensor of the model`, {
          hint: 'use a target suffix',
        });
      }
      outNames.set(out, k);
    }
  });
}

/** Sums gradient contributions; remembers the sum so a tensor is accumulated once per target. */
class Accumulator {
  private readonly parts = new Map<string, string[]>();
  private readonly done = new Map<string, string>();

  constructor(private readonly b: GraphBuilder) {}

  add(tensor: string, grad: string): void {
    if (this.done.has(tensor)) throw new GraphError(`internal: gradient of '${tensor}' used before complete`);
    const list = this.parts.get(tensor);
    if (list) list.push(grad);
    else this.parts.set(tensor, [grad]);
  }

  total(tensor: string): string | undefined {
    const d = this.done.get(tensor);
    if (d) return d;
    const list = this.parts.get(tensor);
    if (!list) return undefined;
    const sum = list.length === 1 ? list[0] : this.b.op('Sum', list, {}, { name: `${tensor}/grad_sum` });
    this.done.set(tensor, sum);
    return sum;
  }
}

/**
 * Builds the gradient graph: the forward graph (pruned to what the outputs need) plus, for each target,
 * a backward sweep. Outputs: the losses, `keepOutputs`, then `<param>_grad[_<suffix>]` per target.
 */
export function buildGradientGraph(model: OnnxModel, options: GradientGraphOptions): GradientGraph {
  const opset = checkOpset(model);
  validateModel(model);
  const infos = inferShapes(model, options.inputShapes);
  checkTargets(model, options, infos);
  const isFloat = floatTest(infos);

  const b = GraphBuilder.fromModel(model);
  const state = new GradBuildState(b, opset, infos);
  // Builder nodes are copies of the model's (same order); rules see and may extend the copies.
  const copyOf = new Map<OnnxNode, OnnxNode>(model.graph.nodes.map((n, i) => [n, b.nodes[i]]));
  const order = topologicalSort(model.graph);
  const expectations: ShapeExpectation[] = [];
  const gradients: GradientGraph['gradients'] = [];
  const paramOutputs: ValueInfo[] = [];

  options.targets.forEach((target, k) => {
    const path = pathTensors(order, target.wrt, target.loss, isFloat);
    const nodes = pathNodes(order, path, isFloat);
    const missing = nodes.filter((n) => !hasRule(n));
    if (missing.length > 0) {
      const list = missing.map((n) => nodeLabel(n)).join(', ');
      throw new GraphError(
        `no gradient rule for ${list} on the path from the parameters to '${target.loss}'`,
        {
          hint:
            'freeze the parameters before this op, replace the op with supported ones, or add a rule to ' +
            'src/autodiff/rules/<family>.ts (the contract is in src/autodiff/types.ts)',
        },
      );
    }
    const acc = new Accumulator(b);
    if (path.has(target.loss)) acc.add(target.loss, seed(state, target.loss));
    const tag = target.suffix ? `grad_${target.suffix}` : 'grad';
    for (let i = nodes.length - 1; i >= 0; i--) {
      const fwd = nodes[i];
      const node = copyOf.get(fwd)!;
      const dY = fwd.outputs.map((o) => (o && path.has(o) ? acc.total(o) : undefined));
      if (dY.every((d) => d === undefined)) continue;
      const slots = differentiableSlots(fwd, isFloat);
      const needs = fwd.inputs.map((name, j) => slots[j] && path.has(name));
      const ctx = state.context(node, dY, needs);
      state.namePrefix = `${fwd.name || fwd.outputs[0]}/${tag}/`;
      const result = GRADIENT_RULES.get(fwd.opType)!.rule(ctx);
      state.namePrefix = '';
      needs.forEach((need, j) => {
        if (!need) return;
        const g = result[j];
        if (!g) {
          throw new GraphError(
            `${ctx.label}: the gradient rule gave no gradient for input ${j} ('${fwd.inputs[j]}')`,
            {
              hint: 'this is a bug in the gradient rule; please report it with the model',
            },
          );
        }
        acc.add(fwd.inputs[j], g);
        expectations.push({
          tensor: g,
          expected: infos.get(fwd.inputs[j])?.shape,
          what: `${ctx.label} input ${j} ('${fwd.inputs[j]}')`,
        });
      });
    }
    for (const p of target.wrt) {
      const out = gradientName(p, target.suffix);
      const total = acc.total(p) ?? state.zerosLike(p);
      b.op('Identity', [total], {}, { name: `${out}/Identity`, outputs: [out] });
      const shape = infos.get(p)?.shape;
      paramOutputs.push({ name: out, dataType: DataType.FLOAT, ...(shape ? { shape } : {}) });
      expectations.push({ tensor: out, expected: shape, what: `gradient of '${p}'` });
      gradients.push({ target: k, parameter: p, output: out });
    }
  });

  const outputs = new Map<string, ValueInfo>();
  const keep = (name: string): void => {
    if (outputs.has(name)) return;
    const i = infos.get(name);
    outputs.set(name, {
      name,
      dataType: i?.dataType ?? DataType.FLOAT,
      ...(i?.shape ? { shape: i.shape } : {}),
    });
  };
  for (const t of options.targets) keep(t.loss);
  const tensors = new Set([
    ...model.graph.inputs.map((v) => v.name),
    ...model.graph.nodes.flatMap((n) => n.outputs),
  ]);
  for (const name of options.keepOutputs ?? []) {
    if (!name || !tensors.has(name))
      throw new GraphError(`keepOutputs: '${name}' is not a tensor of the model`);
    keep(name);
  }
  for (const v of paramOutputs) outputs.set(v.name, v);
  b.outputs.length = 0;
  b.outputs.push(...outputs.values());

  const built = b.build();
  built.irVersion = Math.max(built.irVersion, model.irVersion);
  prune(built);
  if (state.required) raiseOpset(built, state.required.version, state.required.why);
  validateModel(built, `gradient graph of '${model.graph.name}'`);
  checkGradientShapes(built, options.inputShapes, expectations);
  return { model: built, gradients };
}

/** The seed dL/dL = 1, shaped like the loss. */
function seed(state: GradBuildState, loss: string): string {
  const shape = state.staticShape(loss);
  if (shape && shape.length === 0) return state.scalar(1);
  if (shape && shape.length === 1 && shape[0] === 1) return state.b.constFloat([1], [1], 'grad_seed');
  return state.b.op('Expand', [state.scalar(1), state.shapeOf(loss)]);
}

/**
 * Keeps only nodes and initializers the outputs need (graph inputs are all kept, so callers feed what the
 * forward model took), and puts the nodes in topological order.
 */
function prune(model: OnnxModel): void {
  const g = model.graph;
  const needed = new Set(g.outputs.map((o) => o.name));
  const nodes = topologicalSort(g);
  const kept: OnnxNode[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.outputs.some((o) => o && needed.has(o))) continue;
    kept.push(n);
    for (const r of nodeReads(n)) needed.add(r);
  }
  g.nodes = kept.reverse();
  const inputs = new Set(g.inputs.map((v) => v.name));
  g.initializers = g.initializers.filter((t) => needed.has(t.name) || inputs.has(t.name));
  const produced = new Set(g.nodes.flatMap((n) => n.outputs));
  g.valueInfo = g.valueInfo.filter((v) => produced.has(v.name));
}
