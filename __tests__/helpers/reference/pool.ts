/**
 * Reference (float64) pooling: MaxPool (with the flat Indices output), AveragePool, GlobalAveragePool,
 * GlobalMaxPool. Output sizes and averaging divisors follow onnxruntime's CPU kernels: a ceil-mode window
 * that would start inside the end padding is dropped, and with count_include_pad=1 a window is clipped to
 * the padded input before counting.
 */
import { DataType, getInt, getInts, type OnnxNode } from '../../../src/onnx';
import { explicitPads } from './conv';
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

interface Window {
  inSp: number[];
  outSp: number[];
  kernel: number[];
  strides: number[];
  dil: number[];
  pads: number[];
}

function poolWindow(node: OnnxNode, x: RefTensor, ctx: RefOpContext): Window {
  const r = x.dims.length - 2;
  const kernel = getInts(node, 'kernel_shape');
  if (!kernel || kernel.length !== r) throw new Error(`${ctx.label}: kernel_shape must have ${r} values`);
  const strides = getInts(node, 'strides', new Array<number>(r).fill(1));
  const dil = getInts(node, 'dilations', new Array<number>(r).fill(1));
  const ceil = getInt(node, 'ceil_mode', 0) === 1;
  const inSp = x.dims.slice(2);
  const ext = kernel.map((k, i) => (k - 1) * dil[i] + 1);
  const pads = explicitPads(node, inSp, ext, strides, ctx.label);
  const outSp = inSp.map((h, i) => {
    const span = h + pads[i] + pads[r + i] - ext[i];
    let o = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
    if (ceil && (o - 1) * strides[i] >= h + pads[i]) o -= 1;
    return o;
  });
  return { inSp, outSp, kernel, strides, dil, pads };
}

/** Visits every (n·c plane, output pixel) with the in-bounds input offsets of its window. */
function forEachWindow(
  x: RefTensor,
  win: Window,
  visit: (plane: number, outPix: number, taps: number[], outIdx: number[]) => void,
): void {
  const r = win.inSp.length;
  const planes = x.dims[0] * x.dims[1];
  const outPix = sizeOf(win.outSp);
  const inStr = stridesOf(win.inSp);
  const taps = sizeOf(win.kernel);
  const tapIdx = Array.from({ length: taps }, (_, t) => unravel(t, win.kernel));
  const outIdx = Array.from({ length: outPix }, (_, p) => unravel(p, win.outSp));
  for (let pl = 0; pl < planes; pl++) {
    for (let p = 0; p < outPix; p++) {
      const o = outIdx[p];
      const offs: number[] = [];
      for (let t = 0; t < taps; t++) {
        const k = tapIdx[t];
        let off = 0;
        let inside = true;
        for (let a = 0; a < r; a++) {
          const pos = o[a] * win.strides[a] - win.pads[a] + k[a] * win.dil[a];
          if (pos < 0 || pos >= win.inSp[a]) {
            inside = false;
            break;
          }
          off += pos * inStr[a];
        }
        if (inside) offs.push(off);
      }
      visit(pl, p, offs, o);
    }
  }
}

function maxPool(inputs: readonly (RefTensor | undefined)[], node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  if (getInt(node, 'storage_order', 0) !== 0)
    throw new Error(`${ctx.label}: reference supports storage_order 0`);
  const win = poolWindow(node, x, ctx);
  const dims = [x.dims[0], x.dims[1], ...win.outSp];
  const y = makeTensor(x.dataType, dims);
  const idx = makeTensor(DataType.INT64, dims);
  const planeIn = sizeOf(win.inSp);
  const planeOut = sizeOf(win.outSp);
  forEachWindow(x, win, (pl, p, offs) => {
    let best = -Infinity;
    let arg = -1;
    for (const off of offs) {
      const v = x.data[pl * planeIn + off];
      if (v > best) {
        best = v;
        arg = pl * planeIn + off;
      }
    }
    y.data[pl * planeOut + p] = best;
    idx.data[pl * planeOut + p] = arg;
  });
  return node.outputs.length > 1 && node.outputs[1] ? [y, idx] : [y];
}

function averagePool(
  inputs: readonly (RefTensor | undefined)[],
  node: OnnxNode,
  ctx: RefOpContext,
): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const win = poolWindow(node, x, ctx);
  const includePad = getInt(node, 'count_include_pad', 0) === 1;
  const r = win.inSp.length;
  const y = makeTensor(x.dataType, [x.dims[0], x.dims[1], ...win.outSp]);
  const planeIn = sizeOf(win.inSp);
  const planeOut = sizeOf(win.outSp);
  forEachWindow(x, win, (pl, p, offs, o) => {
    let sum = 0;
    for (const off of offs) sum += x.data[pl * planeIn + off];
    let count = offs.length;
    if (includePad) {
      count = 1;
      for (let a = 0; a < r; a++) {
        const start = o[a] * win.strides[a] - win.pads[a];
        const end = Math.min(start + (win.kernel[a] - 1) * win.dil[a] + 1, win.inSp[a] + win.pads[r + a]);
        count *= Math.ceil((end - start) / win.dil[a]);
      }
    }
    y.data[pl * planeOut + p] = sum / count;
  });
  return [y];
}

function globalPool(kind: 'max' | 'avg') {
  return (inputs: readonly (RefTensor | undefined)[], _node: OnnxNode, ctx: RefOpContext): RefTensor[] => {
    const x = need(inputs, 0, ctx);
    const sp = x.dims.slice(2);
    const plane = sizeOf(sp);
    const planes = x.dims[0] * x.dims[1];
    const y = makeTensor(x.dataType, [x.dims[0], x.dims[1], ...sp.map(() => 1)]);
    for (let pl = 0; pl < planes; pl++) {
      let acc = kind === 'max' ? -Infinity : 0;
      for (let i = 0; i < plane; i++) {
        const v = x.data[pl * plane + i];
        acc = kind === 'max' ? Math.max(acc, v) : acc + v;
      }
      y.data[pl] = kind === 'max' ? acc : acc / plane;
    }
    return [y];
  };
}

export const ops: RefOpTable = {
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: globalPool('avg'),
  GlobalMaxPool: globalPool('max'),
};
