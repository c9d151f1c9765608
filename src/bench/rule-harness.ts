/**
 * Emits one forward node and its gradient rule into a standalone graph, without the autodiff driver: the
 * output gradients are graph inputs, the input gradients graph outputs. Rule unit tests and the gradient
 * micro-benchmarks use it to exercise a rule in isolation.
 */
import { GraphError } from '../errors';
import type { AttributeInput } from '../onnx/attributes';
import { GraphBuilder } from '../onnx/graph-builder';
import type { TensorInfo } from '../onnx/shape-inference';
import { DataType, type Dim, type OnnxModel, type OnnxNode, type OnnxTensor } from '../onnx/types';
import { unbroadcast } from '../autodiff/broadcast';
import { emitReduce, emitUnsqueeze, scalarTensorAttr } from '../autodiff/emit';
import type { GradContext, GradientRuleEntry } from '../autodiff/types';

/** One forward input: a graph input of the given (possibly symbolic) shape, or a constant initializer. */
export interface RuleInput {
  name: string;
  shape: Dim[];
  dataType?: DataType;
  /** When set, the input is an initializer holding this value (and `info()` reports it). */
  value?: OnnxTensor;
}

/** The forward node to differentiate and what the rule should know about it. */
export interface RuleGraphSpec {
  opType: string;
  attributes?: Record<string, AttributeInput>;
  /** Forward inputs in order; undefined marks an omitted optional input. */
  inputs: (RuleInput | undefined)[];
  /** Static shapes of the forward outputs that receive a gradient (output 0 first). */
  outputs: Dim[][];
  /** Which input gradients to ask for (default: every float graph input and initializer). */
  needs?: boolean[];
  opset?: number;
  name?: string;
}

/** The emitted graph and the names a caller feeds and fetches. */
export interface RuleGraph {
  model: OnnxModel;
  /** Forward output names (graph outputs). */
  forwardOutputs: string[];
  /** Graph inputs carrying dL/dY for each forward output. */
  outputGradInputs: string[];
  /** Graph output holding each input's gradient, undefined where the rule gave none. */
  inputGradOutputs: (string | undefined)[];
}

/** Builds forward node + rule nodes; the rule sees a GradContext backed by the given static shapes. */
export function buildRuleGraph(spec: RuleGraphSpec, entry: GradientRuleEntry): RuleGraph {
  const b = new GraphBuilder({ name: `${spec.opType}_grad`, opset: spec.opset });
  const infos = new Map<string, TensorInfo>();
  const inputNames: string[] = [];
  for (const inp of spec.inputs) {
    if (!inp) {
      inputNames.push('');
      continue;
    }
    const dataType = inp.dataType ?? inp.value?.dataType ?? DataType.FLOAT;
    if (inp.value) b.initializer({ ...inp.value, name: inp.name }, { exactName: true });
    else b.input(inp.name, dataType, inp.shape);
    infos.set(inp.name, { dataType, shape: inp.shape, ...(inp.value ? { value: inp.value.data } : {}) });
    inputNames.push(inp.name);
  }
  const fwdOutputs = spec.outputs.map((_, i) => freeName(b, `y${i}`));
  b.node(spec.opType, inputNames, spec.attributes ?? {}, {
    name: spec.name ?? spec.opType.toLowerCase(),
    outputs: fwdOutputs,
  });
  const node: OnnxNode = b.nodes[b.nodes.length - 1];
  spec.outputs.forEach((shape, i) => {
    infos.set(fwdOutputs[i], { dataType: DataType.FLOAT, shape });
    b.output(fwdOutputs[i], DataType.FLOAT, shape);
  });
  const dY = spec.outputs.map((shape, i) => b.input(`dy${i}`, DataType.FLOAT, shape));
  const shapeCache = new Map<string, string>();
  const intCache = new Map<string, string>();
  const floatCache = new Map<number, string>();
  const ints = (values: readonly number[]): string => {
    const key = values.join(',');
    let c = intCache.get(key);
    if (!c) {
      c = b.constInt64([...values]);
      intCache.set(key, c);
    }
    return c;
  };
  const shapeOf = (name: string): string => {
    let s = shapeCache.get(name);
    if (!s) {
      s = b.op('Shape', [name], {}, { name: `shape_of_${name}` });
      shapeCache.set(name, s);
    }
    return s;
  };
  const target = {
    b,
    get opset() {
      return b.opset;
    },
    ints,
  };
  const ctx: GradContext = {
    b,
    node,
    opset: b.opset,
    dY,
    needs:
      spec.needs ?? spec.inputs.map((inp) => !!inp && (inp.dataType ?? DataType.FLOAT) === DataType.FLOAT),
    label: `${node.opType} '${node.name}'`,
    info(name: string): TensorInfo {
      const i = infos.get(name);
      if (!i) throw new GraphError(`rule harness: no shape known for '${name}'`);
      return i;
    },
    shapeOf,
    unbroadcast(grad: string, like: string, gradShape?: readonly Dim[]): string {
      const likeShape = infos.get(like)?.shape;
      return unbroadcast(
        { ...target, likeShape, shapeOfLike: () => shapeOf(like) },
        grad,
        gradShape,
        ctx.label,
      );
    },
    reduceSum(x: string, axes: readonly number[] | string, keepdims: boolean): string {
      return emitReduce(target, 'ReduceSum', x, axes, keepdims);
    },
    unsqueeze(x: string, axes: readonly number[] | string): string {
      return emitUnsqueeze(target, x, axes);
    },
    zerosLike(like: string): string {
      return b.op('ConstantOfShape', [shapeOf(like)], { value: scalarTensorAttr(0) });
    },
    scalar(value: number): string {
      let c = floatCache.get(value);
      if (!c) {
        c = b.constFloat(value);
        floatCache.set(value, c);
      }
      return c;
    },
    ints,
    requireOpset(version: number): void {
      const imp = b.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
      if (imp && imp.version < version) imp.version = version;
    },
    forwardOutput(index: number): string {
      while (node.outputs.length <= index) node.outputs.push('');
      if (!node.outputs[index]) node.outputs[index] = b.uniqueName(`${node.name}_out${index}`);
      return node.outputs[index];
    },
  };
  const grads = entry.rule(ctx);
  const inputGradOutputs = grads.map((g, i) => {
    if (!g) return undefined;
    const named = b.op('Identity', [g], {}, { outputs: [freeName(b, `grad_${inputNames[i] || i}`)] });
    b.output(named);
    return named;
  });
  return { model: b.build(), forwardOutputs: fwdOutputs, outputGradInputs: dY, inputGradOutputs };
}

/** `base`, or `base_`, `base__`, ... — the first name not yet used (not reserved, so a node may claim it). */
function freeName(b: GraphBuilder, base: string): string {
  let name = base;
  while (b.has(name)) name = `${name}_`;
  return name;
}
