/**
 * Reference (float64) Resize, opset 11+: nearest (all nearest_mode values) and linear (n-linear over every
 * resized axis), every coordinate_transformation_mode, sizes or scales, the opset-18 `axes` and
 * `keep_aspect_ratio_policy`. Coordinates are computed in float64 from the ONNX formulas; test cases avoid
 * exact rounding ties, where onnxruntime's float32 arithmetic could pick the other neighbour.
 */
import { getFloat, getInt, getInts, getString, type OnnxNode } from '../../../src/onnx';
import {
  makeTensor,
  need,
  sizeOf,
  stridesOf,
  unravel,
  type RefOpContext,
  type RefOpTable,
  type RefTensor,
} from './tensor';

/** Source coordinate of output index `x` along one axis. */
export function originalCoordinate(
  mode: string,
  x: number,
  scale: number,
  lenOut: number,
  lenIn: number,
  roiStart: number,
  roiEnd: number,
): number {
  switch (mode) {
    case 'half_pixel':
      return (x + 0.5) / scale - 0.5;
    case 'half_pixel_symmetric': {
      const adjustment = lenOut / (scale * lenIn);
      const offset = (lenIn / 2) * (1 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    case 'pytorch_half_pixel':
      return lenOut > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case 'align_corners':
      return lenOut === 1 ? 0 : (x * (lenIn - 1)) / (lenOut - 1);
    case 'asymmetric':
      return x / scale;
    case 'tf_half_pixel_for_nn':
      return (x + 0.5) / scale;
    case 'tf_crop_and_resize':
      return lenOut > 1
        ? roiStart * (lenIn - 1) + (x * (roiEnd - roiStart) * (lenIn - 1)) / (lenOut - 1)
        : 0.5 * (roiStart + roiEnd) * (lenIn - 1);
    default:
      throw new Error(`unknown coordinate_transformation_mode '${mode}'`);
  }
}

/** Nearest source index for a source coordinate. */
export function nearestIndex(mode: string, v: number): number {
  switch (mode) {
    case 'round_prefer_floor':
      return v - Math.floor(v) === 0.5 ? Math.floor(v) : Math.round(v);
    case 'round_prefer_ceil':
      return v - Math.floor(v) === 0.5 ? Math.ceil(v) : Math.round(v);
    case 'floor':
      return Math.floor(v);
    case 'ceil':
      return Math.ceil(v);
    default:
      throw new Error(`unknown nearest_mode '${mode}'`);
  }
}

interface AxisPlan {
  /** For each output index: (input index, weight) pairs; empty means the extrapolation value. */
  taps: [number, number][][];
}

function axisPlan(
  node: OnnxNode,
  mode: string,
  lenIn: number,
  lenOut: number,
  scale: number,
  roiStart: number,
  roiEnd: number,
): AxisPlan {
  const ctm = getString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nearestMode = getString(node, 'nearest_mode', 'round_prefer_floor');
  const extrapolate = ctm === 'tf_crop_and_resize';
  const taps: [number, number][][] = [];
  for (let o = 0; o < lenOut; o++) {
    if (scale === 1 && !extrapolate && lenIn === lenOut) {
      taps.push([[o, 1]]);
      continue;
    }
    const v = originalCoordinate(ctm, o, scale, lenOut, lenIn, roiStart, roiEnd);
    if (extrapolate && (v < 0 || v > lenIn - 1)) {
      taps.push([]);
      continue;
    }
    if (mode === 'nearest') {
      const i = Math.min(Math.max(nearestIndex(nearestMode, v), 0), lenIn - 1);
      taps.push([[i, 1]]);
    } else {
      const c = Math.min(Math.max(v, 0), lenIn - 1);
      const i0 = Math.floor(c);
      const i1 = Math.min(i0 + 1, lenIn - 1);
      const f = c - i0;
      taps.push(
        i0 === i1
          ? [[i0, 1]]
          : [
              [i0, 1 - f],
              [i1, f],
            ],
      );
    }
  }
  return { taps };
}

function resize(inputs: readonly (RefTensor | undefined)[], node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const rank = x.dims.length;
  const mode = getString(node, 'mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear')
    throw new Error(`${ctx.label}: reference supports nearest/linear`);
  if (getInt(node, 'antialias', 0) !== 0) throw new Error(`${ctx.label}: reference has no antialias`);
  if (ctx.opset < 11) throw new Error(`${ctx.label}: reference Resize needs opset >= 11`);
  const axes = (getInts(node, 'axes') ?? x.dims.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
  const roiT = inputs[1];
  const scalesT = inputs[2];
  const sizesT = inputs[3];
  const scales = new Array<number>(rank).fill(1);
  const outDims = [...x.dims];
  if (sizesT && sizesT.data.length > 0) {
    axes.forEach((a, i) => {
      outDims[a] = sizesT.data[i];
      scales[a] = sizesT.data[i] / x.dims[a];
    });
    const policy = getString(node, 'keep_aspect_ratio_policy', 'stretch');
    if (policy !== 'stretch') {
      const pick = policy === 'not_larger' ? Math.min : Math.max;
      const s = pick(...axes.map((a) => scales[a]));
      for (const a of axes) {
        scales[a] = s;
        outDims[a] = Math.round(s * x.dims[a]);
      }
    }
  } else if (scalesT && scalesT.data.length > 0) {
    axes.forEach((a, i) => {
      scales[a] = scalesT.data[i];
      outDims[a] = Math.floor(x.dims[a] * scalesT.data[i]);
    });
  } else {
    throw new Error(`${ctx.label}: needs scales or sizes`);
  }
  const roi: number[] = [];
  for (let a = 0; a < rank; a++) roi.push(0);
  for (let a = 0; a < rank; a++) roi.push(1);
  if (roiT && roiT.data.length > 0) {
    axes.forEach((a, i) => {
      roi[a] = roiT.data[i];
      roi[rank + a] = roiT.data[axes.length + i];
    });
  }
  const plans = x.dims.map((d, a) => axisPlan(node, mode, d, outDims[a], scales[a], roi[a], roi[rank + a]));
  const extrapolation = getFloat(node, 'extrapolation_value', 0);
  const y = makeTensor(x.dataType, outDims);
  const xs = stridesOf(x.dims);
  const n = sizeOf(outDims);
  for (let f = 0; f < n; f++) {
    const o = unravel(f, outDims);
    // Sum over the tensor product of every axis' taps.
    let terms: [number, number][] = [[0, 1]];
    let outside = false;
    for (let a = 0; a < rank && !outside; a++) {
      const t = plans[a].taps[o[a]];
      if (t.length === 0) outside = true;
      const next: [number, number][] = [];
      for (const [off, w] of terms) for (const [i, wi] of t) next.push([off + i * xs[a], w * wi]);
      terms = next;
    }
    if (outside) {
      y.data[f] = extrapolation;
      continue;
    }
    let acc = 0;
    for (const [off, w] of terms) acc += w * x.data[off];
    y.data[f] = acc;
  }
  return [y];
}

export const ops: RefOpTable = {
  Resize: resize,
};
