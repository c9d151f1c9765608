/**
 * Which initializers are trainable parameters and which are constants. By default a parameter is a float
 * initializer read (directly or through Identity nodes) by a weight/bias slot of Conv, ConvTranspose, Gemm
 * or MatMul (`isParameterSlot`), or added as the bias right after a MatMul; everything else (folded
 * batch-norm scales and shifts, shape constants) is a constant. Name patterns add or remove parameters.
 *
 * Counts are made on the model after untying shared parameter initializers (what training sees: one
 * parameter per consumer), and also reported as stored, where a tied initializer counts once.
 */
import { RlpkdError } from '../errors';
import { isFloatType } from '../onnx/infer/fold';
import { initializerBehind, producerMap } from '../onnx/graph-structure';
import {
  findSharedInitializers,
  isParameterSlot,
  untieSharedInitializersDetailed,
  type SharedInitializerGroup,
  type UntiedCopy,
} from '../onnx/shared-initializers';
import { shapeSize } from '../onnx/tensor-data';
import type { DataType, OnnxGraph, OnnxModel, OnnxTensor } from '../onnx/types';

/**
 * Name patterns that override the default choice. A pattern is a glob over the whole name (`*` matches any
 * run of characters, dots included; `?` one character) or a regular expression written `/.../flags`.
 * `trainable` adds matching float initializers; `frozen` removes matching ones and wins over `trainable`.
 */
export interface ParameterPatterns {
  trainable?: readonly string[];
  frozen?: readonly string[];
}

/** Patterns plus whether to untie shared parameters first. */
export interface ParameterOptions extends ParameterPatterns {
  /** Untie shared parameter initializers before classifying (default true, as training does). */
  untie?: boolean;
}

/** One initializer and why it is (or is not) trainable. */
export interface ParameterEntry {
  name: string;
  dataType: DataType;
  dims: number[];
  elements: number;
  /** `Conv weight`, `Gemm bias`, `MatMul bias (Add)`, `pattern`, or `constant` / `frozen` for constants. */
  role: string;
}

/** Trainable parameters and constants of a model, with element counts before and after untying. */
export interface ParameterClassification {
  /** Whether names and counts refer to the model after untying shared parameters or as stored. */
  counting: 'after-untying' | 'as-stored';
  /** The model the entries refer to (the untied copy when counting is 'after-untying'). */
  model: OnnxModel;
  trainable: ParameterEntry[];
  constants: ParameterEntry[];
  trainableElements: number;
  constantElements: number;
  /** Trainable elements of the model as stored: a tied initializer counts once. */
  storedTrainableElements: number;
  /** Shared initializer groups of the stored model (parameters and constants). */
  sharedInitializers: SharedInitializerGroup[];
  /** Initializers untying created. */
  untiedCopies: UntiedCopy[];
}

const SLOT_NAMES: Readonly<Record<string, readonly string[]>> = {
  Conv: ['input', 'weight', 'bias'],
  ConvTranspose: ['input', 'weight', 'bias'],
  Gemm: ['A', 'weight', 'bias'],
  MatMul: ['A', 'B'],
};

/** True when `name` matches a glob or `/regex/flags` pattern (whole-name match for globs). */
export function matchesNamePattern(name: string, pattern: string): boolean {
  return compilePattern(pattern).test(name);
}

function compilePattern(pattern: string): RegExp {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (re) {
    try {
      return new RegExp(re[1], re[2]);
    } catch (err) {
      throw new RlpkdError(
        `parameter pattern '${pattern}' is not a valid regular expression: ${(err as Error).message}`,
      );
    }
  }
  const body = pattern
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}

/** Initializer names the default rule makes trainable, with their roles. */
export function defaultTrainable(graph: OnnxGraph): Map<string, string> {
  const inits = new Map(graph.initializers.map((t) => [t.name, t]));
  const producer = producerMap(graph);
  const resolve = (name: string): OnnxTensor | undefined => initializerBehind(name, inits, producer);
  const roles = new Map<string, string>();
  const mark = (name: string, role: string): void => {
    const t = resolve(name);
    if (t && isFloatType(t.dataType) && !roles.has(t.name)) roles.set(t.name, role);
  };
  for (const node of graph.nodes) {
    node.inputs.forEach((name, i) => {
      if (name && isParameterSlot(node, i)) mark(name, `${node.opType} ${SLOT_NAMES[node.opType]?.[i] ?? i}`);
    });
    if (node.opType === 'Add' && (node.domain === '' || node.domain === 'ai.onnx')) {
      const [a, b] = node.inputs;
      if (producer.get(a)?.opType === 'MatMul' && b) mark(b, 'MatMul bias (Add)');
      else if (producer.get(b)?.opType === 'MatMul' && a) mark(a, 'MatMul bias (Add)');
    }
  }
  return roles;
}

function classify(
  model: OnnxModel,
  patterns: ParameterPatterns,
  checkUnmatched: boolean,
): { trainable: ParameterEntry[]; constants: ParameterEntry[] } {
  const graph = model.graph;
  const roles = defaultTrainable(graph);
  const add = (patterns.trainable ?? []).map((p) => ({ p, re: compilePattern(p), hits: 0 }));
  const freeze = (patterns.frozen ?? []).map((p) => ({ p, re: compilePattern(p), hits: 0 }));
  const trainable: ParameterEntry[] = [];
  const constants: ParameterEntry[] = [];
  for (const t of graph.initializers) {
    const entry = (role: string): ParameterEntry => ({
      name: t.name,
      dataType: t.dataType,
      dims: [...t.dims],
      elements: shapeSize(t.dims),
      role,
    });
    let role = roles.get(t.name);
    for (const a of add) {
      if (a.re.test(t.name)) {
        a.hits++;
        if (isFloatType(t.dataType)) role ??= 'pattern';
      }
    }
    let frozen = false;
    for (const f of freeze) {
      if (f.re.test(t.name)) {
        f.hits++;
        frozen = true;
      }
    }
    if (role !== undefined && !frozen) trainable.push(entry(role));
    else constants.push(entry(frozen && role !== undefined ? 'frozen' : 'constant'));
  }
  if (checkUnmatched) {
    const unmatched = [...add, ...freeze].filter((x) => x.hits === 0).map((x) => `'${x.p}'`);
    if (unmatched.length > 0) {
      throw new RlpkdError(
        `parameter pattern ${unmatched.join(', ')} matches no initializer of graph '${graph.name}'`,
        {
          hint: 'patterns are globs over whole names (body.layer1.*) or /regex/; run `rlpkd inspect --json` to see names',
        },
      );
    }
  }
  return { trainable, constants };
}

const sum = (entries: ParameterEntry[]): number => entries.reduce((a, e) => a + e.elements, 0);

/** Splits a model's initializers into trainable parameters and constants, and counts their elements. */
export function classifyParameters(
  model: OnnxModel,
  options: ParameterOptions = {},
): ParameterClassification {
  const shared = findSharedInitializers(model);
  const untie = options.untie ?? true;
  const untied = untie
    ? untieSharedInitializersDetailed(model, { filter: (g) => g.kind === 'parameter' })
    : { model, copies: [] };
  const main = classify(untied.model, options, true);
  const stored = untie && untied.copies.length > 0 ? classify(model, options, false) : main;
  return {
    counting: untie ? 'after-untying' : 'as-stored',
    model: untied.model,
    trainable: main.trainable,
    constants: main.constants,
    trainableElements: sum(main.trainable),
    constantElements: sum(main.constants),
    storedTrainableElements: sum(stored.trainable),
    sharedInitializers: shared,
    untiedCopies: untied.copies,
  };
}
