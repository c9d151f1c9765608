/**
 * Gradient checks: the gradient graph built by the autodiff, run in onnxruntime-node (float32), against
 * central finite differences of the same graph on the float64 reference interpreter.
 */
import { buildGradientGraph, type GradientTarget } from '../../src/autodiff';
import type { Dim, OnnxModel } from '../../src/onnx';
import { createSession, type HostTensor } from '../../src/runtime';
import { fromHost, fromOnnxTensor, runReference, type RefTensor } from './reference';

/**
 * Relative L2 bound for a float32 gradient graph against the float64 reference on the small op tables:
 * 32 float32 ulps (2^-23 each, 3.8e-6). The worst case observed is 4.9e-7 (Clip with trained bounds, about
 * 4 ulps; most cases stay below 1e-7), so the bound leaves an 8x margin for other CPUs' kernels, while a
 * wrong rule (a missing term, a wrong factor or axis) is off by 1e-2 or more.
 */
export const FLOAT32_GRADIENT_RTOL = 32 * 2 ** -23;

export interface GradCheckOptions {
  model: OnnxModel;
  /** The scalar loss tensor. */
  loss: string;
  /** Parameters to check (initializers or graph inputs). */
  params: string[];
  /** Values of every graph input (including parameters that are graph inputs). */
  feeds: Record<string, HostTensor>;
  /** Largest accepted relative L2 error ‖g − ref‖ / ‖ref‖ per parameter (default 1e-3). */
  rtol?: number;
  /** Largest accepted absolute error per element (default 1e-3 · max(1, max |ref|)). */
  atol?: number;
  /** Finite-difference step, scaled by max(1, |p|) (default 1e-6; the reference is float64). */
  h?: number;
  /** Passed to buildGradientGraph (e.g. a symbolic batch). */
  inputShapes?: Record<string, Dim[]>;
}

/** Comparison of one parameter's gradient. */
export interface ParamGradCheck {
  param: string;
  relL2: number;
  maxAbs: number;
  refNorm: number;
  ok: boolean;
}

export interface GradCheckReport {
  /** Loss from onnxruntime (float32) and from the reference (float64). */
  loss: { ort: number; ref: number };
  params: ParamGradCheck[];
  /** The gradient graph that was run. */
  gradientModel: OnnxModel;
  /** Gradients from onnxruntime, by parameter. */
  gradients: Record<string, HostTensor>;
  /** Finite-difference gradients, by parameter. */
  reference: Record<string, Float64Array>;
}

/** Current value of a parameter: its feed, else its initializer. */
function paramValue(model: OnnxModel, name: string, feeds: Record<string, HostTensor>): RefTensor {
  if (feeds[name]) return fromHost(feeds[name]);
  const init = model.graph.initializers.find((t) => t.name === name);
  if (!init) throw new Error(`grad-check: parameter '${name}' is neither fed nor an initializer`);
  return fromOnnxTensor(init);
}

/** Sum of the elements of the loss tensor in the reference interpreter. */
export function referenceLoss(
  model: OnnxModel,
  loss: string,
  feeds: Record<string, HostTensor | RefTensor>,
): number {
  const t = runReference(model, feeds).get(loss);
  if (!t) throw new Error(`grad-check: the reference did not compute '${loss}'`);
  return t.data.reduce((s, v) => s + v, 0);
}

/** Central finite differences of the reference loss with respect to every element of each parameter. */
export function finiteDifferenceGradients(
  model: OnnxModel,
  loss: string,
  params: readonly string[],
  feeds: Record<string, HostTensor>,
  h = 1e-6,
): Record<string, Float64Array> {
  const base: Record<string, HostTensor | RefTensor> = { ...feeds };
  const out: Record<string, Float64Array> = {};
  for (const p of params) {
    const value = paramValue(model, p, feeds);
    const grad = new Float64Array(value.data.length);
    for (let i = 0; i < value.data.length; i++) {
      const step = h * Math.max(1, Math.abs(value.data[i]));
      const at = (delta: number): number => {
        const data = Float64Array.from(value.data);
        data[i] += delta;
        return referenceLoss(model, loss, { ...base, [p]: { ...value, data } });
      };
      grad[i] = (at(step) - at(-step)) / (2 * step);
    }
    out[p] = grad;
  }
  return out;
}

/** Runs a model in onnxruntime-node (CPU, all graph optimizations) and returns every output. */
export async function runOrt(
  model: OnnxModel,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const session = await createSession(model);
  try {
    const wanted: Record<string, HostTensor> = {};
    for (const name of session.inputNames) {
      if (!feeds[name]) throw new Error(`grad-check: no feed for graph input '${name}'`);
      wanted[name] = feeds[name];
    }
    return await session.run(wanted);
  } finally {
    await session.release();
  }
}

/** Relative L2 and max-abs error of `got` against `ref`. */
export function compareArrays(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
): { relL2: number; maxAbs: number; refNorm: number; refMax: number } {
  if (got.length !== ref.length)
    throw new Error(`compare: ${got.length} values vs ${ref.length} reference values`);
  let diff2 = 0;
  let ref2 = 0;
  let maxAbs = 0;
  let refMax = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i] - ref[i];
    diff2 += d * d;
    ref2 += ref[i] * ref[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
    refMax = Math.max(refMax, Math.abs(ref[i]));
  }
  const refNorm = Math.sqrt(ref2);
  const relL2 = refNorm > 0 ? Math.sqrt(diff2) / refNorm : Math.sqrt(diff2) > 1e-6 ? Infinity : 0;
  return { relL2, maxAbs, refNorm, refMax };
}

/** The worst elements of a mismatch, as a table. */
function diffTable(
  param: string,
  dims: readonly number[],
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
): string {
  const rows = Array.from({ length: ref.length }, (_, i) => i)
    .sort((a, b) => Math.abs(got[b] - ref[b]) - Math.abs(got[a] - ref[a]))
    .slice(0, 8)
    .map((i) => `    [${i}] onnxruntime ${got[i].toExponential(6)}  reference ${ref[i].toExponential(6)}`);
  return [`  ${param} [${dims.join(', ')}], worst elements:`, ...rows].join('\n');
}

/**
 * Builds the gradient graph of `loss` for `params`, runs it in onnxruntime, and compares each gradient
 * with central finite differences on the float64 reference. Throws with a diff on failure; returns the
 * numbers either way.
 */
export async function checkGradients(options: GradCheckOptions): Promise<GradCheckReport> {
  const { model, loss, params, feeds } = options;
  const rtol = options.rtol ?? 1e-3;
  const target: GradientTarget = { loss, wrt: params };
  const built = buildGradientGraph(model, {
    targets: [target],
    ...(options.inputShapes ? { inputShapes: options.inputShapes } : {}),
  });
  const outputs = await runOrt(built.model, feeds);
  const lossOrt = Array.from(outputs[loss].data as Float32Array).reduce((s, v) => s + v, 0);
  const lossRef = referenceLoss(model, loss, feeds);
  const reference = finiteDifferenceGradients(model, loss, params, feeds, options.h);
  const gradients: Record<string, HostTensor> = {};
  const results: ParamGradCheck[] = [];
  const failures: string[] = [];
  if (Math.abs(lossOrt - lossRef) > 1e-4 * Math.max(1, Math.abs(lossRef))) {
    failures.push(
      `  loss: onnxruntime ${lossOrt} vs reference ${lossRef} (the reference and onnxruntime disagree)`,
    );
  }
  for (const g of built.gradients) {
    const got = outputs[g.output];
    gradients[g.parameter] = got;
    const ref = reference[g.parameter];
    const value = paramValue(model, g.parameter, feeds);
    const gotArr = Array.from(got.data as Float32Array);
    const sameDims = got.dims.length === value.dims.length && got.dims.every((d, i) => d === value.dims[i]);
    const c = compareArrays(gotArr, ref);
    const atol = options.atol ?? 1e-3 * Math.max(1, c.refMax);
    const ok = sameDims && c.relL2 <= rtol && c.maxAbs <= atol;
    results.push({ param: g.parameter, relL2: c.relL2, maxAbs: c.maxAbs, refNorm: c.refNorm, ok });
    if (!sameDims)
      failures.push(`  ${g.parameter}: gradient dims [${got.dims}] but parameter dims [${value.dims}]`);
    else if (!ok) {
      failures.push(
        `  ${g.parameter}: relative L2 error ${c.relL2.toExponential(3)} (limit ${rtol}), max abs error ` +
          `${c.maxAbs.toExponential(3)} (limit ${atol.toExponential(3)}), |ref| = ${c.refNorm.toExponential(3)}`,
      );
      failures.push(diffTable(g.parameter, value.dims, gotArr, ref));
    }
  }
  const report = {
    loss: { ort: lossOrt, ref: lossRef },
    params: results,
    gradientModel: built.model,
    gradients,
    reference,
  };
  if (failures.length > 0) {
    throw new Error(`gradient check of '${loss}' failed:\n${failures.join('\n')}`);
  }
  return report;
}

/** One line per parameter, for test logs: `W relL2=1.2e-6 maxAbs=3.4e-7`. */
export function formatReport(report: GradCheckReport): string {
  return report.params
    .map((p) => `${p.param} relL2=${p.relL2.toExponential(2)} maxAbs=${p.maxAbs.toExponential(2)}`)
    .join(', ');
}
