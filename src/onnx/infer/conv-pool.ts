/** Shape rules for windowed ops: Conv, ConvTranspose, MaxPool, AveragePool, LpPool and the global pools. */
import { getInt, getInts, getString } from '../attributes';
import { DataType, type Dim } from '../types';
import { tensor } from './fold';
import type { InferContext, Inferred, ShapeRule } from './types';

interface WindowParams {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
  autoPad: string;
  ceilMode: boolean;
}

function windowParams(ctx: InferContext, kernel: number[], useDilations: boolean): WindowParams {
  const nd = kernel.length;
  const { node } = ctx;
  const strides = getInts(node, 'strides', new Array<number>(nd).fill(1));
  const dilations = useDilations
    ? getInts(node, 'dilations', new Array<number>(nd).fill(1))
    : new Array<number>(nd).fill(1);
  const pads = getInts(node, 'pads', new Array<number>(2 * nd).fill(0));
  if (strides.length !== nd) return ctx.fail(`strides must have ${nd} values, got ${strides.length}`);
  if (dilations.length !== nd) return ctx.fail(`dilations must have ${nd} values, got ${dilations.length}`);
  if (pads.length !== 2 * nd) return ctx.fail(`pads must have ${2 * nd} values, got ${pads.length}`);
  if (strides.some((s) => s < 1)) return ctx.fail(`strides must be positive, got [${strides.join(', ')}]`);
  return {
    kernel,
    strides,
    dilations,
    pads,
    autoPad: getString(node, 'auto_pad', 'NOTSET'),
    ceilMode: getInt(node, 'ceil_mode', 0) === 1,
  };
}

/** Output length of one spatial axis of a strided window (Conv and pools). */
function windowOutputDim(input: Dim, axis: number, p: WindowParams, nd: number): Dim {
  const k = p.kernel[axis];
  const s = p.strides[axis];
  const effective = (k - 1) * p.dilations[axis] + 1;
  const padTotal = p.pads[axis] + p.pads[axis + nd];
  if (typeof input !== 'number') {
    // A symbolic length survives only windows that keep the length: stride 1 and "same" padding.
    if (s !== 1) return null;
    if (p.autoPad === 'SAME_UPPER' || p.autoPad === 'SAME_LOWER') return input;
    if (p.autoPad === 'NOTSET' && padTotal === effective - 1) return input;
    return null;
  }
  if (p.autoPad === 'SAME_UPPER' || p.autoPad === 'SAME_LOWER') return Math.ceil(input / s);
  const pad = p.autoPad === 'VALID' ? 0 : padTotal;
  const span = input + pad - effective;
  if (span < 0) return 0;
  if (!p.ceilMode) return Math.floor(span / s) + 1;
  let out = Math.ceil(span / s) + 1;
  // A last window starting inside the right padding is dropped (PyTorch and onnxruntime agree).
  const padHead = p.autoPad === 'VALID' ? 0 : p.pads[axis];
  if ((out - 1) * s >= input + padHead) out -= 1;
  return out;
}

function spatialOut(ctx: InferContext, x: Dim[], p: WindowParams): Dim[] {
  const nd = p.kernel.length;
  if (x.length !== nd + 2)
    return ctx.fail(`input has rank ${x.length}, expected ${nd + 2} for a ${nd}-D kernel`);
  return x.slice(2).map((d, i) => windowOutputDim(d, i, p, nd));
}

const conv: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  const dt = ctx.dataType(0);
  const attrKernel = getInts(ctx.node, 'kernel_shape');
  const kernelFromW =
    w && w.length >= 3 && w.slice(2).every((d) => typeof d === 'number')
      ? (w.slice(2) as number[])
      : undefined;
  const kernel = attrKernel ?? kernelFromW;
  const channels: Dim = w ? w[0] : null;
  if (!kernel) return [tensor(dt, x ? [x[0], channels, ...x.slice(2).map(() => null)] : undefined)];
  const p = windowParams(ctx, kernel, true);
  if (!x) return [tensor(dt, [null, channels, ...kernel.map(() => null)])];
  const group = getInt(ctx.node, 'group', 1);
  if (w && typeof x[1] === 'number' && typeof w[1] === 'number' && x[1] !== w[1] * group) {
    ctx.fail(`input has ${x[1]} channels, but weight expects ${w[1]} × group ${group} = ${w[1] * group}`);
  }
  return [tensor(dt, [x[0], channels, ...spatialOut(ctx, x, p)])];
};

const convTranspose: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  const dt = ctx.dataType(0);
  const group = getInt(ctx.node, 'group', 1);
  const channels: Dim = w && typeof w[1] === 'number' ? w[1] * group : null;
  const kernel =
    getInts(ctx.node, 'kernel_shape') ??
    (w && w.slice(2).every((d) => typeof d === 'number') ? (w.slice(2) as number[]) : undefined);
  if (!x || !kernel) return [tensor(dt, x ? [x[0], channels, ...x.slice(2).map(() => null)] : undefined)];
  const nd = kernel.length;
  if (x.length !== nd + 2)
    return ctx.fail(`input has rank ${x.length}, expected ${nd + 2} for a ${nd}-D kernel`);
  const p = windowParams(ctx, kernel, true);
  const outputShape = getInts(ctx.node, 'output_shape');
  const outputPadding = getInts(ctx.node, 'output_padding', new Array<number>(nd).fill(0));
  if (outputPadding.length !== nd)
    ctx.fail(`output_padding must have ${nd} values, got ${outputPadding.length}`);
  const spatial: Dim[] = x.slice(2).map((d, i) => {
    if (outputShape) return outputShape[outputShape.length - nd + i];
    if (typeof d !== 'number') return null;
    const s = p.strides[i];
    if (p.autoPad === 'SAME_UPPER' || p.autoPad === 'SAME_LOWER') return d * s;
    const pad = p.autoPad === 'VALID' ? 0 : p.pads[i] + p.pads[i + nd];
    return s * (d - 1) + outputPadding[i] + (kernel[i] - 1) * p.dilations[i] + 1 - pad;
  });
  return [tensor(dt, [x[0], channels, ...spatial])];
};

function pool(withDilations: boolean, withIndices: boolean): ShapeRule {
  return (ctx) => {
    const x = ctx.shape(0);
    const dt = ctx.dataType(0);
    const kernel = getInts(ctx.node, 'kernel_shape');
    if (!kernel) return ctx.fail('attribute kernel_shape is required');
    const p = windowParams(ctx, kernel, withDilations);
    const shape = x ? [x[0], x[1], ...spatialOut(ctx, x, p)] : undefined;
    const outs: Inferred[] = [tensor(dt, shape)];
    if (withIndices) outs.push(tensor(DataType.INT64, shape));
    return outs;
  };
}

const globalPool: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  return [tensor(ctx.dataType(0), x ? [x[0], x[1], ...x.slice(2).map(() => 1)] : undefined)];
};

/** Shape rules of this family, by op type. */
export const rules: Record<string, ShapeRule> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: pool(true, true),
  AveragePool: (ctx) => pool(ctx.opset >= 19, false)(ctx),
  LpPool: (ctx) => pool(ctx.opset >= 18, false)(ctx),
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  GlobalLpPool: globalPool,
};
