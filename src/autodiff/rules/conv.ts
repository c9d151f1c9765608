/**
 * Gradients of Conv and ConvTranspose in standard ONNX ops.
 *
 * - dX: for stride-1 convs a forward Conv of dY with the spatially flipped, channel-swapped kernel; for
 *   strided ones ConvTranspose of dY with the forward weight, explicit pads and output_padding (never
 *   output_shape: onnxruntime then recomputes the pads and loses asymmetric ones).
 * - dW: one strided Slice of the (padded) input per kernel tap, each multiplied with dY in one batched
 *   MatMul over [N, group] (onnxruntime fuses the Transpose into it) and summed over N; 1×1 convs are a
 *   single MatMul over a strided Slice. Deep layers (small maps, wide weights) instead transpose X and dY
 *   to [C, N, …] once and run one GEMM over [Cin·T, N·HoWo] columns with the batch inside the inner
 *   dimension ('im2col-folded': 512→512 3×3 at 7×7, batch 2: 10.6 ms against 13.9 per-tap). Narrow inputs
 *   (< 16 channels per group) concatenate the taps first (one wider GEMM), and the 7×7 stem on RGB uses
 *   the N/C-swapped Conv.
 * - dB: ReduceSum of dY over batch and spatial axes.
 *
 * The alternatives ('conv-transpose' dX for stride 1; 'im2col' = one Concat of all taps and one MatMul;
 * 'im2col-gemm'; 'swapped-conv') stay selectable for src/bench/conv-grad.ts, which measured them: on a
 * 3×3 128→128 56² batch-2 conv, 2 threads, flipped Conv 16 ms vs ConvTranspose 34 ms for dX and per-tap
 * 14.5 ms vs im2col 29 ms vs swapped Conv 33 ms for dW (forward 16 ms); on the 7×7/2 stem 3→64 at 224²
 * (1 thread) swapped Conv 8 ms vs im2col 13 ms vs per-tap 23 ms.
 *
 * Spatial sizes must be static (they fix pads and slice bounds); the batch stays dynamic.
 */
import { GraphError } from '../../errors';
import { getInt, getInts, getString } from '../../onnx/attributes';
import type { GradContext, GradientRuleEntry } from '../types';
import {
  adjointTransposePads,
  convGroup,
  product,
  staticDims,
  windowGeometry,
  type WindowGeometry,
} from '../window-geometry';

/** Static facts about one Conv node that the gradient emitters need. */
export interface ConvShape {
  geometry: WindowGeometry;
  cin: number;
  cout: number;
  group: number;
}

/** How the weight gradient is formed (see defaultWeightGradMethod for which one the rule picks). */
export type ConvWeightGradMethod = 'im2col' | 'per-tap' | 'im2col-folded' | 'im2col-gemm' | 'swapped-conv';

/** Reads the Conv node's static geometry (channels, kernel, explicit pads, output sizes). */
export function convShape(ctx: GradContext): ConvShape {
  const [x, w] = ctx.node.inputs;
  const xDims = staticDims(ctx, x, 1, 'input');
  const wDims = staticDims(ctx, w, 0, 'weight');
  if (xDims.length < 3) throw new GraphError(`${ctx.label}: input must have rank >= 3, got ${xDims.length}`);
  if (wDims.length !== xDims.length) {
    throw new GraphError(`${ctx.label}: weight rank ${wDims.length} differs from input rank ${xDims.length}`);
  }
  const cin = xDims[1];
  const cout = wDims[0];
  const kernel = wDims.slice(2);
  const attrKernel = getInts(ctx.node, 'kernel_shape');
  if (attrKernel && attrKernel.join(',') !== kernel.join(',')) {
    throw new GraphError(
      `${ctx.label}: kernel_shape [${attrKernel.join(', ')}] differs from weight shape [${kernel.join(', ')}]`,
    );
  }
  const group = convGroup(ctx.node, ctx.label, cin, cout);
  if (wDims[1] * group !== cin) {
    throw new GraphError(
      `${ctx.label}: weight has ${wDims[1]} input channels per group, input ${cin} / group ${group}`,
    );
  }
  const geometry = windowGeometry(ctx.node, ctx.label, xDims.slice(2), kernel);
  return { geometry, cin, cout, group };
}

/**
 * How the input gradient is formed: 'conv-transpose' always applies; 'flipped-conv' (a forward Conv with
 * the spatially flipped, channel-swapped kernel) needs stride 1 and pads ≤ the dilated kernel extent − 1.
 */
export type ConvInputGradMethod = 'conv-transpose' | 'flipped-conv';

/** True when dX can be a stride-1 Conv of dY with the flipped kernel (non-negative adjoint pads). */
export function canFlip(s: ConvShape): boolean {
  const g = s.geometry;
  return (
    g.strides.every((st) => st === 1) &&
    g.kernel.every((k, i) => {
      const ext = (k - 1) * g.dilations[i];
      return g.padsBegin[i] <= ext && g.padsEnd[i] <= ext;
    })
  );
}

/** W [Cout, Cin/g, k…] → [Cin, Cout/g, k…] flipped on every spatial axis (the adjoint conv's kernel). */
function flippedKernel(ctx: GradContext, w: string, s: ConvShape): string {
  const { b } = ctx;
  const r = s.geometry.kernel.length;
  const spatial = Array.from({ length: r }, (_, i) => i + 2);
  const big = Number.MAX_SAFE_INTEGER;
  const flipped = s.geometry.kernel.every((k) => k === 1)
    ? w
    : b.op('Slice', [
        w,
        ctx.ints(spatial.map(() => -1)),
        ctx.ints(spatial.map(() => -big)),
        ctx.ints(spatial),
        ctx.ints(spatial.map(() => -1)),
      ]);
  const cinG = s.cin / s.group;
  const coutG = s.cout / s.group;
  if (s.group === 1) return b.op('Transpose', [flipped], { perm: [1, 0, ...spatial] });
  const grouped = b.op('Reshape', [flipped, ctx.ints([s.group, coutG, cinG, ...s.geometry.kernel])]);
  const swapped = b.op('Transpose', [grouped], { perm: [0, 2, 1, ...spatial.map((a) => a + 1)] });
  return b.op('Reshape', [swapped, ctx.ints([s.cin, coutG, ...s.geometry.kernel])]);
}

/**
 * The input-gradient method the rule uses: the flipped-kernel Conv where it applies, unless the weight is
 * over 8× one sample's output gradient (onnxruntime's Conv beats its ConvTranspose, whose col2im pass is
 * memory-bound and grows with the spatial size, but flipping costs two passes over the weight, a Slice
 * and a Transpose); ConvTranspose otherwise. Measured (src/bench/conv-grad.ts, batch 2, 2 threads, best
 * of 15 on a busy machine): 512→512 3×3 at 7×7 flipped 15 ms vs ConvTranspose 5 ms; 256→256 at 14×14
 * about equal; at 28×28 ConvTranspose was 3× the flipped Conv in a training-step profile; at 56×56
 * flipped 60 ms vs ConvTranspose 107 ms.
 */
export function defaultInputGradMethod(s: ConvShape): ConvInputGradMethod {
  if (!canFlip(s)) return 'conv-transpose';
  const weight = s.cout * (s.cin / s.group) * product(s.geometry.kernel);
  const perSample = s.cout * product(s.geometry.output);
  return weight <= 8 * perSample ? 'flipped-conv' : 'conv-transpose';
}

/**
 * dX: a forward Conv of dY with the flipped kernel, or ConvTranspose(dY, W) with the forward strides,
 * dilations, group and explicit padding (see defaultInputGradMethod for which one the rule picks).
 */
export function emitConvInputGrad(
  ctx: GradContext,
  dY: string,
  w: string,
  s: ConvShape,
  method: ConvInputGradMethod = defaultInputGradMethod(s),
): string {
  const g = s.geometry;
  const name = `${ctx.node.name}_grad_dx`;
  if (method === 'flipped-conv') {
    if (!canFlip(s)) throw new GraphError(`${ctx.label}: flipped-conv input gradient needs stride 1`);
    const ext = g.kernel.map((k, i) => (k - 1) * g.dilations[i]);
    const pads = [...g.padsBegin.map((p, i) => ext[i] - p), ...g.padsEnd.map((p, i) => ext[i] - p)];
    return ctx.b.op(
      'Conv',
      [dY, flippedKernel(ctx, w, s)],
      { kernel_shape: g.kernel, dilations: g.dilations, pads, group: s.group },
      { name },
    );
  }
  const { pads, outputPadding } = adjointTransposePads(g);
  return ctx.b.op(
    'ConvTranspose',
    [dY, w],
    {
      kernel_shape: g.kernel,
      strides: g.strides,
      dilations: g.dilations,
      group: s.group,
      pads,
      output_padding: outputPadding,
    },
    { name },
  );
}

/** Sizes of X after zero-padding it exactly as far as the kernel taps read (the end pad may shrink). */
function tapPadEnds(g: WindowGeometry): number[] {
  return g.input.map((h, i) => {
    const reach = g.strides[i] * (g.output[i] - 1) + (g.kernel[i] - 1) * g.dilations[i] + 1;
    return Math.max(0, reach - g.padsBegin[i] - h);
  });
}

/** X zero-padded for the taps (or X itself when no padding is read). */
function padForTaps(ctx: GradContext, x: string, g: WindowGeometry): string {
  const end = tapPadEnds(g);
  if (g.padsBegin.every((p) => p === 0) && end.every((p) => p === 0)) return x;
  const pads = [0, 0, ...g.padsBegin, 0, 0, ...end];
  const name = `${ctx.node.name}_grad_pad`;
  if (ctx.opset >= 11) return ctx.b.op('Pad', [x, ctx.ints(pads)], {}, { name });
  return ctx.b.op('Pad', [x], { pads }, { name });
}

/**
 * The strided Slice of the padded input that kernel tap `t` (row-major) multiplies: [N, Cin, Ho…]. Callers
 * emit each slice right before its consumer, so onnxruntime can free it before the next one is made.
 */
function tapSlice(ctx: GradContext, xp: string, g: WindowGeometry, t: number): string {
  const padded = tapPadEnds(g).map((e, i) => g.input[i] + g.padsBegin[i] + e);
  const starts = unravelTap(t, g.kernel).map((ki, i) => ki * g.dilations[i]);
  const ends = starts.map((st, i) => st + g.strides[i] * (g.output[i] - 1) + 1);
  const whole = starts.every((st, i) => st === 0 && g.strides[i] === 1 && ends[i] >= padded[i]);
  if (whole && product(g.kernel) === 1) return xp;
  const axes = ctx.ints(g.input.map((_, i) => i + 2));
  const bounds = [xp, ctx.ints(starts), ctx.ints(ends), axes, ctx.ints(g.strides)];
  return ctx.b.op('Slice', bounds, {}, { name: `${ctx.node.name}_grad_tap${t}` });
}

/** Every tap's slice, in tap order. */
function tapSlices(ctx: GradContext, xp: string, g: WindowGeometry): string[] {
  return Array.from({ length: product(g.kernel) }, (_, t) => tapSlice(ctx, xp, g, t));
}

function unravelTap(t: number, kernel: readonly number[]): number[] {
  const k = new Array<number>(kernel.length);
  for (let a = kernel.length - 1; a >= 0; a--) {
    k[a] = t % kernel[a];
    t = Math.floor(t / kernel[a]);
  }
  return k;
}

/**
 * The fastest weight-gradient method for a conv's shape, as measured by src/bench/conv-grad.ts on
 * onnxruntime's CPU kernels: per-tap GEMMs once each tap's GEMM is wide enough (≥ 16 input channels per
 * group); for narrower inputs one im2col GEMM, or for a large kernel on a few channels (the 7×7 stem on
 * RGB) the N/C-swapped Conv.
 */
export function defaultWeightGradMethod(s: ConvShape): ConvWeightGradMethod {
  const cinG = s.cin / s.group;
  if (cinG >= 16) return foldBatchPays(s) ? 'im2col-folded' : 'per-tap';
  if (s.group === 1 && s.geometry.kernel.length === 2 && product(s.geometry.kernel) >= 25)
    return 'swapped-conv';
  return 'im2col';
}

/**
 * True when moving the batch into the GEMMs' inner dimension moves less data than summing per-sample
 * products: per sample, the batched form writes and re-reads a weight-sized product for every tap, the
 * folded form transposes the input and the output gradient once. Deep layers (7×7 or 14×14 maps, wide
 * weights) fold; early, high-resolution layers do not.
 */
function foldBatchPays(s: ConvShape): boolean {
  const weight = (s.cout * s.cin * product(s.geometry.kernel)) / s.group;
  const maps = product(s.geometry.input) * s.cin + product(s.geometry.output) * s.cout;
  return weight > maps;
}

/** dW by the given (default: the fastest) method; every method returns a tensor of the weight's shape. */
export function emitConvWeightGrad(
  ctx: GradContext,
  x: string,
  dY: string,
  s: ConvShape,
  method: ConvWeightGradMethod = defaultWeightGradMethod(s),
): string {
  switch (method) {
    case 'im2col':
      return weightGradIm2col(ctx, x, dY, s);
    case 'per-tap':
      return weightGradPerTap(ctx, x, dY, s);
    case 'im2col-folded':
      return weightGradIm2colFolded(ctx, x, dY, s);
    case 'im2col-gemm':
      return weightGradIm2colGemm(ctx, x, dY, s);
    case 'swapped-conv':
      return weightGradSwappedConv(ctx, x, dY, s);
  }
}

function weightShape(s: ConvShape): number[] {
  return [s.cout, s.cin / s.group, ...s.geometry.kernel];
}

/** Concat of all taps → [N, g, Cin/g·T, HoWo]; one batched MatMul with dY → ReduceSum over N. */
function weightGradIm2col(ctx: GradContext, x: string, dY: string, s: ConvShape): string {
  const { b } = ctx;
  const g = s.geometry;
  const name = ctx.node.name;
  const taps = product(g.kernel);
  const pix = product(g.output);
  const cinG = s.cin / s.group;
  const coutG = s.cout / s.group;
  const slices = tapSlices(ctx, padForTaps(ctx, x, g), g);
  const cat =
    slices.length > 1 ? b.op('Concat', slices, { axis: 2 }, { name: `${name}_grad_im2col` }) : slices[0];
  const cols = b.op('Reshape', [cat, ctx.ints([-1, s.group, cinG * taps, pix])]);
  const dy4 = b.op('Reshape', [dY, ctx.ints([-1, s.group, coutG, pix])]);
  const colsT = b.op('Transpose', [cols], { perm: [0, 1, 3, 2] });
  const prod = b.op('MatMul', [dy4, colsT], {}, { name: `${name}_grad_dw_gemm` });
  const sum = ctx.reduceSum(prod, [0], false);
  return b.op('Reshape', [sum, ctx.ints(weightShape(s))], {}, { name: `${name}_grad_dw` });
}

/**
 * One batched MatMul per tap, summed over the batch right away ([g, Cout, Cin] per tap), stacked on a
 * leading tap axis (contiguous copies) and moved behind the channels by one Transpose of the weight's
 * size. Stacking on a trailing tap axis before the batch sum instead writes twice the data, each element
 * at a stride of the tap count: 512→512 3×3 at 7×7, batch 2, 27 ms against 16 (best of 15, busy machine).
 */
function weightGradPerTap(ctx: GradContext, x: string, dY: string, s: ConvShape): string {
  const { b } = ctx;
  const g = s.geometry;
  const pix = product(g.output);
  const taps = product(g.kernel);
  const cinG = s.cin / s.group;
  const coutG = s.cout / s.group;
  const dy4 = b.op('Reshape', [dY, ctx.ints([-1, s.group, coutG, pix])]);
  const colShape = ctx.ints([-1, s.group, cinG, pix]);
  const xp = padForTaps(ctx, x, g);
  const parts = Array.from({ length: taps }, (_, t) => {
    const cols = b.op('Reshape', [tapSlice(ctx, xp, g, t), colShape]);
    const prod = b.op('MatMul', [dy4, b.op('Transpose', [cols], { perm: [0, 1, 3, 2] })]);
    return ctx.reduceSum(prod, [0], taps > 1); // [1, g, Cout/g, Cin/g] (kept axis: the tap axis below)
  });
  if (taps === 1) return b.op('Reshape', [parts[0], ctx.ints(weightShape(s))]);
  const stacked = b.op('Concat', parts, { axis: 0 }); // [T, g, Cout/g, Cin/g]
  const moved = b.op('Transpose', [stacked], { perm: [1, 2, 3, 0] });
  return b.op('Reshape', [moved, ctx.ints(weightShape(s))]);
}

/**
 * One GEMM with the batch folded into its inner dimension: X and dY are transposed once to
 * [C, N, spatial…], each tap's strided slice is then already [g, Cin/g, N·HoWo]; the taps are stacked
 * behind the input channel ([g, Cin/g, T, N·HoWo], contiguous copies), so one MatMul with dY yields
 * [g, Cout/g, Cin/g·T], which is the weight's own layout: no per-sample products to sum and no strided
 * transpose of the result (see foldBatchPays for when this pays).
 */
function weightGradIm2colFolded(ctx: GradContext, x: string, dY: string, s: ConvShape): string {
  const { b } = ctx;
  const g = s.geometry;
  const taps = product(g.kernel);
  const cinG = s.cin / s.group;
  const coutG = s.cout / s.group;
  const perm = [1, 0, ...g.input.map((_, i) => i + 2)];
  const name = ctx.node.name;
  const dyT = b.op('Transpose', [dY], { perm }, { name: `${name}_grad_dyT` });
  const dyM = b.op('Reshape', [dyT, ctx.ints([s.group, coutG, -1])]);
  // Padding only touches the spatial axes, so it works the same on the transposed input.
  const xp = padForTaps(ctx, b.op('Transpose', [x], { perm }, { name: `${name}_grad_xT` }), g);
  const tapShape = ctx.ints([s.group, cinG, 1, -1]);
  const parts = Array.from({ length: taps }, (_, t) => b.op('Reshape', [tapSlice(ctx, xp, g, t), tapShape]));
  const stacked = taps > 1 ? b.op('Concat', parts, { axis: 2 }, { name: `${name}_grad_cols` }) : parts[0];
  const cols = b.op('Reshape', [stacked, ctx.ints([s.group, cinG * taps, -1])]);
  const prod = b.op('MatMul', [dyM, b.op('Transpose', [cols], { perm: [0, 2, 1] })]);
  return b.op('Reshape', [prod, ctx.ints(weightShape(s))], {}, { name: `${name}_grad_dw` });
}

/** Transposes to [Cin·T, N·HoWo] and [Cout, N·HoWo] and runs one 2-D Gemm (group 1 only). */
function weightGradIm2colGemm(ctx: GradContext, x: string, dY: string, s: ConvShape): string {
  const { b } = ctx;
  if (s.group !== 1) throw new GraphError(`${ctx.label}: im2col-gemm weight gradient needs group 1`);
  const g = s.geometry;
  const r = g.input.length;
  const taps = product(g.kernel);
  const pix = product(g.output);
  const slices = tapSlices(ctx, padForTaps(ctx, x, g), g);
  const cat = slices.length > 1 ? b.op('Concat', slices, { axis: 2 }) : slices[0];
  const cols3 = b.op('Reshape', [cat, ctx.ints([-1, s.cin * taps, pix])]);
  const cols = b.op('Reshape', [
    b.op('Transpose', [cols3], { perm: [1, 0, 2] }),
    ctx.ints([s.cin * taps, -1]),
  ]);
  const perm = [1, 0, ...Array.from({ length: r }, (_, i) => i + 2)];
  const dyM = b.op('Reshape', [b.op('Transpose', [dY], { perm }), ctx.ints([s.cout, -1])]);
  const dw = b.op('Gemm', [dyM, cols], { transB: 1 });
  return b.op('Reshape', [dw, ctx.ints(weightShape(s))]);
}

/** PyTorch's old conv2d_weight: Conv of N/C-swapped X by N/C-swapped dY (group 1, 2-D only). */
function weightGradSwappedConv(ctx: GradContext, x: string, dY: string, s: ConvShape): string {
  const { b } = ctx;
  const g = s.geometry;
  if (s.group !== 1 || g.input.length !== 2) {
    throw new GraphError(`${ctx.label}: swapped-conv weight gradient needs group 1 and 2-D`);
  }
  const xt = b.op('Transpose', [x], { perm: [1, 0, 2, 3] });
  const dyt = b.op('Transpose', [dY], { perm: [1, 0, 2, 3] });
  const conv = b.op('Conv', [xt, dyt], {
    strides: g.dilations,
    dilations: g.strides,
    pads: [...g.padsBegin, ...g.padsEnd],
  });
  const starts = ctx.ints([0, 0]);
  const ends = ctx.ints(g.kernel);
  const sliced = b.op('Slice', [conv, starts, ends, ctx.ints([2, 3])]);
  return b.op('Transpose', [sliced], { perm: [1, 0, 2, 3] });
}

/**
 * ConvTranspose is the adjoint of a Conv with the same attributes, so dX = Conv(dY, W) and dW is the
 * Conv weight gradient with the roles of input and output gradient swapped (dY is the tensor the taps
 * slice, X the one they multiply). Explicit pads only: auto_pad and output_shape are refused.
 */
const convTranspose: GradientRuleEntry = {
  opType: 'ConvTranspose',
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY) return [];
    const { node } = ctx;
    const [x, w, bias] = node.inputs;
    if (getString(node, 'auto_pad', 'NOTSET') !== 'NOTSET' || getInts(node, 'output_shape')) {
      throw new GraphError(`${ctx.label}: the gradient needs explicit pads (no auto_pad or output_shape)`, {
        hint: 're-export the model with explicit pads and output_padding',
      });
    }
    const xDims = staticDims(ctx, x, 1, 'input');
    const wDims = staticDims(ctx, w, 0, 'weight');
    const r = xDims.length - 2;
    const group = getInt(node, 'group', 1);
    const cin = xDims[1];
    const cout = wDims[1] * group;
    if (wDims[0] !== cin)
      throw new GraphError(`${ctx.label}: weight has ${wDims[0]} input channels, input ${cin}`);
    const kernel = wDims.slice(2);
    const strides = getInts(node, 'strides', new Array<number>(r).fill(1));
    const dilations = getInts(node, 'dilations', new Array<number>(r).fill(1));
    const pads = getInts(node, 'pads', new Array<number>(2 * r).fill(0));
    const outPad = getInts(node, 'output_padding', new Array<number>(r).fill(0));
    if (outPad.some((p, i) => p >= strides[i])) {
      throw new GraphError(`${ctx.label}: output_padding must be smaller than the stride for the gradient`);
    }
    const hin = xDims.slice(2);
    const hout = hin.map(
      (h, i) => strides[i] * (h - 1) + outPad[i] + (kernel[i] - 1) * dilations[i] + 1 - pads[i] - pads[r + i],
    );
    const geometry: WindowGeometry = {
      input: hout,
      kernel,
      strides,
      dilations,
      padsBegin: pads.slice(0, r),
      padsEnd: pads.slice(r),
      output: hin,
    };
    const adjoint: ConvShape = { geometry, cin: cout, cout: cin, group };
    const dx = ctx.needs[0]
      ? ctx.b.op(
          'Conv',
          [dY, w],
          { kernel_shape: kernel, strides, dilations, pads, group },
          { name: `${node.name}_grad_dx` },
        )
      : undefined;
    return [
      dx,
      ctx.needs[1] ? emitConvWeightGrad(ctx, dY, x, adjoint) : undefined,
      bias && ctx.needs[2]
        ? ctx.reduceSum(dY, [0, ...Array.from({ length: r }, (_, i) => i + 2)], false)
        : undefined,
    ];
  },
};

const conv: GradientRuleEntry = {
  opType: 'Conv',
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY) return [];
    const [x, w, bias] = ctx.node.inputs;
    const s = convShape(ctx);
    const r = s.geometry.input.length;
    return [
      ctx.needs[0] ? emitConvInputGrad(ctx, dY, w, s) : undefined,
      ctx.needs[1] ? emitConvWeightGrad(ctx, x, dY, s) : undefined,
      bias && ctx.needs[2]
        ? ctx.reduceSum(dY, [0, ...Array.from({ length: r }, (_, i) => i + 2)], false)
        : undefined,
    ];
  },
};

export const rules: GradientRuleEntry[] = [conv, convTranspose];
