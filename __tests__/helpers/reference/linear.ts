/**
 * Reference (float64) MatMul (numpy semantics: 1-D operands promoted and their axis removed, batch dims
 * broadcast) and Gemm (transA/transB/alpha/beta, C broadcast to [M, N]).
 */
import { getFloat, getInt, type OnnxNode } from '../../../src/onnx';
import {
  broadcastIndex,
  broadcastShapes,
  makeTensor,
  need,
  sizeOf,
  type RefOpContext,
  type RefOpTable,
  type RefTensor,
} from './tensor';

function matMul(inputs: readonly (RefTensor | undefined)[], _node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const a0 = need(inputs, 0, ctx);
  const b0 = need(inputs, 1, ctx);
  const aVec = a0.dims.length === 1;
  const bVec = b0.dims.length === 1;
  const aDims = aVec ? [1, a0.dims[0]] : a0.dims;
  const bDims = bVec ? [b0.dims[0], 1] : b0.dims;
  const m = aDims[aDims.length - 2];
  const k = aDims[aDims.length - 1];
  const n = bDims[bDims.length - 1];
  if (bDims[bDims.length - 2] !== k)
    throw new Error(`${ctx.label}: inner dims ${k} and ${bDims[bDims.length - 2]}`);
  const aBatch = aDims.slice(0, -2);
  const bBatch = bDims.slice(0, -2);
  const batch = broadcastShapes([aBatch, bBatch], ctx.label);
  const ai = broadcastIndex(aBatch, batch);
  const bi = broadcastIndex(bBatch, batch);
  const nb = sizeOf(batch);
  const full = [...batch, m, n];
  const y = makeTensor(a0.dataType, full);
  for (let t = 0; t < nb; t++) {
    const aOff = ai[t] * m * k;
    const bOff = bi[t] * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) acc += a0.data[aOff + i * k + p] * b0.data[bOff + p * n + j];
        y.data[(t * m + i) * n + j] = acc;
      }
    }
  }
  const outDims = [...batch, ...(aVec ? [] : [m]), ...(bVec ? [] : [n])];
  return [{ ...y, dims: outDims }];
}

function gemm(inputs: readonly (RefTensor | undefined)[], node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const a = need(inputs, 0, ctx);
  const b = need(inputs, 1, ctx);
  const c = inputs[2];
  const transA = getInt(node, 'transA', 0) === 1;
  const transB = getInt(node, 'transB', 0) === 1;
  const alpha = getFloat(node, 'alpha', 1);
  const beta = getFloat(node, 'beta', 1);
  const m = transA ? a.dims[1] : a.dims[0];
  const k = transA ? a.dims[0] : a.dims[1];
  const n = transB ? b.dims[0] : b.dims[1];
  const at = (i: number, p: number): number => (transA ? a.data[p * m + i] : a.data[i * k + p]);
  const bt = (p: number, j: number): number => (transB ? b.data[j * k + p] : b.data[p * n + j]);
  const y = makeTensor(a.dataType, [m, n]);
  const ci = c ? broadcastIndex(c.dims, [m, n]) : undefined;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += at(i, p) * bt(p, j);
      y.data[i * n + j] = alpha * acc + (c && ci ? beta * c.data[ci[i * n + j]] : 0);
    }
  }
  return [y];
}

export const ops: RefOpTable = {
  MatMul: matMul,
  Gemm: gemm,
};
