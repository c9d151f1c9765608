/**
 * Gradient of Resize (nearest and linear, opset 10+) in standard ONNX ops.
 *
 * Resize without antialias is separable: along each resized axis the output is a fixed matrix A
 * ([out, in]) times the input, so dX = A_hᵀ · dY · A_w (one MatMul per resized axis). The matrices are
 * built here from static shapes with onnxruntime's own float32 coordinate arithmetic (every
 * coordinate_transformation_mode and nearest_mode), so non-integer ratios such as 7→13 (torchvision FPN on
 * odd input sizes) route every gradient element exactly where the forward took it from. Nearest resizes by
 * integer factors whose index map is ⌊i/f⌋ (2× with asymmetric/floor or half_pixel/round_prefer_floor)
 * take a fast path: Reshape to [..., in, f, ...] and ReduceSum over the factor axes. The roi, scales and
 * sizes inputs are non-differentiable. Cubic mode and antialias are refused.
 */
import { GraphError } from '../../errors';
import { getInt, getInts, getString } from '../../onnx/attributes';
import { floatTensor } from '../../onnx/tensor-data';
import type { Dim, TensorData } from '../../onnx/types';
import type { GradContext, GradientRuleEntry } from '../types';

const f32 = Math.fround;

/** onnxruntime's source coordinate for output index `x` (float32 arithmetic, as its CPU kernel does). */
export function ortOriginalCoordinate(
  mode: string,
  x: number,
  scale: number,
  lenOut: number,
  lenIn: number,
  roiStart: number,
  roiEnd: number,
): number {
  switch (mode) {
    case 'asymmetric':
      return f32(x / scale);
    case 'pytorch_half_pixel':
      return lenOut > 1 ? f32(f32(f32(x + 0.5) / scale) - 0.5) : 0;
    case 'tf_half_pixel_for_nn':
      return f32(f32(x + 0.5) / scale);
    case 'align_corners':
      return lenOut === 1 ? 0 : f32(f32(x * f32(lenIn - 1)) / f32(lenOut - 1));
    case 'tf_crop_and_resize':
      if (lenOut > 1) {
        const a = f32(roiStart * f32(lenIn - 1));
        const c = f32(f32(f32(x * f32(roiEnd - roiStart)) * f32(lenIn - 1)) / f32(lenOut - 1));
        return f32(a + c);
      }
      return f32(0.5 * f32(roiStart + roiEnd) * (lenIn - 1));
    case 'half_pixel_symmetric': {
      const outputWidth = f32(scale * lenIn);
      const adjustment = f32(lenOut / outputWidth);
      const center = f32(lenIn / 2);
      const offset = f32(center * f32(1 - adjustment));
      return f32(offset + (x + 0.5) / scale - 0.5);
    }
    case 'half_pixel':
      return f32(f32(f32(x + 0.5) / scale) - 0.5);
    default:
      throw new GraphError(`unknown coordinate_transformation_mode '${mode}'`);
  }
}

function roundHalfAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

/** onnxruntime's nearest source index (before clamping); 'simple' is Resize-10's rule. */
export function ortNearestPixel(mode: string, v: number, downsample: boolean): number {
  switch (mode) {
    case 'simple':
      return downsample ? Math.ceil(v) : Math.trunc(v);
    case 'round_prefer_ceil':
      return roundHalfAway(v);
    case 'floor':
      return Math.floor(v);
    case 'ceil':
      return Math.ceil(v);
    case 'round_prefer_floor':
      return v === f32(Math.trunc(v) + 0.5) ? Math.floor(v) : roundHalfAway(v);
    default:
      throw new GraphError(`unknown nearest_mode '${mode}'`);
  }
}

/** How one axis maps input to output. */
export type AxisMap =
  | { kind: 'identity' }
  /** Nearest with out = f·in and source ⌊i/f⌋. */
  | { kind: 'repeat'; lenIn: number; factor: number }
  /** Dense [out, in] interpolation matrix, row-major. */
  | { kind: 'matrix'; lenIn: number; lenOut: number; values: Float32Array };

/** Per-axis parameters resolved from attributes and static inputs. */
export interface ResizeAxis {
  lenIn: number;
  lenOut: number;
  /** The float32 scale onnxruntime uses for this axis. */
  scale: number;
  roiStart: number;
  roiEnd: number;
}

/** The interpolation of one axis, from onnxruntime's nearest or (bi)linear setup code. */
export function axisMap(
  mode: 'nearest' | 'linear',
  ctm: string,
  nearestMode: string,
  ax: ResizeAxis,
  rank: number,
): AxisMap {
  const { lenIn, lenOut, scale } = ax;
  const extrapolate = ctm === 'tf_crop_and_resize';
  if (scale === 1 && lenIn === lenOut && (rank > 1 || mode === 'linear')) return { kind: 'identity' };
  const values = new Float32Array(lenOut * lenIn);
  const sources: number[] = [];
  for (let o = 0; o < lenOut; o++) {
    const v =
      scale === 1 && mode === 'linear'
        ? o
        : ortOriginalCoordinate(ctm, o, scale, lenOut, lenIn, ax.roiStart, ax.roiEnd);
    if (extrapolate && (v < 0 || v > lenIn - 1)) {
      sources.push(-1);
      continue;
    }
    if (mode === 'nearest') {
      const i = Math.min(Math.max(ortNearestPixel(nearestMode, v, scale < 1), 0), lenIn - 1);
      values[o * lenIn + i] = 1;
      sources.push(i);
    } else {
      const c = f32(Math.max(0, Math.min(v, lenIn - 1)));
      const i1 = Math.min(Math.trunc(c), lenIn - 1);
      const i2 = Math.min(i1 + 1, lenIn - 1);
      let d1 = f32(Math.abs(c - i1));
      let d2 = f32(Math.abs(c - i2));
      if (i1 === i2) {
        d1 = 0.5;
        d2 = 0.5;
      }
      values[o * lenIn + i1] += d2;
      values[o * lenIn + i2] += d1;
      sources.push(-2);
    }
  }
  if (mode === 'nearest' && lenOut % lenIn === 0) {
    const f = lenOut / lenIn;
    if (sources.every((s, o) => s === Math.floor(o / f))) {
      return f === 1 ? { kind: 'identity' } : { kind: 'repeat', lenIn, factor: f };
    }
  }
  return { kind: 'matrix', lenIn, lenOut, values };
}

function numbersOf(data: TensorData | undefined): number[] | undefined {
  if (!data) return undefined;
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) out.push(Number(data[i]));
  return out;
}

/** Whether an optional input is given and non-empty. */
function present(ctx: GradContext, name: string | undefined): boolean {
  if (!name) return false;
  const shape = ctx.info(name).shape;
  return !(shape && shape.length === 1 && shape[0] === 0);
}

/** Resolves sizes/scales/roi/axes to per-axis parameters exactly as onnxruntime's Resize kernel does. */
export function resizeAxes(ctx: GradContext, xShape: Dim[]): ResizeAxis[] {
  const { node } = ctx;
  const rank = xShape.length;
  const opset10 = ctx.opset < 11;
  const roiName = opset10 ? undefined : node.inputs[1];
  const scalesName = opset10 ? node.inputs[1] : node.inputs[2];
  const sizesName = opset10 ? undefined : node.inputs[3];
  const axes = (getInts(node, 'axes') ?? xShape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
  const yShape = ctx.info(node.outputs[0]).shape;
  const lenIn = xShape.map((d) => (typeof d === 'number' ? d : -1));
  const scales = new Array<number>(rank).fill(1);
  const lenOut = [...lenIn];
  if (present(ctx, sizesName)) {
    const given = numbersOf(ctx.info(sizesName as string).value);
    axes.forEach((a, i) => {
      const fromY = yShape?.[a];
      // A symbolic dim the output shares with the input (the batch) is not resized.
      const kept = typeof fromY === 'string' && fromY === xShape[a];
      const out = given ? given[i] : typeof fromY === 'number' ? fromY : kept ? lenIn[a] : undefined;
      if (out === undefined) {
        throw new GraphError(`${ctx.label}: output size on axis ${a} is not known statically`, {
          hint: 'give the model static input sizes so the resize sizes fold to constants',
        });
      }
      lenOut[a] = out;
    });
    for (const a of axes) {
      if (lenIn[a] < 0 && lenOut[a] !== lenIn[a]) {
        throw new GraphError(`${ctx.label}: resized axis ${a} needs a static input size`);
      }
      scales[a] = lenIn[a] <= 0 ? 1 : f32(f32(lenOut[a]) / f32(lenIn[a]));
    }
    const policy = getString(node, 'keep_aspect_ratio_policy', 'stretch');
    if (policy !== 'stretch') {
      const pick = policy === 'not_larger' ? Math.min : Math.max;
      const s = pick(...axes.map((a) => scales[a]));
      for (const a of axes) {
        scales[a] = s;
        lenOut[a] = Math.round(f32(s * lenIn[a]));
      }
    }
  } else if (present(ctx, scalesName)) {
    const given = numbersOf(ctx.info(scalesName as string).value);
    if (!given) {
      throw new GraphError(`${ctx.label}: the scales input is not a constant`, {
        hint: 'export the resize with constant scales, or with sizes and static shapes',
      });
    }
    axes.forEach((a, i) => {
      scales[a] = f32(given[i]);
      if (scales[a] !== 1) {
        if (lenIn[a] < 0) throw new GraphError(`${ctx.label}: resized axis ${a} needs a static input size`);
        lenOut[a] = Math.trunc(f32(scales[a] * lenIn[a]));
      }
    });
  } else {
    throw new GraphError(`${ctx.label}: neither scales nor sizes is given`);
  }
  const roiStart = new Array<number>(rank).fill(0);
  const roiEnd = new Array<number>(rank).fill(1);
  const ctm = opset10 ? 'asymmetric' : getString(node, 'coordinate_transformation_mode', 'half_pixel');
  if (ctm === 'tf_crop_and_resize') {
    const roi = roiName ? numbersOf(ctx.info(roiName).value) : undefined;
    if (!roi) throw new GraphError(`${ctx.label}: tf_crop_and_resize needs a constant roi input`);
    axes.forEach((a, i) => {
      roiStart[a] = f32(roi[i]);
      roiEnd[a] = f32(roi[axes.length + i]);
    });
  }
  return lenIn.map((li, a) => ({
    lenIn: li,
    lenOut: lenOut[a],
    scale: scales[a],
    roiStart: roiStart[a],
    roiEnd: roiEnd[a],
  }));
}

/** Per-axis maps for a Resize node; throws for cubic mode and antialias. */
export function resizeAxisMaps(ctx: GradContext, xShape: Dim[]): AxisMap[] {
  const { node } = ctx;
  const mode = getString(node, 'mode', 'nearest');
  if (mode === 'cubic') {
    throw new GraphError(`${ctx.label}: the gradient of cubic Resize is not supported`, {
      hint: "use mode 'nearest' or 'linear'",
    });
  }
  if (mode !== 'nearest' && mode !== 'linear') throw new GraphError(`${ctx.label}: unknown mode '${mode}'`);
  if (getInt(node, 'antialias', 0) !== 0) {
    throw new GraphError(`${ctx.label}: the gradient of an antialiased Resize is not supported`, {
      hint: 'export the resize with antialias=0',
    });
  }
  const opset10 = ctx.opset < 11;
  const ctm = opset10 ? 'asymmetric' : getString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nearestMode = opset10 ? 'simple' : getString(node, 'nearest_mode', 'round_prefer_floor');
  return resizeAxes(ctx, xShape).map((ax) => {
    if (ax.lenIn < 0) return { kind: 'identity' };
    return axisMap(mode, ctm, nearestMode, ax, xShape.length);
  });
}

/** dX for 'repeat' axes only: Reshape dY to [..., in, f, ...] and sum the factor axes. */
function repeatGrad(ctx: GradContext, dY: string, maps: AxisMap[], xShape: Dim[]): string {
  const first = maps.findIndex((m) => m.kind !== 'identity');
  const dims: number[] = [];
  const factorAxes: number[] = [];
  maps.forEach((m, a) => {
    const d = xShape[a];
    if (a < first) {
      dims.push(0);
      return;
    }
    if (typeof d !== 'number') throw new GraphError(`${ctx.label}: axis ${a} needs a static size`);
    dims.push(d);
    if (m.kind === 'repeat') {
      factorAxes.push(dims.length);
      dims.push(m.factor);
    }
  });
  const split = ctx.b.op('Reshape', [dY, ctx.ints(dims)]);
  return ctx.reduceSum(split, factorAxes, false);
}

/** The dense [out, in] matrix of a non-identity axis map. */
function denseMatrix(m: Exclude<AxisMap, { kind: 'identity' }>): {
  lenIn: number;
  lenOut: number;
  values: Float32Array;
} {
  if (m.kind === 'matrix') return m;
  const lenOut = m.lenIn * m.factor;
  const values = new Float32Array(lenOut * m.lenIn);
  for (let o = 0; o < lenOut; o++) values[o * m.lenIn + Math.floor(o / m.factor)] = 1;
  return { lenIn: m.lenIn, lenOut, values };
}

function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

/** dX = Aᵀ applied along every non-identity axis (last axis first, as MatMuls with constant matrices). */
function matrixGrad(ctx: GradContext, dY: string, maps: AxisMap[]): string {
  const { b } = ctx;
  const rank = maps.length;
  let t = dY;
  for (let a = rank - 1; a >= 0; a--) {
    const m = maps[a];
    if (m.kind === 'identity') continue;
    const { lenIn, lenOut, values } = denseMatrix(m);
    const base = `${ctx.node.name}_grad_interp${a}`;
    if (a === rank - 2) {
      const matT = b.initializer(floatTensor(`${base}_t`, [lenIn, lenOut], transpose(values, lenOut, lenIn)));
      t = b.op('MatMul', [matT, t]);
      continue;
    }
    const mat = b.initializer(floatTensor(base, [lenOut, lenIn], values));
    if (a === rank - 1) {
      t = b.op('MatMul', [t, mat]);
    } else {
      const perm = Array.from({ length: rank }, (_, i) => i);
      perm[a] = rank - 1;
      perm[rank - 1] = a;
      t = b.op('Transpose', [b.op('MatMul', [b.op('Transpose', [t], { perm }), mat])], { perm });
    }
  }
  return t;
}

const resize: GradientRuleEntry = {
  opType: 'Resize',
  nonDifferentiableInputs: [1, 2, 3],
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY || !ctx.needs[0]) return [];
    const x = ctx.node.inputs[0];
    const xShape = ctx.info(x).shape;
    if (!xShape) throw new GraphError(`${ctx.label}: the rank of input '${x}' is unknown`);
    const maps = resizeAxisMaps(ctx, xShape);
    if (maps.every((m) => m.kind === 'identity')) return [dY];
    return [
      maps.every((m) => m.kind !== 'matrix') ? repeatGrad(ctx, dY, maps, xShape) : matrixGrad(ctx, dY, maps),
    ];
  },
};

export const rules: GradientRuleEntry[] = [resize];
