/**
 * Shape rules for element-wise ops: broadcasting arithmetic and comparisons (folded when the inputs are
 * known), unary activations, Where, Clip, Cast and the normalization layers.
 */
import { getFloat, getInt } from '../attributes';
import { DataType, type Dim } from '../types';
import { broadcastShapes, foldBroadcast, isIntType, normalizeAxis, numeric, tensor } from './fold';
import type { InferContext, Inferred, Scalar, ShapeRule } from './types';

type Fold = (args: Scalar[], dt: DataType) => Scalar;

function broadcastRule(fold: Fold | undefined, resultType?: DataType): ShapeRule {
  return (ctx) => {
    const n = ctx.node.inputs.length;
    const idx = Array.from({ length: n }, (_, i) => i).filter((i) => ctx.has(i));
    const shape = broadcastShapes(
      idx.map((i) => ctx.shape(i)),
      ctx.fail,
    );
    const inType =
      idx.map((i) => ctx.dataType(i)).find((t) => t !== DataType.UNDEFINED) ?? DataType.UNDEFINED;
    const dt = resultType ?? inType;
    const elems = fold
      ? foldBroadcast(
          idx.map((i) => ({ shape: ctx.shape(i), elems: ctx.elems(i) })),
          shape,
          (args) => fold(args, inType),
        )
      : undefined;
    return [tensor(dt, shape, elems)];
  };
}

const intDiv = (a: number, b: number): number => (b === 0 ? 0 : Math.trunc(a / b));

const add: Fold = (args) => {
  const [a, b] = args;
  if (a === 0) return b;
  if (b === 0) return a;
  return numeric((x, y) => x + y)(args);
};
const sub: Fold = (args) => (args[1] === 0 ? args[0] : numeric((x, y) => x - y)(args));
const mul: Fold = (args) => {
  const [a, b] = args;
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === 0 || b === 0) return 0;
  return numeric((x, y) => x * y)(args);
};
const div: Fold = (args, dt) =>
  args[1] === 1 ? args[0] : numeric((x, y) => (isIntType(dt) ? intDiv(x, y) : x / y))(args);
const mod: Fold = numeric((a, b) => (b === 0 ? 0 : a - b * Math.floor(a / b)));
const fmod: Fold = numeric((a, b) => (b === 0 ? 0 : a % b));
const pow: Fold = numeric((a, b) => a ** b);
const max: Fold = numeric((...xs) => Math.max(...xs));
const min: Fold = numeric((...xs) => Math.min(...xs));
const sum: Fold = numeric((...xs) => xs.reduce((p, q) => p + q, 0));
const mean: Fold = numeric((...xs) => xs.reduce((p, q) => p + q, 0) / xs.length);
const equal: Fold = (args) => {
  const [a, b] = args;
  if (typeof a === 'string' && a === b) return 1;
  return numeric((x, y) => (x === y ? 1 : 0))(args);
};
const cmp = (f: (a: number, b: number) => boolean): Fold => numeric((a, b) => (f(a, b) ? 1 : 0));
const logic = (f: (a: boolean, b: boolean) => boolean): Fold =>
  numeric((a, b) => (f(a !== 0, b !== 0) ? 1 : 0));

function unary(fold?: (x: number, dt: DataType) => number, resultType?: DataType): ShapeRule {
  return (ctx) => {
    const shape = ctx.shape(0);
    const dt = ctx.dataType(0);
    const e = ctx.elems(0);
    const elems = fold && e ? e.map((x) => (typeof x === 'number' ? fold(x, dt) : null)) : undefined;
    return [tensor(resultType ?? dt, shape, elems)];
  };
}

/** Same shape and type as input 0, no folding (activations on feature maps). */
const sameShape: ShapeRule = (ctx) => [tensor(ctx.dataType(0), ctx.shape(0))];

const identity: ShapeRule = (ctx) => {
  const t = ctx.input(0);
  return [t ? { ...t } : undefined];
};

const where: ShapeRule = (ctx) => {
  const shape = broadcastShapes([ctx.shape(0), ctx.shape(1), ctx.shape(2)], ctx.fail);
  const dt = ctx.dataType(1) !== DataType.UNDEFINED ? ctx.dataType(1) : ctx.dataType(2);
  const elems = foldBroadcast(
    [0, 1, 2].map((i) => ({ shape: ctx.shape(i), elems: ctx.elems(i) })),
    shape,
    ([c, x, y]) => (typeof c === 'number' ? (c !== 0 ? x : y) : null),
  );
  return [tensor(dt, shape, elems)];
};

const clip: ShapeRule = (ctx) => {
  const dt = ctx.dataType(0);
  let lo = -Infinity;
  let hi = Infinity;
  if (ctx.opset < 11) {
    lo = getFloat(ctx.node, 'min', -Infinity);
    hi = getFloat(ctx.node, 'max', Infinity);
  } else {
    const a = ctx.has(1) ? ctx.ints(1) : [-Infinity];
    const b = ctx.has(2) ? ctx.ints(2) : [Infinity];
    if (!a || !b) return [tensor(dt, ctx.shape(0))];
    lo = a[0];
    hi = b[0];
  }
  return unary((x) => Math.min(Math.max(x, lo), hi))(ctx);
};

const cast: ShapeRule = (ctx) => {
  const to = getInt(ctx.node, 'to');
  if (to === undefined) return ctx.fail("attribute 'to' is required");
  const target = to as DataType;
  const e = ctx.elems(0);
  // Symbolic dims survive casts between integer and float types (shape arithmetic round trips).
  const keepsSymbols = target !== DataType.BOOL;
  const elems = e?.map((x) => (typeof x === 'number' ? x : keepsSymbols ? x : null));
  return [tensor(target, ctx.shape(0), elems)];
};

const dropout: ShapeRule = (ctx) => {
  const shape = ctx.shape(0);
  return [tensor(ctx.dataType(0), shape, ctx.elems(0)), tensor(DataType.BOOL, shape)];
};

const batchNorm: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  const c: Dim[] = [x ? x[1] : null];
  return [tensor(dt, x), tensor(dt, c), tensor(dt, c), tensor(dt, c), tensor(dt, c)];
};

const layerNorm: ShapeRule = (ctx) => {
  const x = ctx.shape(0);
  const dt = ctx.dataType(0);
  if (!x)
    return [tensor(dt, undefined), tensor(DataType.FLOAT, undefined), tensor(DataType.FLOAT, undefined)];
  const axis = normalizeAxis(getInt(ctx.node, 'axis', -1), x.length, ctx.fail);
  const stats = x.map((d, i) => (i < axis ? d : 1));
  return [tensor(dt, x), tensor(DataType.FLOAT, stats), tensor(DataType.FLOAT, stats)];
};

const instanceNorm: ShapeRule = sameShape;

const lrn: ShapeRule = sameShape;

function softmaxLike(ctx: InferContext): Inferred[] {
  const x = ctx.shape(0);
  if (x && x.length > 0)
    normalizeAxis(getInt(ctx.node, 'axis', ctx.opset >= 13 ? -1 : 1), x.length, ctx.fail);
  return [tensor(ctx.dataType(0), x)];
}

const FLOAT_UNARY = [
  'Relu',
  'LeakyRelu',
  'Sigmoid',
  'Tanh',
  'Exp',
  'Log',
  'Erf',
  'Elu',
  'Selu',
  'Celu',
  'HardSigmoid',
  'HardSwish',
  'Softplus',
  'Softsign',
  'Sin',
  'Cos',
  'Tan',
  'Asin',
  'Acos',
  'Atan',
  'Sinh',
  'Cosh',
  'Asinh',
  'Acosh',
  'Atanh',
  'Gelu',
  'Mish',
  'ThresholdedRelu',
  'Shrink',
  'CumSum',
  'Trilu',
];

/** Shape rules of this family, by op type. */
export const rules: Record<string, ShapeRule> = {
  Add: broadcastRule(add),
  Sub: broadcastRule(sub),
  Mul: broadcastRule(mul),
  Div: broadcastRule(div),
  Mod: (ctx) => broadcastRule(getInt(ctx.node, 'fmod', 0) === 1 ? fmod : mod)(ctx),
  Pow: (ctx) => broadcastRule(pow)(ctx).map((t) => (t ? { ...t, dataType: ctx.dataType(0) } : t)),
  Max: broadcastRule(max),
  Min: broadcastRule(min),
  Sum: broadcastRule(sum),
  Mean: broadcastRule(mean),
  PRelu: broadcastRule(undefined),
  BitShift: broadcastRule(undefined),
  Equal: broadcastRule(equal, DataType.BOOL),
  Greater: broadcastRule(
    cmp((a, b) => a > b),
    DataType.BOOL,
  ),
  Less: broadcastRule(
    cmp((a, b) => a < b),
    DataType.BOOL,
  ),
  GreaterOrEqual: broadcastRule(
    cmp((a, b) => a >= b),
    DataType.BOOL,
  ),
  LessOrEqual: broadcastRule(
    cmp((a, b) => a <= b),
    DataType.BOOL,
  ),
  And: broadcastRule(
    logic((a, b) => a && b),
    DataType.BOOL,
  ),
  Or: broadcastRule(
    logic((a, b) => a || b),
    DataType.BOOL,
  ),
  Xor: broadcastRule(
    logic((a, b) => a !== b),
    DataType.BOOL,
  ),
  Not: unary((x) => (x !== 0 ? 0 : 1), DataType.BOOL),
  IsNaN: unary((x) => (Number.isNaN(x) ? 1 : 0), DataType.BOOL),
  IsInf: unary((x) => (Number.isFinite(x) || Number.isNaN(x) ? 0 : 1), DataType.BOOL),
  Neg: unary((x) => -x),
  Abs: unary((x) => Math.abs(x)),
  Floor: unary((x) => Math.floor(x)),
  Ceil: unary((x) => Math.ceil(x)),
  Round: unary((x) => {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r; // round half to even, as ONNX does
  }),
  Sqrt: unary((x) => Math.sqrt(x)),
  Reciprocal: unary((x) => 1 / x),
  Sign: unary((x) => Math.sign(x)),
  Identity: identity,
  Where: where,
  Clip: clip,
  Cast: cast,
  Dropout: dropout,
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  InstanceNormalization: instanceNorm,
  LRN: lrn,
  Softmax: softmaxLike,
  LogSoftmax: softmaxLike,
  Hardmax: softmaxLike,
  ...Object.fromEntries(FLOAT_UNARY.map((op) => [op, sameShape])),
};
