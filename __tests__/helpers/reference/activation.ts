/** Reference (float64) implementations of activations, Softmax and LogSoftmax. */
import { getFloat, getInt, type OnnxNode } from '../../../src/onnx';
import {
  makeTensor,
  mapBroadcast,
  need,
  normAxis,
  sizeOf,
  type RefOp,
  type RefOpContext,
  type RefOpTable,
  type RefTensor,
} from './tensor';

function unaryWith(fn: (x: number, node: OnnxNode) => number): RefOp {
  return (inputs, node, ctx) => {
    const x = need(inputs, 0, ctx);
    const y = makeTensor(x.dataType, x.dims);
    for (let i = 0; i < x.data.length; i++) y.data[i] = fn(x.data[i], node);
    return [y];
  };
}

/**
 * Softmax/LogSoftmax over `axis`. Opset ≥ 13: along one axis (default -1). Before 13: the input is coerced
 * to 2-D at `axis` (default 1) and normalized over the flattened tail.
 */
function softmaxLike(log: boolean): RefOp {
  return (inputs, node, ctx: RefOpContext) => {
    const x = need(inputs, 0, ctx);
    const rank = x.dims.length;
    const modern = ctx.opset >= 13;
    const axis = normAxis(getInt(node, 'axis', modern ? -1 : 1), rank, ctx.label);
    const outer = sizeOf(x.dims.slice(0, axis));
    const n = modern ? x.dims[axis] : sizeOf(x.dims.slice(axis));
    const inner = modern ? sizeOf(x.dims.slice(axis + 1)) : 1;
    const y = makeTensor(x.dataType, x.dims);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const at = (k: number): number => (o * n + k) * inner + i;
        let max = -Infinity;
        for (let k = 0; k < n; k++) max = Math.max(max, x.data[at(k)]);
        let sum = 0;
        for (let k = 0; k < n; k++) sum += Math.exp(x.data[at(k)] - max);
        for (let k = 0; k < n; k++) {
          const v = x.data[at(k)] - max;
          y.data[at(k)] = log ? v - Math.log(sum) : Math.exp(v) / sum;
        }
      }
    }
    return [y];
  };
}

function prelu(inputs: readonly (RefTensor | undefined)[], _node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  return [
    mapBroadcast([x, need(inputs, 1, ctx)], x.dataType, (v) => (v[0] < 0 ? v[0] * v[1] : v[0]), ctx.label),
  ];
}

export const ops: RefOpTable = {
  Relu: unaryWith((x) => Math.max(x, 0)),
  LeakyRelu: unaryWith((x, n) => (x < 0 ? getFloat(n, 'alpha', 0.01) * x : x)),
  Sigmoid: unaryWith((x) => 1 / (1 + Math.exp(-x))),
  Tanh: unaryWith(Math.tanh),
  Softplus: unaryWith((x) => (x > 30 ? x : Math.log1p(Math.exp(x)))),
  Elu: unaryWith((x, n) => (x < 0 ? getFloat(n, 'alpha', 1) * Math.expm1(x) : x)),
  HardSigmoid: unaryWith((x, n) =>
    Math.max(0, Math.min(1, getFloat(n, 'alpha', 0.2) * x + getFloat(n, 'beta', 0.5))),
  ),
  // ONNX HardSwish: x·max(0, min(1, x/6 + 1/2)), no attributes.
  HardSwish: unaryWith((x) => x * Math.max(0, Math.min(1, x / 6 + 0.5))),
  PRelu: prelu,
  Softmax: softmaxLike(false),
  LogSoftmax: softmaxLike(true),
};
