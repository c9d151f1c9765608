/**
 * Sliding-window geometry shared by the Conv and pooling gradient rules: explicit pads from `auto_pad`,
 * output sizes exactly as onnxruntime computes them, and the ConvTranspose padding that maps a window op's
 * output gradient back onto its input.
 */
import { GraphError } from '../errors';
import { getInt, getInts, getString } from '../onnx/attributes';
import type { OnnxNode } from '../onnx/types';
import type { GradContext } from './types';

/** Per-spatial-axis window parameters with the padding made explicit. */
export interface WindowGeometry {
  /** Input spatial sizes. */
  input: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
  /** Output spatial sizes. */
  output: number[];
}

/** What a window op's attributes default to when absent. */
export interface WindowAttrOptions {
  /** Pooling ops honour ceil_mode and drop a last window that starts in the end padding (as onnxruntime). */
  ceilMode?: boolean;
}

/** Extent of a dilated kernel. */
export function dilatedKernel(k: number, d: number): number {
  return (k - 1) * d + 1;
}

/**
 * Resolves a window op's geometry from its attributes and static input spatial sizes; `kernel` comes from
 * the weight shape (Conv) or `kernel_shape` (pools). Throws naming the node on inconsistent attributes.
 */
export function windowGeometry(
  node: OnnxNode,
  label: string,
  input: number[],
  kernel: number[],
  options: WindowAttrOptions = {},
): WindowGeometry {
  const r = input.length;
  const strides = getInts(node, 'strides', new Array<number>(r).fill(1));
  const dilations = getInts(node, 'dilations', new Array<number>(r).fill(1));
  const autoPad = getString(node, 'auto_pad', 'NOTSET');
  const pads = getInts(node, 'pads', new Array<number>(2 * r).fill(0));
  if (strides.length !== r)
    throw new GraphError(`${label}: strides must have ${r} values, got ${strides.length}`);
  if (dilations.length !== r) {
    throw new GraphError(`${label}: dilations must have ${r} values, got ${dilations.length}`);
  }
  if (kernel.length !== r)
    throw new GraphError(`${label}: kernel must have ${r} spatial dims, got ${kernel.length}`);
  const ceil = options.ceilMode === true;
  const padsBegin: number[] = [];
  const padsEnd: number[] = [];
  const output: number[] = [];
  for (let i = 0; i < r; i++) {
    const dk = dilatedKernel(kernel[i], dilations[i]);
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const target = Math.ceil(input[i] / strides[i]);
      const total = Math.max(0, (target - 1) * strides[i] + dk - input[i]);
      const head = autoPad === 'SAME_LOWER' ? Math.ceil(total / 2) : Math.floor(total / 2);
      padsBegin.push(head);
      padsEnd.push(total - head);
    } else if (autoPad === 'VALID') {
      padsBegin.push(0);
      padsEnd.push(0);
    } else if (autoPad === 'NOTSET') {
      if (pads.length !== 2 * r)
        throw new GraphError(`${label}: pads must have ${2 * r} values, got ${pads.length}`);
      padsBegin.push(pads[i]);
      padsEnd.push(pads[r + i]);
    } else {
      throw new GraphError(`${label}: unknown auto_pad '${autoPad}'`);
    }
    const span = input[i] + padsBegin[i] + padsEnd[i] - dk;
    if (span < 0) {
      throw new GraphError(
        `${label}: kernel extent ${dk} exceeds padded input ${input[i] + padsBegin[i] + padsEnd[i]} on spatial axis ${i}`,
      );
    }
    let out = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
    // onnxruntime (like PyTorch) drops a ceil-mode window that would start inside the end padding.
    if (ceil && (out - 1) * strides[i] >= input[i] + padsBegin[i]) out -= 1;
    output.push(out);
  }
  return { input, kernel, strides, dilations, padsBegin, padsEnd, output };
}

/**
 * Pads and output_padding for the ConvTranspose that scatters an output gradient back onto the input: its
 * output size `s·(Ho−1) + op + dk − pb − pe` must equal the input size. When a ceil-mode window overhangs
 * the padded input, the overhang is cropped by enlarging the end pad instead (output_padding stays ≥ 0).
 */
export function adjointTransposePads(g: WindowGeometry): { pads: number[]; outputPadding: number[] } {
  const begin: number[] = [];
  const end: number[] = [];
  const outputPadding: number[] = [];
  for (let i = 0; i < g.input.length; i++) {
    const dk = dilatedKernel(g.kernel[i], g.dilations[i]);
    const natural = g.strides[i] * (g.output[i] - 1) + dk - g.padsBegin[i] - g.padsEnd[i];
    const excess = natural - g.input[i];
    begin.push(g.padsBegin[i]);
    if (excess <= 0) {
      end.push(g.padsEnd[i]);
      outputPadding.push(-excess);
    } else {
      end.push(g.padsEnd[i] + excess);
      outputPadding.push(0);
    }
  }
  return { pads: [...begin, ...end], outputPadding };
}

/** Product of a list of sizes. */
export function product(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/** Reads `group` (default 1) and checks it divides both channel counts. */
export function convGroup(node: OnnxNode, label: string, cin: number, cout: number): number {
  const g = getInt(node, 'group', 1);
  if (g < 1 || cin % g !== 0 || cout % g !== 0) {
    throw new GraphError(
      `${label}: group ${g} must divide input channels ${cin} and output channels ${cout}`,
    );
  }
  return g;
}

/**
 * The static shape of a forward tensor, with every axis from `fromAxis` on required to be a number (the
 * axes before it, typically the batch, may be symbolic and come back as -1).
 */
export function staticDims(ctx: GradContext, name: string, fromAxis: number, what: string): number[] {
  const shape = ctx.info(name).shape;
  if (!shape) throw new GraphError(`${ctx.label}: the rank of ${what} '${name}' is unknown`);
  return shape.map((d, i) => {
    if (typeof d === 'number') return d;
    if (i < fromAxis) return -1;
    throw new GraphError(
      `${ctx.label}: ${what} '${name}' needs a static size on axis ${i} (shape [${shape.map((x) => x ?? '?').join(', ')}])`,
      { hint: 'give the model static spatial input sizes (only the batch may be dynamic)' },
    );
  });
}
