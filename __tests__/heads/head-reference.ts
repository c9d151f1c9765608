/**
 * Plain float64 TypeScript versions of the heads' layers (NCHW arrays), written from the layers'
 * definitions and independent of the graph builder, to check the head graphs' forward passes.
 */
import { tensorValuesAsNumbers, type OnnxModel } from '../../src/onnx';

/** A float64 NCHW tensor. */
export interface T64 {
  dims: number[];
  data: Float64Array;
}

/** An initializer of a model as float64. */
export function param(model: OnnxModel, name: string): T64 {
  const t = model.graph.initializers.find((i) => i.name === name);
  if (!t) throw new Error(`no initializer '${name}'`);
  return { dims: [...t.dims], data: Float64Array.from(tensorValuesAsNumbers(t)) };
}

/** Stride-1 convolution with zero padding (k−1)/2 ('same'). */
export function conv2d(x: T64, w: T64, bias: T64): T64 {
  const [N, C, H, W] = x.dims;
  const [O, , k] = w.dims;
  const p = (k - 1) / 2;
  const out = new Float64Array(N * O * H * W);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++) {
          let s = bias.data[o];
          for (let c = 0; c < C; c++)
            for (let i = 0; i < k; i++)
              for (let j = 0; j < k; j++) {
                const yy = y + i - p;
                const xj = xx + j - p;
                if (yy < 0 || yy >= H || xj < 0 || xj >= W) continue;
                s += x.data[((n * C + c) * H + yy) * W + xj] * w.data[((o * C + c) * k + i) * k + j];
              }
          out[((n * O + o) * H + y) * W + xx] = s;
        }
  return { dims: [N, O, H, W], data: out };
}

export function map(x: T64, f: (v: number) => number): T64 {
  return { dims: x.dims, data: x.data.map(f) };
}

export function add(a: T64, b: T64): T64 {
  return { dims: a.dims, data: a.data.map((v, i) => v + b.data[i]) };
}

/** PyTorch's bilinear interpolate with align_corners=False. */
export function bilinear(x: T64, outH: number, outW: number): T64 {
  const [N, C, H, W] = x.dims;
  const src = (o: number, lenIn: number, lenOut: number): [number, number, number] => {
    const s = Math.max(0, lenOut > 1 ? ((o + 0.5) * lenIn) / lenOut - 0.5 : 0);
    const i0 = Math.min(Math.floor(s), lenIn - 1);
    const i1 = Math.min(i0 + 1, lenIn - 1);
    return [i0, i1, Math.min(s - i0, 1)];
  };
  const out = new Float64Array(N * C * outH * outW);
  for (let nc = 0; nc < N * C; nc++)
    for (let y = 0; y < outH; y++) {
      const [y0, y1, ly] = src(y, H, outH);
      for (let xx = 0; xx < outW; xx++) {
        const [x0, x1, lx] = src(xx, W, outW);
        const at = (yy: number, xj: number): number => x.data[nc * H * W + yy * W + xj];
        out[nc * outH * outW + y * outW + xx] =
          (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) +
          ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
      }
    }
  return { dims: [N, C, outH, outW], data: out };
}

/** [N, C, H, W] → [N, H·W, C] rows. */
export function rows(x: T64): T64 {
  const [N, C, H, W] = x.dims;
  const out = new Float64Array(x.data.length);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let a = 0; a < H * W; a++) out[(n * H * W + a) * C + c] = x.data[(n * C + c) * H * W + a];
  return { dims: [N, H * W, C], data: out };
}

/** Mean over H, W then y = W·x + b. */
export function poolLinear(x: T64, w: T64, b: T64): T64 {
  const [N, C, H, W] = x.dims;
  const K = w.dims[0];
  const out = new Float64Array(N * K);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      let s = b.data[k];
      for (let c = 0; c < C; c++) {
        let m = 0;
        for (let i = 0; i < H * W; i++) m += x.data[(n * C + c) * H * W + i];
        s += (w.data[k * C + c] * m) / (H * W);
      }
      out[n * K + k] = s;
    }
  return { dims: [N, K], data: out };
}

export const relu = (x: T64): T64 => map(x, (v) => Math.max(v, 0));
export const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
export const softplus = (v: number): number =>
  v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
