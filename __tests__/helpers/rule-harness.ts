/**
 * Emits one forward node and its gradient rule into a standalone graph, without the autodiff driver's
 * path search: the output gradients are graph inputs, the input gradients graph outputs. The rule gets
 * the production GradContext (src/autodiff/grad-context.ts, the one buildGradientGraph hands every rule:
 * same Shape/constant caches, node names and opset handling), so a rule test exercises what training runs.
 */
import { GradBuildState } from '../../src/autodiff/grad-context';
import { raiseOpset } from '../../src/autodiff/opset-upgrade';
import type { GradientRuleEntry } from '../../src/autodiff/types';
import type { AttributeInput } from '../../src/onnx/attributes';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import type { TensorInfo } from '../../src/onnx/shape-inference';
import { DataType, type Dim, type OnnxModel, type OnnxNode, type OnnxTensor } from '../../src/onnx/types';

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

/** Builds forward node + rule nodes; the rule's GradContext knows the shapes the spec gives (and nothing else). */
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
  const state = new GradBuildState(b, b.opset, infos);
  const needs =
    spec.needs ?? spec.inputs.map((inp) => !!inp && (inp.dataType ?? DataType.FLOAT) === DataType.FLOAT);
  // Named as the driver names a rule's nodes: `<forward node>/grad/<op>`.
  state.namePrefix = `${node.name}/grad/`;
  const grads = entry.rule(state.context(node, dY, needs));
  state.namePrefix = '';
  const inputGradOutputs = grads.map((g, i) => {
    if (!g) return undefined;
    const out = freeName(b, `grad_${inputNames[i] || i}`);
    b.output(b.op('Identity', [g], {}, { name: `${out}/Identity`, outputs: [out] }));
    return out;
  });
  const model = b.build();
  // As buildGradientGraph does: a rule that needs a newer op form raises the opset, or fails naming why.
  if (state.required) raiseOpset(model, state.required.version, state.required.why);
  return { model, forwardOutputs: fwdOutputs, outputGradInputs: dY, inputGradOutputs };
}

/** `base`, or `base_`, `base__`, ... — the first name not yet used (not reserved, so a node may claim it). */
function freeName(b: GraphBuilder, base: string): string {
  let name = base;
  while (b.has(name)) name = `${name}_`;
  return name;
}
