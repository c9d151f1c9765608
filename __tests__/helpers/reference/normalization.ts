/**
 * Reference (float64) BatchNormalization, inference form: Y = scale·(X − mean)/√(var + ε) + B per channel
 * (axis 1). Training mode is not part of the reference.
 */
import { getFloat, getInt, type OnnxNode } from '../../../src/onnx';
import { makeTensor, need, sizeOf, type RefOpContext, type RefOpTable, type RefTensor } from './tensor';

function batchNorm(
  inputs: readonly (RefTensor | undefined)[],
  node: OnnxNode,
  ctx: RefOpContext,
): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const scale = need(inputs, 1, ctx);
  const bias = need(inputs, 2, ctx);
  const mean = need(inputs, 3, ctx);
  const variance = need(inputs, 4, ctx);
  if (getInt(node, 'training_mode', 0) !== 0) throw new Error(`${ctx.label}: reference has no training mode`);
  const eps = getFloat(node, 'epsilon', 1e-5);
  const [n, c] = x.dims;
  const plane = sizeOf(x.dims.slice(2));
  const y = makeTensor(x.dataType, x.dims);
  for (let ni = 0; ni < n; ni++) {
    for (let ci = 0; ci < c; ci++) {
      const a = scale.data[ci] / Math.sqrt(variance.data[ci] + eps);
      const base = (ni * c + ci) * plane;
      for (let p = 0; p < plane; p++)
        y.data[base + p] = a * (x.data[base + p] - mean.data[ci]) + bias.data[ci];
    }
  }
  return [y];
}

export const ops: RefOpTable = {
  BatchNormalization: batchNorm,
};
