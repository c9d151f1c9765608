/**
 * Checks one gradient rule in isolation: emits forward node + rule (../helpers/rule-harness, on the
 * production GradContext), runs it in onnxruntime, and compares the forward output with the float64
 * reference op and every requested input gradient with central finite differences of L = Σ dY·Y over the
 * float64 reference.
 */
import { buildRuleGraph, type RuleGraphSpec } from '../helpers/rule-harness';
import type { GradientRuleEntry } from '../../src/autodiff/types';
import { DataType, toAttributeValue, type AttributeValue, type Dim, type OnnxNode } from '../../src/onnx';
import { createSession, type HostTensor } from '../../src/runtime';
import { createRng, type Rng } from '../../src/util/rng';
import type { RefOpTable, RefTensor } from '../helpers/reference/tensor';

/** One input of a rule case: its static shape ('N' marks the dynamic batch axis) or a constant. */
export interface CaseInput {
  name: string;
  /** Shape with the batch axis written as 'N'. */
  shape: Dim[];
  /** Constant initializer values (non-differentiable inputs: Resize sizes, ...). */
  constant?: { dataType: DataType; values: number[] };
  /** Generates values instead of uniform(-1, 1) (e.g. positive variances, distinct values for MaxPool). */
  init?: (n: number, rng: Rng) => number[];
}

export interface RuleCase {
  opType: string;
  attributes?: RuleGraphSpec['attributes'];
  inputs: (CaseInput | undefined)[];
  /** Which input gradients to request and check (default: every non-constant input). */
  needs?: boolean[];
  opset?: number;
  /** Batch sizes to run the same graph with (default [2]). */
  batches?: number[];
  /** Finite-difference step (default 1e-3; the ops are linear or piecewise linear in each input). */
  h?: number;
  /** Check at most this many elements per input, chosen at random (default: all). */
  maxChecks?: number;
}

/** Worst relative error per checked input, for printing and asserting. */
export interface RuleCheckResult {
  forwardError: number;
  gradErrors: Record<string, number>;
}

function concreteShape(shape: readonly Dim[], batch: number): number[] {
  return shape.map((d) => (d === 'N' ? batch : (d as number)));
}

function sizeOf(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Relative error: max |a − b| / max(max |b|, tiny). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(Number(a[i]) - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-12);
}

/** Runs the case and returns the worst errors (forward vs reference, each gradient vs finite differences). */
export async function checkRule(
  entry: GradientRuleEntry,
  table: RefOpTable,
  c: RuleCase,
  seed = 1,
): Promise<RuleCheckResult> {
  const opset = c.opset ?? 17;
  const attributes: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(c.attributes ?? {}))
    if (v !== undefined) attributes[k] = toAttributeValue(v);
  const refNode: OnnxNode = {
    name: c.opType.toLowerCase(),
    opType: c.opType,
    domain: '',
    inputs: [],
    outputs: ['y'],
    attributes,
  };
  const rng = createRng(seed);
  // Output shape from the reference on batch-1 inputs, with the batch axis made symbolic again.
  const refOp = table[c.opType];
  const mk = (batch: number): (RefTensor | undefined)[] =>
    c.inputs.map((i) => {
      if (!i) return undefined;
      const dims = concreteShape(i.shape, batch);
      if (i.constant)
        return { dataType: i.constant.dataType, dims, data: Float64Array.from(i.constant.values) };
      const n = sizeOf(dims);
      const vals = i.init ? i.init(n, rng) : Array.from({ length: n }, () => rng.uniform(-1, 1));
      return { dataType: DataType.FLOAT, dims, data: Float64Array.from(Float32Array.from(vals)) };
    });
  const spec: RuleGraphSpec = {
    opType: c.opType,
    attributes: c.attributes,
    opset,
    inputs: c.inputs.map((i) =>
      i
        ? {
            name: i.name,
            shape: i.shape,
            dataType: i.constant?.dataType ?? DataType.FLOAT,
            ...(i.constant
              ? {
                  value: {
                    name: i.name,
                    dataType: i.constant.dataType,
                    dims: i.shape as number[],
                    data:
                      i.constant.dataType === DataType.INT64
                        ? BigInt64Array.from(i.constant.values.map((v) => BigInt(v)))
                        : Float32Array.from(i.constant.values),
                  },
                }
              : {}),
          }
        : undefined,
    ),
    outputs: [],
    needs: c.needs ?? c.inputs.map((i) => !!i && !i.constant),
  };
  const refCtx = { opset, label: `${c.opType} (reference)` };
  // Output shape from the reference at batch 1 and 2: the dims that differ are the symbolic batch.
  const y1 = refOp(mk(1), refNode, refCtx)[0];
  const y2 = refOp(mk(2), refNode, refCtx)[0];
  if (!y1 || !y2) throw new Error('reference produced no output');
  const outShape: Dim[] = y1.dims.map((d, i) => (d !== y2.dims[i] ? 'N' : d));
  const graph = buildRuleGraph({ ...spec, outputs: [outShape] }, entry);
  const session = await createSession(graph.model);
  const result: RuleCheckResult = { forwardError: 0, gradErrors: {} };
  try {
    for (const batch of c.batches ?? [2]) {
      const inputs = mk(batch);
      const refOut = (xs: (RefTensor | undefined)[]): RefTensor => {
        const y = refOp(xs, refNode, refCtx)[0];
        if (!y) throw new Error('reference produced no output');
        return y;
      };
      const y = refOut(inputs);
      const dyVals = Float64Array.from(
        Float32Array.from(Array.from({ length: y.data.length }, () => rng.uniform(-1, 1))),
      );
      const feeds: Record<string, HostTensor> = {};
      c.inputs.forEach((i, k) => {
        const t = inputs[k];
        if (i && t && !i.constant) feeds[i.name] = { data: Float32Array.from(t.data), dims: t.dims };
      });
      feeds[graph.outputGradInputs[0]] = { data: Float32Array.from(dyVals), dims: y.dims };
      const out = await session.run(feeds);
      result.forwardError = Math.max(
        result.forwardError,
        relErr(out[graph.forwardOutputs[0]].data as Float32Array, y.data),
      );
      const loss = (xs: (RefTensor | undefined)[]): number => {
        const yy = refOut(xs);
        let s = 0;
        for (let j = 0; j < yy.data.length; j++) s += yy.data[j] * dyVals[j];
        return s;
      };
      const h = c.h ?? 1e-3;
      c.inputs.forEach((inp, k) => {
        const gname = graph.inputGradOutputs[k];
        if (!inp || !spec.needs?.[k]) return;
        if (!gname) throw new Error(`rule gave no gradient for input ${k} (${inp.name})`);
        const got = out[gname];
        const base = inputs[k] as RefTensor;
        if (got.dims.join(',') !== base.dims.join(',')) {
          throw new Error(`gradient of ${inp.name} has shape [${got.dims}] instead of [${base.dims}]`);
        }
        const n = base.data.length;
        let idx = Array.from({ length: n }, (_, j) => j);
        if (c.maxChecks && n > c.maxChecks) idx = Array.from({ length: c.maxChecks }, () => rng.int(n));
        const fd: number[] = [];
        const an: number[] = [];
        for (const j of idx) {
          const orig = base.data[j];
          base.data[j] = orig + h;
          const lp = loss(inputs);
          base.data[j] = orig - h;
          const lm = loss(inputs);
          base.data[j] = orig;
          fd.push((lp - lm) / (2 * h));
          an.push(Number(got.data[j]));
        }
        const e = relErr(an, fd);
        const key = `${inp.name}@N=${batch}`;
        result.gradErrors[key] = e;
      });
    }
  } finally {
    await session.release();
  }
  return result;
}

/** Largest gradient error of a result. */
export function worstGrad(r: RuleCheckResult): number {
  return Math.max(0, ...Object.values(r.gradErrors));
}
