/** Runs a whole ONNX graph on the float64 reference ops. */
import { defaultOpset, topologicalSort, type OnnxModel } from '../../../src/onnx';
import type { HostTensor } from '../../../src/runtime';
import { fromHost, fromOnnxTensor, type RefOpTable, type RefTensor } from './tensor';

/**
 * Evaluates every node of `model` in float64 and returns all tensors by name. `feeds` give the graph
 * inputs and may also override initializers (how finite differences perturb a parameter).
 */
export function interpret(
  model: OnnxModel,
  feeds: Record<string, RefTensor | HostTensor>,
  ops: RefOpTable,
): Map<string, RefTensor> {
  const opset = defaultOpset(model);
  const values = new Map<string, RefTensor>();
  for (const t of model.graph.initializers) values.set(t.name, fromOnnxTensor(t));
  for (const [name, t] of Object.entries(feeds)) {
    values.set(name, 'dataType' in t ? t : fromHost(t));
  }
  for (const v of model.graph.inputs) {
    if (!values.has(v.name)) throw new Error(`reference: graph input '${v.name}' was not fed`);
  }
  for (const node of topologicalSort(model.graph)) {
    const label = `${node.opType} '${node.name}'`;
    const op = node.domain === '' || node.domain === 'ai.onnx' ? ops[node.opType] : undefined;
    if (!op) throw new Error(`reference interpreter has no implementation of ${label}`);
    const inputs = node.inputs.map((n) => {
      if (n === '') return undefined;
      const t = values.get(n);
      if (!t) throw new Error(`reference: ${label} reads '${n}', which is not computed`);
      return t;
    });
    const outs = op(inputs, node, { opset, label });
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const t = outs[i];
      if (!t) throw new Error(`reference: ${label} did not produce output ${i} ('${name}')`);
      values.set(name, t);
    });
  }
  return values;
}
