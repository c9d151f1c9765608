/** Structural queries on a graph: producers, consumers, topological order, validity. */
import { GraphError } from '../errors';
import type { OnnxGraph, OnnxModel, OnnxNode, OnnxTensor } from './types';

/** Map tensor name → the node that produces it. */
export function producerMap(graph: OnnxGraph): Map<string, OnnxNode> {
  const m = new Map<string, OnnxNode>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) m.set(o, n);
  return m;
}

/**
 * The initializer `name` is, directly or forwarded through default-domain Identity nodes (as
 * torch.onnx.export forwards deduplicated constants); undefined for anything computed.
 */
export function initializerBehind(
  name: string,
  initializers: ReadonlyMap<string, OnnxTensor>,
  producer: ReadonlyMap<string, OnnxNode>,
): OnnxTensor | undefined {
  const seen = new Set<string>();
  let cur = name;
  while (!initializers.has(cur)) {
    const p = producer.get(cur);
    const identity = p && p.opType === 'Identity' && (p.domain === '' || p.domain === 'ai.onnx');
    if (!identity || seen.has(cur) || !p.inputs[0]) return undefined;
    seen.add(cur);
    cur = p.inputs[0];
  }
  return initializers.get(cur);
}

/** Map tensor name → the nodes that read it (a node reading a tensor twice appears twice). */
export function consumerMap(graph: OnnxGraph): Map<string, OnnxNode[]> {
  const m = new Map<string, OnnxNode[]>();
  for (const n of graph.nodes) {
    for (const i of nodeReads(n)) {
      const list = m.get(i);
      if (list) list.push(n);
      else m.set(i, [n]);
    }
  }
  return m;
}

/** Names a node reads: its inputs plus names its subgraphs take from the enclosing scope. */
export function nodeReads(node: OnnxNode): string[] {
  const reads = node.inputs.filter((i) => i !== '');
  for (const a of Object.values(node.attributes)) {
    if (a.type === 'graph') reads.push(...outerReads(a.value));
    if (a.type === 'graphs') for (const g of a.value) reads.push(...outerReads(g));
  }
  return reads;
}

function outerReads(g: OnnxGraph): string[] {
  const local = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.map((t) => t.name)]);
  for (const n of g.nodes) for (const o of n.outputs) local.add(o);
  const out: string[] = [];
  for (const n of g.nodes) for (const r of nodeReads(n)) if (!local.has(r)) out.push(r);
  return out;
}

/**
 * Nodes in an order where every node comes after the producers of what it reads. Stable: keeps the
 * original order where it is already valid. Throws on a cycle or a read of a tensor nothing produces.
 */
export function topologicalSort(graph: OnnxGraph): OnnxNode[] {
  const available = new Set<string>([
    ...graph.inputs.map((v) => v.name),
    ...graph.initializers.map((t) => t.name),
  ]);
  const producer = producerMap(graph);
  const pending = new Map<OnnxNode, number>();
  const waiting = new Map<string, OnnxNode[]>();
  const ready: OnnxNode[] = [];
  const index = new Map<OnnxNode, number>();
  graph.nodes.forEach((n, i) => index.set(n, i));
  for (const n of graph.nodes) {
    const missing = new Set(nodeReads(n).filter((r) => !available.has(r)));
    for (const r of missing) {
      if (!producer.has(r)) {
        throw new GraphError(
          `${n.opType} '${n.name}' reads '${r}', which no node, input or initializer provides`,
        );
      }
      const w = waiting.get(r);
      if (w) w.push(n);
      else waiting.set(r, [n]);
    }
    pending.set(n, missing.size);
    if (missing.size === 0) ready.push(n);
  }
  const order: OnnxNode[] = [];
  // A min-heap on original index would be exact; a sorted insert is fine for graph sizes here.
  ready.sort((a, b) => index.get(a)! - index.get(b)!);
  while (ready.length > 0) {
    const n = ready.shift()!;
    order.push(n);
    for (const o of n.outputs) {
      for (const c of waiting.get(o) ?? []) {
        const left = pending.get(c)! - 1;
        pending.set(c, left);
        if (left === 0) {
          const at = ready.findIndex((r) => index.get(r)! > index.get(c)!);
          if (at < 0) ready.push(c);
          else ready.splice(at, 0, c);
        }
      }
      waiting.delete(o);
    }
  }
  if (order.length !== graph.nodes.length) {
    const stuck = graph.nodes.filter((n) => pending.get(n)! > 0).slice(0, 3);
    throw new GraphError(
      `graph '${graph.name}' has a cycle through ${stuck.map((n) => `${n.opType} '${n.name}'`).join(', ')}`,
    );
  }
  return order;
}

/** One structural problem found by validateModel. */
export interface GraphProblem {
  kind:
    'dangling-input' | 'duplicate-output' | 'missing-opset' | 'missing-output' | 'cycle' | 'duplicate-name';
  message: string;
}

/**
 * Checks a model for dangling inputs, tensors produced twice, domains without an opset import,
 * graph outputs nothing produces, and cycles. Returns every problem found (empty when valid).
 */
export function findGraphProblems(model: OnnxModel): GraphProblem[] {
  const problems: GraphProblem[] = [];
  const g = model.graph;
  const domains = new Set(model.opsetImports.map((o) => (o.domain === 'ai.onnx' ? '' : o.domain)));
  const defined = new Map<string, string>();
  const define = (name: string, what: string): void => {
    const prev = defined.get(name);
    if (prev !== undefined) {
      problems.push({
        kind: 'duplicate-output',
        message: `'${name}' is defined twice: by ${prev} and by ${what}`,
      });
    } else defined.set(name, what);
  };
  for (const v of g.inputs) if (!defined.has(v.name)) defined.set(v.name, `graph input '${v.name}'`);
  for (const t of g.initializers) {
    // An initializer may also be listed as a graph input (IR < 4 style default values): that is allowed.
    if (defined.has(t.name) && !g.inputs.some((v) => v.name === t.name))
      define(t.name, `initializer '${t.name}'`);
    else defined.set(t.name, `initializer '${t.name}'`);
  }
  for (const n of g.nodes) for (const o of n.outputs) if (o) define(o, `${n.opType} '${n.name}'`);
  const missingDomains = new Set<string>();
  for (const n of g.nodes) {
    const d = n.domain === 'ai.onnx' ? '' : n.domain;
    if (!domains.has(d) && !missingDomains.has(d)) {
      missingDomains.add(d);
      problems.push({
        kind: 'missing-opset',
        message: `${n.opType} '${n.name}' uses domain '${d || 'ai.onnx'}', which the model does not import an opset for`,
      });
    }
    for (const r of nodeReads(n)) {
      if (!defined.has(r)) {
        problems.push({
          kind: 'dangling-input',
          message: `${n.opType} '${n.name}' reads '${r}', which nothing defines`,
        });
      }
    }
  }
  for (const o of g.outputs) {
    if (!defined.has(o.name))
      problems.push({ kind: 'missing-output', message: `graph output '${o.name}' is never produced` });
  }
  if (!problems.some((p) => p.kind === 'dangling-input')) {
    try {
      topologicalSort(g);
    } catch (err) {
      problems.push({ kind: 'cycle', message: (err as Error).message });
    }
  }
  return problems;
}

/** Throws one GraphError listing every structural problem of the model. */
export function validateModel(model: OnnxModel, what = `graph '${model.graph.name}'`): void {
  const problems = findGraphProblems(model);
  if (problems.length === 0) return;
  const shown = problems.slice(0, 8).map((p) => `  - ${p.message}`);
  if (problems.length > 8) shown.push(`  - ... and ${problems.length - 8} more`);
  throw new GraphError(`${what} is not a valid ONNX graph:\n${shown.join('\n')}`, {
    hint: 'the file may be truncated or edited by hand; re-export it',
  });
}

/** Opset version of the default domain (0 when not imported). */
export function defaultOpset(model: OnnxModel): number {
  return model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
}
