/**
 * Shared initializers: one stored tensor read under several names or by several parameter slots.
 *
 * torch.onnx.export deduplicates identical initializers: the all-zero FPN biases of a freshly initialized
 * torchvision model become ONE initializer (`fpn.inner_blocks.0.0.bias`) that the other seven bias slots
 * read through Identity nodes whose outputs carry the lost names (`fpn.layer_blocks.3.0.bias`, ...); the
 * identical frozen batch-norm constants (`onnx::Mul_*`, `onnx::Add_*`) are shared the same way. Trained
 * as is, those parameters would be tied. This module finds such groups and unties them (one copy per
 * consumer, named as the Identity output it replaces), and can tie identical initializers the way the
 * exporter does (to reproduce the trap without PyTorch).
 */
import { GraphError } from '../errors';
import { producerMap } from './graph-structure';
import type { OnnxGraph, OnnxModel, OnnxNode, OnnxTensor, TensorData } from './types';

/**
 * Input slots that hold trainable parameters when fed by a float initializer (weights and biases of
 * Conv/ConvTranspose/Gemm, either operand of MatMul).
 */
export const PARAMETER_SLOTS: Readonly<Record<string, readonly number[]>> = {
  Conv: [1, 2],
  ConvTranspose: [1, 2],
  Gemm: [0, 1, 2],
  MatMul: [0, 1],
};

/** True when input `index` of `node` is a parameter slot (see PARAMETER_SLOTS). */
export function isParameterSlot(node: OnnxNode, index: number): boolean {
  return (
    (PARAMETER_SLOTS[node.opType] ?? []).includes(index) && (node.domain === '' || node.domain === 'ai.onnx')
  );
}

/** One place where a shared initializer is read. */
export interface InitializerUse {
  /** Reading node's name; '' for a graph output. */
  node: string;
  /** Reading node's op type; 'graph-output' for a graph output. */
  opType: string;
  /** Input index in the reading node (-1 for a graph output). */
  input: number;
  /** The tensor name the reader uses: the initializer itself or one of its Identity aliases. */
  via: string;
  /** True when this use is a parameter slot of Conv/Gemm/MatMul. */
  parameter: boolean;
}

/** An initializer that several consumers read, directly or through Identity nodes. */
export interface SharedInitializerGroup {
  /** Name of the initializer that holds the data. */
  initializer: string;
  dims: number[];
  /** Outputs of the Identity nodes (chains included) that forward the initializer, in graph order. */
  aliases: string[];
  /** Every read, in graph order (Identity nodes of the chain are not uses). */
  uses: InitializerUse[];
  /** 'parameter' when at least one use is a parameter slot; training would tie those parameters. */
  kind: 'parameter' | 'constant';
}

interface Resolution {
  /** alias name → root initializer name */
  rootOf: Map<string, string>;
  /** Identity nodes that forward an initializer (directly or through other such Identity nodes). */
  aliasNodes: Set<OnnxNode>;
}

/** Follows Identity chains back to initializers that are not also graph inputs (those can be fed). */
function resolveAliases(graph: OnnxGraph): Resolution {
  const initializers = new Set(graph.initializers.map((t) => t.name));
  for (const v of graph.inputs) initializers.delete(v.name);
  const producer = producerMap(graph);
  const rootOf = new Map<string, string>();
  const aliasNodes = new Set<OnnxNode>();
  const visiting = new Set<string>();
  const resolve = (name: string): string | undefined => {
    if (initializers.has(name)) return name;
    if (rootOf.has(name)) return rootOf.get(name);
    const p = producer.get(name);
    if (!p || p.opType !== 'Identity' || (p.domain !== '' && p.domain !== 'ai.onnx') || visiting.has(name)) {
      return undefined;
    }
    visiting.add(name);
    const root = p.inputs[0] ? resolve(p.inputs[0]) : undefined;
    visiting.delete(name);
    if (root !== undefined) {
      rootOf.set(name, root);
      aliasNodes.add(p);
    }
    return root;
  };
  for (const n of graph.nodes) if (n.opType === 'Identity') for (const o of n.outputs) if (o) resolve(o);
  return { rootOf, aliasNodes };
}

/** Every read of every initializer (through aliases too), keyed by root initializer name. */
function collectUses(
  graph: OnnxGraph,
  res: Resolution,
): Map<string, { aliases: string[]; uses: InitializerUse[] }> {
  const byRoot = new Map<string, { aliases: string[]; uses: InitializerUse[] }>();
  const entry = (root: string): { aliases: string[]; uses: InitializerUse[] } => {
    let e = byRoot.get(root);
    if (!e) byRoot.set(root, (e = { aliases: [], uses: [] }));
    return e;
  };
  const initializers = new Set(graph.initializers.map((t) => t.name));
  for (const v of graph.inputs) initializers.delete(v.name);
  const rootFor = (name: string): string | undefined =>
    initializers.has(name) ? name : res.rootOf.get(name);
  for (const n of graph.nodes) {
    if (res.aliasNodes.has(n)) {
      entry(res.rootOf.get(n.outputs[0])!).aliases.push(n.outputs[0]);
      continue;
    }
    n.inputs.forEach((name, i) => {
      const root = name ? rootFor(name) : undefined;
      if (root === undefined) return;
      entry(root).uses.push({
        node: n.name,
        opType: n.opType,
        input: i,
        via: name,
        parameter: isParameterSlot(n, i),
      });
    });
  }
  for (const o of graph.outputs) {
    const root = rootFor(o.name);
    if (root !== undefined) {
      entry(root).uses.push({ node: '', opType: 'graph-output', input: -1, via: o.name, parameter: false });
    }
  }
  return byRoot;
}

/**
 * Groups of tensor names that read one initializer: an initializer read through Identity aliases by more
 * than one consumer, or read directly by several parameter slots. Sorted in initializer order.
 */
export function findSharedInitializers(model: OnnxModel): SharedInitializerGroup[] {
  const graph = model.graph;
  const byRoot = collectUses(graph, resolveAliases(graph));
  const groups: SharedInitializerGroup[] = [];
  for (const t of graph.initializers) {
    const e = byRoot.get(t.name);
    if (!e || e.uses.length < 2) continue;
    const parameterUses = e.uses.filter((u) => u.parameter).length;
    if (e.aliases.length === 0 && parameterUses < 2) continue;
    groups.push({
      initializer: t.name,
      dims: [...t.dims],
      aliases: e.aliases,
      uses: e.uses,
      kind: parameterUses > 0 ? 'parameter' : 'constant',
    });
  }
  return groups;
}

/** One copy made by untying. */
export interface UntiedCopy {
  /** Name of the new initializer. */
  name: string;
  /** The shared initializer it copies. */
  from: string;
  /** How the name was chosen: the Identity output it replaces, or derived from the reading node. */
  reason: 'identity' | 'direct';
}

/** Options of untieSharedInitializers. */
export interface UntieOptions {
  /** Which groups to untie (default: all that findSharedInitializers reports). */
  filter?: (group: SharedInitializerGroup) => boolean;
}

/** The untied model and what was copied (for logs and for counts that must say what they report). */
export interface UntieResult {
  model: OnnxModel;
  /** Every initializer created, in the order added. */
  copies: UntiedCopy[];
  /** The groups that were untied. */
  groups: SharedInitializerGroup[];
}

/**
 * A new model in which every consumer of a shared initializer reads its own copy: each Identity alias
 * becomes an initializer of the same name (recovering PyTorch's parameter names) and its Identity node is
 * removed; parameter slots that read one initializer directly get copies named after the reading module
 * (`/fpn/layer_blocks.3/layer_blocks.3.0/Conv` → `fpn.layer_blocks.3.0.bias`) or `<name>_<k>`. Aliases
 * that are graph outputs keep their Identity node. The input model is not changed.
 */
export function untieSharedInitializersDetailed(model: OnnxModel, options: UntieOptions = {}): UntieResult {
  const groups = findSharedInitializers(model).filter(options.filter ?? (() => true));
  const graph = model.graph;
  if (groups.length === 0) return { model, copies: [], groups: [] };
  const res = resolveAliases(graph);
  const inGroup = new Set(groups.map((g) => g.initializer));
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  const byName = new Map(graph.initializers.map((t) => [t.name, t]));
  const used = new Set<string>([
    ...graph.inputs.map((v) => v.name),
    ...graph.initializers.map((t) => t.name),
  ]);
  for (const n of graph.nodes) {
    if (n.name) used.add(n.name);
    for (const o of n.outputs) if (o) used.add(o);
  }

  // Identity nodes to drop: aliases of a group's initializer, unless the alias is a graph output.
  const dropped = new Set<OnnxNode>();
  for (const n of res.aliasNodes) {
    if (inGroup.has(res.rootOf.get(n.outputs[0])!) && !graphOutputs.has(n.outputs[0])) dropped.add(n);
  }
  const droppedOutputs = new Set([...dropped].map((d) => d.outputs[0]));
  const nodes = graph.nodes.filter((n) => !dropped.has(n)).map((n) => ({ ...n, inputs: [...n.inputs] }));
  const added = new Map<string, OnnxTensor[]>(); // root → copies, inserted after the root
  const copies: UntiedCopy[] = [];
  const addCopy = (root: string, name: string, reason: UntiedCopy['reason']): void => {
    const src = byName.get(root)!;
    const t: OnnxTensor = { ...src, name, dims: [...src.dims], data: src.data.slice() as TensorData };
    if (src.strings) t.strings = src.strings.map((s) => s.slice());
    const list = added.get(root);
    if (list) list.push(t);
    else added.set(root, [t]);
    copies.push({ name, from: root, reason });
  };
  const materialized = new Set<string>();
  // 1. Every alias read by a kept node becomes an initializer of the alias's name.
  for (const n of nodes) {
    n.inputs.forEach((name) => {
      const root = res.rootOf.get(name);
      if (root === undefined || !inGroup.has(root)) return;
      if (!droppedOutputs.has(name)) return; // alias kept (graph output): readers keep reading it
      // The reader keeps its input name: the alias becomes an initializer of that name.
      if (!materialized.has(name)) {
        materialized.add(name);
        addCopy(root, name, 'identity');
      }
    });
  }
  // 2. A name read by several parameter slots: the first reader keeps it unless a reader's module name matches.
  const paramReaders = new Map<string, { node: (typeof nodes)[number]; input: number }[]>();
  for (const n of nodes) {
    n.inputs.forEach((name, i) => {
      const root = inGroup.has(name) ? name : materialized.has(name) ? res.rootOf.get(name) : undefined;
      if (root === undefined || !isParameterSlot(n, i)) return;
      const list = paramReaders.get(name);
      if (list) list.push({ node: n, input: i });
      else paramReaders.set(name, [{ node: n, input: i }]);
    });
  }
  for (const [name, readers] of paramReaders) {
    if (readers.length < 2) continue;
    const root = inGroup.has(name) ? name : res.rootOf.get(name)!;
    const derived = readers.map((r) => derivedParameterName(r.node, r.input));
    let keeper = derived.findIndex((d) => d === name);
    if (keeper < 0) keeper = 0;
    readers.forEach((r, k) => {
      if (k === keeper) return;
      let fresh = derived[k] && !used.has(derived[k]!) ? derived[k]! : '';
      if (!fresh) {
        let j = 1;
        while (used.has(`${name}_${j}`)) j++;
        fresh = `${name}_${j}`;
      }
      used.add(fresh);
      addCopy(root, fresh, 'direct');
      r.node.inputs[r.input] = fresh;
    });
  }
  // 3. Drop roots nobody reads any more; insert copies after their root.
  const stillRead = new Set<string>();
  for (const n of nodes) for (const i of n.inputs) if (i) stillRead.add(i);
  for (const o of graph.outputs) stillRead.add(o.name);
  const initializers: OnnxTensor[] = [];
  for (const t of graph.initializers) {
    if (!inGroup.has(t.name) || stillRead.has(t.name)) initializers.push(t);
    initializers.push(...(added.get(t.name) ?? []));
  }
  const out: OnnxModel = { ...model, graph: { ...graph, nodes, initializers } };
  return { model: out, copies, groups };
}

/** `untieSharedInitializersDetailed` returning only the model. */
export function untieSharedInitializers(model: OnnxModel, options: UntieOptions = {}): OnnxModel {
  return untieSharedInitializersDetailed(model, options).model;
}

const SLOT_NAMES: Readonly<Record<string, readonly string[]>> = {
  Conv: ['input', 'weight', 'bias'],
  ConvTranspose: ['input', 'weight', 'bias'],
  Gemm: ['input', 'weight', 'bias'],
  MatMul: ['input', 'weight'],
};

/**
 * The PyTorch parameter name implied by a torch.onnx.export node name: scopes `/fpn/inner_blocks.2/
 * inner_blocks.2.0/Conv` give module `fpn.inner_blocks.2.0`, slot 2 of a Conv is its `bias`. Undefined
 * when the node name does not look like an exporter scope.
 */
export function derivedParameterName(node: OnnxNode, input: number): string | undefined {
  const slot = SLOT_NAMES[node.opType]?.[input];
  if (!slot || !node.name.startsWith('/')) return undefined;
  const segments = node.name.split('/').filter((s) => s !== '');
  segments.pop(); // the op itself ("Conv", "Gemm_1")
  if (segments.length === 0) return undefined;
  const path: string[] = [];
  for (const s of segments) {
    const prev = path[path.length - 1];
    if (prev !== undefined && s.startsWith(`${prev}.`)) path[path.length - 1] = s;
    else path.push(s);
  }
  return `${path.join('.')}.${slot}`;
}

function sameBytes(a: OnnxTensor, b: OnnxTensor): boolean {
  if (a.dataType !== b.dataType || a.dims.length !== b.dims.length) return false;
  if (a.dims.some((d, i) => d !== b.dims[i])) return false;
  if (a.strings || b.strings) return false;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Ties byte-identical initializers the way torch.onnx.export does: the first keeps its data, each later
 * one is removed and re-created as the output of an Identity node (placed at the start of the graph)
 * reading the first. Reproduces exported graphs' shared-initializer trap for tests; shrinks files.
 */
export function tieIdenticalInitializers(
  model: OnnxModel,
  options: { filter?: (tensor: OnnxTensor) => boolean } = {},
): OnnxModel {
  const graph = model.graph;
  const inputs = new Set(graph.inputs.map((v) => v.name));
  const filter = options.filter ?? (() => true);
  const buckets = new Map<string, OnnxTensor[]>();
  const keep: OnnxTensor[] = [];
  const identities: OnnxNode[] = [];
  const nodeNames = new Set(graph.nodes.map((n) => n.name));
  let k = 0;
  for (const t of graph.initializers) {
    if (inputs.has(t.name) || !filter(t) || t.strings) {
      keep.push(t);
      continue;
    }
    const key = `${t.dataType}|${t.dims.join(',')}|${t.data.byteLength}|${checksum(t.data)}`;
    const bucket = buckets.get(key) ?? [];
    const twin = bucket.find((b) => sameBytes(b, t));
    if (twin) {
      while (nodeNames.has(`Identity_${k}`)) k++;
      nodeNames.add(`Identity_${k}`);
      identities.push({
        name: `Identity_${k}`,
        opType: 'Identity',
        domain: '',
        inputs: [twin.name],
        outputs: [t.name],
        attributes: {},
      });
    } else {
      bucket.push(t);
      buckets.set(key, bucket);
      keep.push(t);
    }
  }
  if (identities.length === 0) return model;
  return {
    ...model,
    graph: { ...graph, nodes: [...identities.reverse(), ...graph.nodes], initializers: keep },
  };
}

function checksum(data: TensorData): number {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let h = 0x811c9dc5;
  const step = Math.max(1, Math.floor(bytes.length / 4096));
  for (let i = 0; i < bytes.length; i += step) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/** Asserts that a model has no shared parameter initializers (for code that trains every parameter). */
export function assertNoSharedParameters(model: OnnxModel, what = `graph '${model.graph.name}'`): void {
  const shared = findSharedInitializers(model).filter((g) => g.kind === 'parameter');
  if (shared.length === 0) return;
  const list = shared
    .slice(0, 4)
    .map((g) => `'${g.initializer}' (read as ${[...new Set(g.uses.map((u) => u.via))].join(', ')})`)
    .join('; ');
  throw new GraphError(`${what} has ${shared.length} shared parameter initializer(s): ${list}`, {
    hint: 'untie them with untieSharedInitializers() so each consumer trains its own copy',
  });
}
