/**
 * Shape rules for Resize and Upsample: output sizes from a `sizes` input (possibly computed by a
 * Shape/Gather/Concat chain, with symbolic batch passing through) or from `scales`.
 */
import { getFloats, getInts, getString } from '../attributes';
import type { Dim } from '../types';
import { normalizeAxis, tensor } from './fold';
import type { InferContext, ShapeRule } from './types';

function fromScales(
  ctx: InferContext,
  x: Dim[],
  axes: number[],
  scalesIndex: number,
  roiIndex: number,
): Dim[] {
  const scales = ctx.elems(scalesIndex);
  const out: Dim[] = [...x];
  const crop = getString(ctx.node, 'coordinate_transformation_mode', 'half_pixel') === 'tf_crop_and_resize';
  const roi = crop ? ctx.ints(roiIndex) : undefined;
  axes.forEach((axis, i) => {
    const s = scales?.[i];
    const d = x[axis];
    if (typeof s !== 'number') out[axis] = null;
    else if (typeof d !== 'number') out[axis] = s === 1 && !crop ? d : null;
    else if (crop) {
      out[axis] = roi ? Math.floor(d * (roi[i + axes.length] - roi[i]) * s) : null;
    } else out[axis] = Math.floor(Math.fround(d * s)); // onnxruntime multiplies in float32, then truncates
  });
  return out;
}

function fromSizes(ctx: InferContext, x: Dim[], axes: number[], sizesIndex: number): Dim[] {
  const sizes = ctx.elems(sizesIndex);
  const out: Dim[] = [...x];
  const policy = getString(ctx.node, 'keep_aspect_ratio_policy', 'stretch');
  if (policy !== 'stretch') {
    const nums = axes.map((a, i) => [x[a], sizes?.[i]]);
    if (!nums.every(([d, s]) => typeof d === 'number' && typeof s === 'number')) {
      for (const a of axes) out[a] = null;
      return out;
    }
    const ratios = nums.map(([d, s]) => (s as number) / (d as number));
    const scale = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
    axes.forEach((a) => (out[a] = Math.round(scale * (x[a] as number))));
    return out;
  }
  axes.forEach((axis, i) => {
    const s = sizes?.[i];
    out[axis] = s === undefined ? null : typeof s === 'number' ? (s >= 0 ? s : null) : s;
  });
  return out;
}

const resize: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  if (!x) return [tensor(dt, undefined)];
  const axes = (getInts(ctx.node, 'axes') ?? x.map((_, i) => i)).map((a) =>
    normalizeAxis(a, x.length, ctx.fail),
  );
  if (ctx.opset < 11) return [tensor(dt, fromScales(ctx, x, axes, 1, -1))];
  if (ctx.has(3)) return [tensor(dt, fromSizes(ctx, x, axes, 3))];
  if (ctx.has(2)) return [tensor(dt, fromScales(ctx, x, axes, 2, 1))];
  return ctx.fail('needs either a scales or a sizes input');
};

const upsample: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  if (!x) return [tensor(dt, undefined)];
  const axes = x.map((_, i) => i);
  if (ctx.has(1)) return [tensor(dt, fromScales(ctx, x, axes, 1, -1))];
  const scales = getFloats(ctx.node, 'scales', []);
  return [
    tensor(
      dt,
      x.map((d, i) => (typeof d === 'number' && scales[i] !== undefined ? Math.floor(d * scales[i]) : null)),
    ),
  ];
};

/** Shape rules of this family, by op type. */
export const rules: Record<string, ShapeRule> = { Resize: resize, Upsample: upsample };
