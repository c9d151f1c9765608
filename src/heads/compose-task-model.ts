/**
 * Splicing a head onto a backbone: the backbone's pyramid outputs feed the head's level inputs, and the
 * result is one task model (image in, task outputs out). Head parameters keep their names, so weights
 * trained on the head alone load into the task model by name and back.
 */
import { GraphError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { defaultOpset } from '../onnx/graph-structure';
import type { OnnxModel } from '../onnx/types';
import { headParameterNames } from './head-graph';
import type { HeadModel } from './types';

export interface ComposeOptions {
  /** Head input (level name) → backbone output; default: the same name. */
  levels?: Record<string, string>;
  /** Also keep the backbone's outputs as outputs of the task model (default false). */
  keepBackboneOutputs?: boolean;
  name?: string;
}

/** One ONNX model: `backbone` followed by `head` on its pyramid outputs. */
export function composeTaskModel(
  backbone: OnnxModel,
  head: HeadModel,
  options: ComposeOptions = {},
): OnnxModel {
  const hg = head.model.graph;
  const source = new Map<string, string>();
  for (const input of hg.inputs) {
    const from = options.levels?.[input.name] ?? input.name;
    if (!backbone.graph.outputs.some((o) => o.name === from)) {
      const outs = backbone.graph.outputs.map((o) => `'${o.name}'`).join(', ');
      throw new GraphError(
        `compose: the head reads '${from}', which backbone '${backbone.graph.name}' does not output (outputs: ${outs})`,
        {
          hint: 'map each head level to a backbone output with the levels option',
        },
      );
    }
    source.set(input.name, from);
  }
  const opset = Math.max(defaultOpset(backbone), defaultOpset(head.model));
  if (defaultOpset(backbone) < 13) {
    throw new GraphError(
      `compose: backbone '${backbone.graph.name}' uses opset ${defaultOpset(backbone)}; heads need 13 or later`,
      {
        hint: 'export the backbone with opset_version=13 or later',
      },
    );
  }
  const b = GraphBuilder.fromModel(backbone);
  b.name = options.name ?? `${backbone.graph.name}+${hg.name}`;
  const own = b.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (own) own.version = opset;
  // Head parameters (Conv/Gemm weights and biases) keep their names: a clash would tie two parameters
  // silently. Constants and intermediate tensors are renamed where the backbone already uses the name.
  const parameters = headParameterNames(head.model);
  const rename = new Map(source);
  for (const t of hg.initializers) {
    if (parameters.has(t.name) && b.has(t.name)) {
      throw new GraphError(`compose: head parameter '${t.name}' clashes with a tensor of the backbone`, {
        hint: 'build the head with another prefix',
      });
    }
    rename.set(t.name, b.initializer(t, { exactName: parameters.has(t.name) }));
  }
  const outputNames = new Set(hg.outputs.map((o) => o.name));
  for (const node of hg.nodes) {
    const outputs = node.outputs.map((o) => {
      if (!o) return o;
      if (outputNames.has(o) && b.has(o)) {
        throw new GraphError(`compose: head output '${o}' clashes with a tensor of the backbone`, {
          hint: 'build the head with other output names',
        });
      }
      const name = outputNames.has(o) ? o : b.uniqueName(o);
      if (outputNames.has(o)) b.reserve(o);
      rename.set(o, name);
      return name;
    });
    b.nodes.push({
      ...node,
      name: b.uniqueName(node.name || node.opType),
      inputs: node.inputs.map((i) => (i ? (rename.get(i) ?? i) : i)),
      outputs,
    });
  }
  if (!options.keepBackboneOutputs) b.outputs.length = 0;
  b.outputs.push(...hg.outputs.map((o) => ({ ...o })));
  return b.build();
}
