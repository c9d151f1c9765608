/** Reference (float64) implementations of elementwise, comparison and logical ops. */
import { DataType, getFloat, getInt, type OnnxNode } from '../../../src/onnx';
import {
  isFloat,
  makeTensor,
  mapBroadcast,
  need,
  type RefOp,
  type RefOpContext,
  type RefOpTable,
  type RefTensor,
} from './tensor';

/** erf in float64: Maclaurin series below 2.5, continued fraction for erfc above (|error| < 1e-14). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 6) return Math.sign(x);
  // erfc(x) = exp(-x²)/sqrt(pi) · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) evaluated bottom-up.
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

function binary(fn: (a: number, b: number) => number, outType?: DataType): RefOp {
  return (inputs, _node, ctx) => {
    const a = need(inputs, 0, ctx);
    const b = need(inputs, 1, ctx);
    return [mapBroadcast([a, b], outType ?? a.dataType, (v) => fn(v[0], v[1]), ctx.label)];
  };
}

function unary(fn: (x: number) => number): RefOp {
  return (inputs, _node, ctx) => {
    const x = need(inputs, 0, ctx);
    const y = makeTensor(x.dataType, x.dims);
    for (let i = 0; i < x.data.length; i++) y.data[i] = fn(x.data[i]);
    return [y];
  };
}

function variadic(fn: (values: number[]) => number): RefOp {
  return (inputs, _node, ctx) => {
    const xs = inputs.filter((t): t is RefTensor => t !== undefined);
    if (xs.length === 0) throw new Error(`${ctx.label}: needs at least one input`);
    return [mapBroadcast(xs, xs[0].dataType, fn, ctx.label)];
  };
}

/** Round half to even, as ONNX Round does. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function div(inputs: readonly (RefTensor | undefined)[], _node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const a = need(inputs, 0, ctx);
  const intDiv = !isFloat(a.dataType);
  return [
    mapBroadcast(
      [a, need(inputs, 1, ctx)],
      a.dataType,
      (v) => (intDiv ? Math.trunc(v[0] / v[1]) : v[0] / v[1]),
      ctx.label,
    ),
  ];
}

function clip(inputs: readonly (RefTensor | undefined)[], node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  let lo = node.attributes.min ? getFloat(node, 'min', -Infinity) : -Infinity;
  let hi = node.attributes.max ? getFloat(node, 'max', Infinity) : Infinity;
  if (inputs[1]) lo = inputs[1].data[0];
  if (inputs[2]) hi = inputs[2].data[0];
  const y = makeTensor(x.dataType, x.dims);
  // ONNX: min(max(x, lo), hi), so hi wins when lo > hi.
  for (let i = 0; i < x.data.length; i++) y.data[i] = Math.min(Math.max(x.data[i], lo), hi);
  return [y];
}

function where(inputs: readonly (RefTensor | undefined)[], _node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const c = need(inputs, 0, ctx);
  const a = need(inputs, 1, ctx);
  const b = need(inputs, 2, ctx);
  return [mapBroadcast([c, a, b], a.dataType, (v) => (v[0] !== 0 ? v[1] : v[2]), ctx.label)];
}

function dropout(inputs: readonly (RefTensor | undefined)[], node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const x = need(inputs, 0, ctx);
  const training = inputs[2] ? inputs[2].data[0] !== 0 : false;
  if (training) throw new Error(`${ctx.label}: training_mode=true is not supported by the reference`);
  const outs: RefTensor[] = [{ ...x, dims: [...x.dims], data: Float64Array.from(x.data) }];
  if (node.outputs.length > 1 && node.outputs[1])
    outs.push(makeTensor(DataType.BOOL, x.dims, new Array(x.data.length).fill(1)));
  return outs;
}

function mod(inputs: readonly (RefTensor | undefined)[], node: OnnxNode, ctx: RefOpContext): RefTensor[] {
  const fmod = getInt(node, 'fmod', 0) === 1;
  return binary((a, b) => {
    if (fmod) return a % b;
    const r = a % b;
    return r !== 0 && Math.sign(r) !== Math.sign(b) ? r + b : r;
  })(inputs, node, ctx) as RefTensor[];
}

/** Max/Min/Mean/Sum with broadcasting (Mean divides by the input count). */
function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

export const ops: RefOpTable = {
  Add: binary((a, b) => a + b),
  Sub: binary((a, b) => a - b),
  Mul: binary((a, b) => a * b),
  Div: div,
  Pow: binary((a, b) => Math.pow(a, b)),
  Mod: mod,
  Equal: binary((a, b) => (a === b ? 1 : 0), DataType.BOOL),
  Greater: binary((a, b) => (a > b ? 1 : 0), DataType.BOOL),
  Less: binary((a, b) => (a < b ? 1 : 0), DataType.BOOL),
  GreaterOrEqual: binary((a, b) => (a >= b ? 1 : 0), DataType.BOOL),
  LessOrEqual: binary((a, b) => (a <= b ? 1 : 0), DataType.BOOL),
  And: binary((a, b) => (a !== 0 && b !== 0 ? 1 : 0), DataType.BOOL),
  Or: binary((a, b) => (a !== 0 || b !== 0 ? 1 : 0), DataType.BOOL),
  Xor: binary((a, b) => ((a !== 0) !== (b !== 0) ? 1 : 0), DataType.BOOL),
  Not: unary((x) => (x !== 0 ? 0 : 1)),
  Abs: unary(Math.abs),
  Neg: unary((x) => -x),
  Exp: unary(Math.exp),
  Log: unary(Math.log),
  Sqrt: unary(Math.sqrt),
  Reciprocal: unary((x) => 1 / x),
  Erf: unary(erf),
  Floor: unary(Math.floor),
  Ceil: unary(Math.ceil),
  Round: unary(roundHalfEven),
  Sign: unary((x) => Math.sign(x)),
  Sin: unary(Math.sin),
  Cos: unary(Math.cos),
  Identity: unary((x) => x),
  Clip: clip,
  Where: where,
  Dropout: dropout,
  Sum: variadic((v) => v.reduce((s, x) => s + x, 0)),
  Max: variadic((v) => Math.max(...v)),
  Min: variadic((v) => Math.min(...v)),
  Mean: variadic(mean),
};
