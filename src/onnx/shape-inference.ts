/**
 * Static shape and type inference over the ops this toolkit handles, with constant folding of the integer
 * shape arithmetic that exporters emit (Shape → Gather → Unsqueeze → Concat → Resize). Symbolic dims such
 * as 'batch' pass through; what cannot be known is null (or an undefined shape), never an exception —
 * only malformed graphs throw. The per-op rules live in `./infer/`.
 */
import { GraphError } from '../errors';
import { topologicalSort, defaultOpset } from './graph-structure';
import { allKnown, elemsOf, typedArrayOf } from './infer/fold';
import { SHAPE_RULES, type InferContext, type Inferred } from './infer';
import { DataType, type Dim, type OnnxModel, type OnnxNode, type TensorData, type ValueInfo } from './types';

export interface TensorInfo {
  dataType: DataType;
  /** Undefined when even the rank is unknown. Symbolic dims (e.g. 'batch') are strings; unknown are null. */
  shape: Dim[] | undefined;
  /** The tensor's value when it is a compile-time constant (initializers, Constant, folded shape arithmetic). */
  value?: TensorData;
}

/** True when shape inference has a rule for this default-domain op type (others get undefined shapes). */
export function hasShapeRule(opType: string): boolean {
  return SHAPE_RULES.has(opType);
}

/**
 * Infers type, shape and constant value of every tensor in the graph.
 * @param inputShapes overrides the declared shapes of graph inputs (e.g. `{ input: [1, 3, 224, 224] }`).
 */
export function inferShapes(model: OnnxModel, inputShapes?: Record<string, Dim[]>): Map<string, TensorInfo> {
  const g = model.graph;
  const opset = defaultOpset(model);
  const known = new Map<string, Inferred>();
  const declared = new Map<string, ValueInfo>();
  for (const v of [...g.valueInfo, ...g.outputs]) declared.set(v.name, v);

  const inputNames = new Set(g.inputs.map((v) => v.name));
  for (const name of Object.keys(inputShapes ?? {})) {
    if (!inputNames.has(name)) {
      throw new GraphError(
        `inferShapes: graph '${g.name}' has no input '${name}' (inputs: ${[...inputNames].join(', ') || 'none'})`,
      );
    }
  }
  for (const t of g.initializers) {
    const overridable = inputNames.has(t.name); // IR < 4 style: a default value a feed may replace
    known.set(t.name, {
      dataType: t.dataType,
      shape: [...t.dims],
      ...(overridable || t.dataType === DataType.STRING ? {} : { value: t.data }),
    });
  }
  for (const v of g.inputs) {
    const override = inputShapes?.[v.name];
    const prior = known.get(v.name);
    known.set(v.name, {
      dataType: v.dataType !== DataType.UNDEFINED ? v.dataType : (prior?.dataType ?? DataType.UNDEFINED),
      shape: override ? [...override] : v.shape ? [...v.shape] : prior?.shape,
    });
  }

  for (const node of topologicalSort(g)) {
    const outs = inferNode(node, opset, known);
    node.outputs.forEach((name, i) => {
      if (!name) return;
      known.set(name, mergeDeclared(outs[i], declared.get(name)));
    });
  }

  const result = new Map<string, TensorInfo>();
  for (const [name, t] of known) {
    const info: TensorInfo = { dataType: t.dataType, shape: t.shape };
    if (t.value) info.value = t.value;
    else if (allKnown(t.elems)) {
      const v = typedArrayOf(t.dataType, t.elems);
      if (v) info.value = v;
    }
    result.set(name, info);
  }
  return result;
}

function inferNode(node: OnnxNode, opset: number, known: Map<string, Inferred>): (Inferred | undefined)[] {
  const rule = node.domain === '' || node.domain === 'ai.onnx' ? SHAPE_RULES.get(node.opType) : undefined;
  if (!rule) return [];
  const ctx = new NodeContext(node, opset, known);
  try {
    return rule(ctx);
  } catch (err) {
    if (err instanceof GraphError) throw err;
    throw new GraphError(`${ctx.label}: shape inference failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Fills what inference left open from the graph's declared value_info / output shapes. */
function mergeDeclared(inferred: Inferred | undefined, decl: ValueInfo | undefined): Inferred {
  const dataType =
    inferred && inferred.dataType !== DataType.UNDEFINED
      ? inferred.dataType
      : (decl?.dataType ?? DataType.UNDEFINED);
  const base: Inferred = inferred ? { ...inferred, dataType } : { dataType, shape: undefined };
  if (!decl?.shape) return base;
  if (!base.shape) return { ...base, shape: [...decl.shape] };
  if (base.shape.length !== decl.shape.length) return base; // trust inference over a stale declaration
  const shape = base.shape.map((d, i) => {
    const e = decl.shape![i];
    if (typeof d === 'number') return d;
    if (typeof e === 'number') return e;
    return d ?? e;
  });
  return { ...base, shape };
}

class NodeContext implements InferContext {
  readonly label: string;

  constructor(
    readonly node: OnnxNode,
    readonly opset: number,
    private readonly known: Map<string, Inferred>,
  ) {
    this.label = `${node.opType} '${node.name || node.outputs[0]}'`;
  }

  has(i: number): boolean {
    return i >= 0 && i < this.node.inputs.length && this.node.inputs[i] !== '';
  }

  input(i: number): Inferred | undefined {
    return this.has(i) ? this.known.get(this.node.inputs[i]) : undefined;
  }

  dataType(i: number): DataType {
    return this.input(i)?.dataType ?? DataType.UNDEFINED;
  }

  shape(i: number): Dim[] | undefined {
    return this.input(i)?.shape;
  }

  elems(i: number): (number | string | null)[] | undefined {
    return elemsOf(this.input(i));
  }

  ints(i: number): number[] | undefined {
    const e = this.elems(i);
    return allKnown(e) ? e : undefined;
  }

  fail = (message: string): never => {
    throw new GraphError(`${this.label}: ${message}`);
  };
}
