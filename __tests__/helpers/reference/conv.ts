/**
 * Reference (float64) Conv and ConvTranspose: plain loops over every output element and kernel tap, any
 * number of spatial axes, groups, dilations, explicit pads or auto_pad. Written from the ONNX operator
 * text, independently of the gradient rules it checks.
 */
import { getInt, getInts, getString, type OnnxNode } from '../../../src/onnx';
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

/** Explicit [begin..., end...] pads of a window op over `input` spatial sizes with dilated extents `ext`. */
export function explicitPads(
  node: OnnxNode,
  input: number[],
  ext: number[],
  strides: number[],
  label: string,
): number[] {
  const r = input.length;
  const autoPad = getString(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') {
    const pads = getInts(node, 'pads', new Array<number>(2 * r).fill(0));
    if (pads.length !== 2 * r) throw new Error(`${label}: pads must have ${2 * r} values`);
    return pads;
  }
  if (autoPad === 'VALID') return new Array<number>(2 * r).fill(0);
  const begin: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < r; i++) {
    const out = Math.ceil(input[i] / strides[i]);
    const total = Math.max(0, (out - 1) * strides[i] + ext[i] - input[i]);
    const small = Math.floor(total / 2);
    const head = autoPad === 'SAME_LOWER' ? total - small : small;
    begin.push(head);
    end.push(total - head);
  }
  return [...begin, ...end];
}

/** Y[n, m, o…] = B[m] + Σ_{c in group, taps} X[n, c, o·s − pb + t·d] · W[m, c', t]. */
function conv(inputs: readonly (RefTensor | undefined)[], node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const w = need(inputs, 1, ctx);
  const b = inputs[2];
  const r = x.dims.length - 2;
  const [n, c] = x.dims;
  const m = w.dims[0];
  const cg = w.dims[1];
  const group = getInt(node, 'group', 1);
  if (cg * group !== c) throw new Error(`${ctx.label}: channels ${c} != ${cg} × group ${group}`);
  const kernel = w.dims.slice(2);
  const strides = getInts(node, 'strides', new Array<number>(r).fill(1));
  const dil = getInts(node, 'dilations', new Array<number>(r).fill(1));
  const inSp = x.dims.slice(2);
  const ext = kernel.map((k, i) => (k - 1) * dil[i] + 1);
  const pads = explicitPads(node, inSp, ext, strides, ctx.label);
  const outSp = inSp.map((h, i) => Math.floor((h + pads[i] + pads[r + i] - ext[i]) / strides[i]) + 1);
  const y = makeTensor(x.dataType, [n, m, ...outSp]);
  const xs = stridesOf(x.dims);
  const ws = stridesOf(w.dims);
  const taps = sizeOf(kernel);
  const tapIdx = Array.from({ length: taps }, (_, t) => unravel(t, kernel));
  const outIdx = Array.from({ length: sizeOf(outSp) }, (_, p) => unravel(p, outSp));
  const outPix = sizeOf(outSp);
  const mg = m / group;
  let yi = 0;
  for (let ni = 0; ni < n; ni++) {
    for (let mi = 0; mi < m; mi++) {
      const grp = Math.floor(mi / mg);
      for (let p = 0; p < outPix; p++) {
        const o = outIdx[p];
        let acc = b ? b.data[mi] : 0;
        for (let t = 0; t < taps; t++) {
          const k = tapIdx[t];
          let off = ni * xs[0];
          let inside = true;
          for (let a = 0; a < r; a++) {
            const pos = o[a] * strides[a] - pads[a] + k[a] * dil[a];
            if (pos < 0 || pos >= inSp[a]) {
              inside = false;
              break;
            }
            off += pos * xs[2 + a];
          }
          if (!inside) continue;
          let woff = mi * ws[0];
          for (let a = 0; a < r; a++) woff += k[a] * ws[2 + a];
          for (let ci = 0; ci < cg; ci++) {
            acc += x.data[off + (grp * cg + ci) * xs[1]] * w.data[woff + ci * ws[1]];
          }
        }
        y.data[yi++] = acc;
      }
    }
  }
  return [y];
}

/**
 * ConvTranspose with explicit pads and output_padding (or output_shape): every input element scatters
 * X[n, c, i] · W[c, m', t] to Y[n, m, i·s − pb + t·d].
 */
function convTranspose(
  inputs: readonly (RefTensor | undefined)[],
  node: OnnxNode,
  ctx: RefOpContext,
): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const w = need(inputs, 1, ctx);
  const b = inputs[2];
  const r = x.dims.length - 2;
  const [n, c] = x.dims;
  const group = getInt(node, 'group', 1);
  const mg = w.dims[1];
  const m = mg * group;
  const cgIn = c / group;
  const kernel = w.dims.slice(2);
  const strides = getInts(node, 'strides', new Array<number>(r).fill(1));
  const dil = getInts(node, 'dilations', new Array<number>(r).fill(1));
  const outPad = getInts(node, 'output_padding', new Array<number>(r).fill(0));
  if (getString(node, 'auto_pad', 'NOTSET') !== 'NOTSET' || getInts(node, 'output_shape')) {
    throw new Error(`${ctx.label}: the reference ConvTranspose takes explicit pads only`);
  }
  const pads = getInts(node, 'pads', new Array<number>(2 * r).fill(0));
  const inSp = x.dims.slice(2);
  const outSp = inSp.map(
    (h, i) => strides[i] * (h - 1) + outPad[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[r + i],
  );
  const y = makeTensor(x.dataType, [n, m, ...outSp]);
  const ys = stridesOf(y.dims);
  const ws = stridesOf(w.dims);
  const inPix = sizeOf(inSp);
  const taps = sizeOf(kernel);
  for (let ni = 0; ni < n; ni++) {
    for (let ci = 0; ci < c; ci++) {
      const grp = Math.floor(ci / cgIn);
      for (let p = 0; p < inPix; p++) {
        const v = x.data[(ni * c + ci) * inPix + p];
        const i = unravel(p, inSp);
        for (let t = 0; t < taps; t++) {
          const k = unravel(t, kernel);
          let off = ni * ys[0];
          let inside = true;
          for (let a = 0; a < r; a++) {
            const pos = i[a] * strides[a] - pads[a] + k[a] * dil[a];
            if (pos < 0 || pos >= outSp[a]) {
              inside = false;
              break;
            }
            off += pos * ys[2 + a];
          }
          if (!inside) continue;
          let woff = ci * ws[0];
          for (let a = 0; a < r; a++) woff += k[a] * ws[2 + a];
          for (let mi = 0; mi < mg; mi++)
            y.data[off + (grp * mg + mi) * ys[1]] += v * w.data[woff + mi * ws[1]];
        }
      }
    }
  }
  if (b) {
    const per = sizeOf(outSp);
    for (let ni = 0; ni < n; ni++)
      for (let mi = 0; mi < m; mi++)
        for (let p = 0; p < per; p++) y.data[(ni * m + mi) * per + p] += b.data[mi];
  }
  return [y];
}

export const ops: RefOpTable = {
  Conv: conv,
  ConvTranspose: convTranspose,
};
