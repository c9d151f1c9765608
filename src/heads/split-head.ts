/**
 * A task head graph (one input per pyramid level, task outputs) split into one part per level and what
 * combines them, so a deployed student runs the head only on the levels its policy computed.
 *
 * A node belongs to the levels it reads (forward from the head's inputs; constants belong to none).
 * A level's part is every node that reads that level alone; its outputs are the tensors the nodes of
 * several levels read, or head outputs it computes alone. What reads several levels combines them:
 * - 'concat': every combining node is a Concat on axis 1 that makes a head output from one tensor per
 *   level (the FCOS head, shared across levels: per-level location rows), or there are none (one level,
 *   as the classification head on the coarsest level). The runtime concatenates the computed levels'
 *   rows itself, so a skipped level is simply absent.
 * - 'merge': the combining nodes form a graph (`merge`) whose inputs are the parts' outputs, and every
 *   part output enters it only through a tree of Add nodes (a sum of per-level branches, as the Semantic
 *   FPN head): a skipped level is fed as zeros, which adds nothing, so it is exactly absent.
 * Anything else (a head that mixes levels other than by concatenation or a sum) is refused: skipping a
 * level would change what the head computes on the others.
 */
import { GraphError } from '../errors';
import { pruneToOutputs } from '../onnx/extract-subgraph';
import { consumerMap, nodeReads, topologicalSort } from '../onnx/graph-structure';
import { inferShapes } from '../onnx/shape-inference';
import { DataType, type Dim, type OnnxModel, type OnnxNode, type ValueInfo } from '../onnx/types';

/** One level's part of a split head. */
export interface HeadPart {
  /** The head input (level tensor) the part reads. */
  input: string;
  model: OnnxModel;
  /**
   * The part's outputs by what they feed: for 'concat', head output name → the part's rows of it; for
   * 'merge', merge input → the same name.
   */
  outputs: Record<string, string>;
  /** Shape of each part output (by tensor name) at batch 1. */
  dims: Record<string, number[]>;
}

/** A head split by level (see module doc). */
export interface HeadSplit {
  combine: 'concat' | 'merge';
  /** One per head input, in the head's input order. */
  parts: HeadPart[];
  /** 'merge' only: part outputs in → the head's outputs. */
  merge?: OnnxModel;
  /** The head's outputs. */
  outputs: string[];
}

/** Per-image shapes of the head's level inputs. */
export type HeadInputShapes = Record<string, Dim[]>;

const describe = (g: { name: string }): string => `head '${g.name}'`;

/** Splits `head` by level; `inputShapes` are its level inputs' shapes at batch 1 (see module doc). */
export function splitHeadByLevel(head: OnnxModel, inputShapes: HeadInputShapes): HeadSplit {
  const g = head.graph;
  const inits = new Set(g.initializers.map((t) => t.name));
  const levels = g.inputs.filter((v) => !inits.has(v.name)).map((v) => v.name);
  if (levels.length === 0) {
    throw new GraphError(`${describe(g)} has no level inputs`, { hint: 'pass a head graph (levels in)' });
  }
  const order = topologicalSort(g);
  // Bit i: the node reads (through any chain) level i.
  const tensorMask = new Map<string, bigint>(levels.map((l, i) => [l, 1n << BigInt(i)]));
  const nodeMask = new Map<OnnxNode, bigint>();
  for (const n of order) {
    const m = nodeReads(n).reduce((acc, r) => acc | (tensorMask.get(r) ?? 0n), 0n);
    nodeMask.set(n, m);
    for (const o of n.outputs) if (o) tensorMask.set(o, m);
  }
  const single = (m: bigint): number => {
    for (let i = 0; i < levels.length; i++) if (m === 1n << BigInt(i)) return i;
    return -1;
  };
  const combining = order.filter((n) => single(nodeMask.get(n)!) < 0 && nodeMask.get(n)! !== 0n);
  const outputNames = g.outputs.map((o) => o.name);

  // Part outputs: tensors of one level that combining nodes read, and head outputs of one level.
  const partOutputs: string[][] = levels.map(() => []);
  const addOutput = (t: string): void => {
    const i = single(tensorMask.get(t) ?? 0n);
    if (i < 0) return;
    if (levels[i] === t) {
      throw new GraphError(`${describe(g)} combines level '${t}' with others before any per-level layer`, {
        hint: 'a splittable head runs layers on each level before combining them',
      });
    }
    if (!partOutputs[i].includes(t)) partOutputs[i].push(t);
  };
  for (const n of combining) for (const r of nodeReads(n)) addOutput(r);
  for (const o of outputNames) addOutput(o);
  for (const o of outputNames) {
    if ((tensorMask.get(o) ?? 0n) === 0n) {
      throw new GraphError(`${describe(g)}: output '${o}' reads no level`, {
        hint: 'every head output must depend on the pyramid levels',
      });
    }
  }

  const info = inferShapes(head, inputShapes);
  // Shapes were inferred at batch 1; the parts keep the head's own (dynamic) batch.
  const batch: Dim = g.inputs.find((v) => v.name === levels[0])?.shape?.[0] ?? 'batch';
  const valueInfo = (name: string): ValueInfo => {
    const t = info.get(name);
    const shape = t?.shape ? [batch, ...t.shape.slice(1)] : undefined;
    return { name, dataType: t?.dataType ?? DataType.FLOAT, ...(shape ? { shape } : {}) };
  };
  const staticDims = (name: string): number[] => {
    const s = info.get(name)?.shape;
    if (!s || s.some((d) => typeof d !== 'number')) {
      throw new GraphError(`${describe(g)}: the shape of '${name}' is not known at the given level sizes`, {
        hint: 'give the head static channel counts',
      });
    }
    return s as number[];
  };

  const concat = concatCombination(combining, outputNames, levels, partOutputs, (t) =>
    single(tensorMask.get(t) ?? 0n),
  );
  if (!concat) checkSumMerge(head, combining, partOutputs.flat());

  const parts = levels.map((input, i): HeadPart => {
    const outs = partOutputs[i];
    if (outs.length === 0) {
      throw new GraphError(`${describe(g)}: level '${input}' feeds no output`, {
        hint: 'remove the unused level input from the head',
      });
    }
    const model = pruneToOutputs(head, outs.map(valueInfo));
    return {
      input,
      model: { ...model, graph: { ...model.graph, name: `${g.name}_${input}` } },
      outputs: Object.fromEntries(outs.map((t) => [concat?.get(t) ?? t, t])),
      dims: Object.fromEntries(outs.map((t) => [t, staticDims(t)])),
    };
  });
  if (concat) return { combine: 'concat', parts, outputs: outputNames };
  const merge = pruneToOutputs(head, g.outputs, partOutputs.flat().map(valueInfo));
  return {
    combine: 'merge',
    parts,
    merge: { ...merge, graph: { ...merge.graph, name: `${g.name}_merge` } },
    outputs: outputNames,
  };
}

/**
 * Part tensor → the head output it is the level's rows of, when the levels combine by concatenation
 * only (module doc); undefined when they do not.
 */
function concatCombination(
  combining: readonly OnnxNode[],
  outputs: readonly string[],
  levels: readonly string[],
  partOutputs: readonly string[][],
  levelOf: (t: string) => number,
): Map<string, string> | undefined {
  const into = new Map<string, string>();
  for (const n of combining) {
    const axis = n.attributes.axis;
    const ok =
      n.opType === 'Concat' &&
      axis?.type === 'int' &&
      axis.value === 1 &&
      outputs.includes(n.outputs[0]) &&
      n.inputs.length === levels.length &&
      n.inputs.every((t, i) => levelOf(t) === i);
    if (!ok) return undefined;
    for (const t of n.inputs) into.set(t, n.outputs[0]);
  }
  // Head outputs a single level computes are that level's rows as they are.
  for (const o of outputs) if (!into.has(o) && levelOf(o) >= 0) into.set(o, o);
  // Every part tensor must be some output's rows, and each level must give each output once.
  const all = partOutputs.flat();
  if (!all.every((t) => into.has(t))) return undefined;
  for (const o of outputs) {
    const per = levels.map((_, i) => partOutputs[i].filter((t) => into.get(t) === o).length);
    if (!(per.every((k) => k === 1) || (levels.length === 1 && per[0] === 1))) return undefined;
  }
  return into;
}

/** Refuses a merge where a skipped level (fed as zeros) would not be absent: see module doc. */
function checkSumMerge(
  head: OnnxModel,
  combining: readonly OnnxNode[],
  partOutputs: readonly string[],
): void {
  const consumers = consumerMap(head.graph);
  const inMerge = new Set(combining);
  const sumNodes = new Set<OnnxNode>();
  const stack = [...partOutputs];
  const seen = new Set<string>();
  let leaving = 0;
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    for (const c of consumers.get(t) ?? []) {
      if (!inMerge.has(c)) continue;
      if (c.opType !== 'Add') {
        // Only the complete sum may leave the Add tree.
        if (partOutputs.includes(t) || ++leaving > 1) throw notASum(head);
        continue;
      }
      sumNodes.add(c);
      stack.push(c.outputs[0]);
    }
  }
  if (head.graph.outputs.some((o) => seen.has(o.name) && !partOutputs.includes(o.name))) leaving++;
  if (leaving !== 1) throw notASum(head);
}

function notASum(head: OnnxModel): GraphError {
  return new GraphError(
    `${describe(head.graph)} combines its levels other than by concatenating them or summing per-level branches`,
    { hint: 'a head whose levels can be skipped concatenates per-level outputs or sums per-level branches' },
  );
}
