/**
 * Gradient rules for elementwise ops. Binary and variadic ops broadcast numpy-style, so each input's
 * gradient is reduced back to its shape with `ctx.unbroadcast` (axes decided statically when possible).
 */
import { GraphError } from '../../errors';
import { getFloat } from '../../onnx/attributes';
import { DataType } from '../../onnx/types';
import { constInts, dy0, only, staticShapeOf } from '../rule-helpers';
import type { GradContext, GradientRule, GradientRuleEntry } from '../types';

function outShape(ctx: GradContext): ReturnType<typeof staticShapeOf> {
  return staticShapeOf(ctx, ctx.node.outputs[0]);
}

/** Gradient `g` (shaped like the output) reduced to input `i`. */
function toInput(ctx: GradContext, g: string, i: number): string {
  return ctx.unbroadcast(g, ctx.node.inputs[i], outShape(ctx));
}

const add: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  return only(ctx, { 0: () => toInput(ctx, dy, 0), 1: () => toInput(ctx, dy, 1) });
};

const sub: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  return only(ctx, { 0: () => toInput(ctx, dy, 0), 1: () => toInput(ctx, ctx.b.op('Neg', [dy]), 1) });
};

const mul: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const [a, b] = ctx.node.inputs;
  return only(ctx, {
    0: () => toInput(ctx, ctx.b.op('Mul', [dy, b]), 0),
    1: () => toInput(ctx, ctx.b.op('Mul', [dy, a]), 1),
  });
};

/** d(a/b): da = dy/b, db = -(dy/b)·y, sharing dy/b. */
const div: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const [, b] = ctx.node.inputs;
  const q = ctx.b.op('Div', [dy, b]);
  return only(ctx, {
    0: () => toInput(ctx, q, 0),
    1: () => toInput(ctx, ctx.b.op('Neg', [ctx.b.op('Mul', [q, ctx.node.outputs[0]])]), 1),
  });
};

/**
 * Pow(x, e): dx = dy·e·x^(e−1), folded for a constant scalar exponent (e = 1, 2 special-cased);
 * de = dy·y·ln(x) when the exponent itself is trained.
 */
const pow: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const b = ctx.b;
  const [x, e] = ctx.node.inputs;
  const y = ctx.node.outputs[0];
  const dx = (): string => {
    const c = ctx.needs[1] ? undefined : constInts(ctx, e);
    let local: string;
    if (c && c.length === 1) {
      if (c[0] === 1) return toInput(ctx, dy, 0);
      local =
        c[0] === 2
          ? b.op('Mul', [x, ctx.scalar(2)])
          : b.op('Mul', [b.op('Pow', [x, ctx.scalar(c[0] - 1)]), ctx.scalar(c[0])]);
    } else {
      const ef = ctx.info(e).dataType === DataType.FLOAT ? e : b.op('Cast', [e], { to: DataType.FLOAT });
      local = b.op('Mul', [ef, b.op('Pow', [x, b.op('Sub', [ef, ctx.scalar(1)])])]);
    }
    return toInput(ctx, b.op('Mul', [dy, local]), 0);
  };
  const de = (): string => toInput(ctx, b.op('Mul', [b.op('Mul', [dy, y]), b.op('Log', [x])]), 1);
  return only(ctx, { 0: dx, 1: de });
};

function unary(local: (ctx: GradContext, dy: string, x: string, y: string) => string): GradientRule {
  return (ctx) => {
    const dy = dy0(ctx);
    return only(ctx, { 0: () => local(ctx, dy, ctx.node.inputs[0], ctx.node.outputs[0]) });
  };
}

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * Clip: dy passes where min ≤ x ≤ max (PyTorch's clamp convention at the bounds). Bounds come from inputs
 * (opset ≥ 11) or attributes (older graphs); a trained bound gets the sum of dy where it clipped.
 */
const clip: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const b = ctx.b;
  const node = ctx.node;
  const x = node.inputs[0];
  const bound = (i: number, attrName: string): string | undefined => {
    if (node.inputs[i]) return node.inputs[i];
    if (node.attributes[attrName]) return ctx.scalar(getFloat(node, attrName, 0));
    return undefined;
  };
  const lo = bound(1, 'min');
  const hi = bound(2, 'max');
  const dx = (): string => {
    const conds: string[] = [];
    if (lo) conds.push(b.op('GreaterOrEqual', [x, lo]));
    if (hi) conds.push(b.op('LessOrEqual', [x, hi]));
    if (conds.length === 0) return dy;
    const mask = conds.length === 1 ? conds[0] : b.op('And', conds);
    return b.op('Where', [mask, dy, ctx.scalar(0)]);
  };
  const dBound = (i: number, cmp: 'Less' | 'Greater'): string => {
    const t = node.inputs[i];
    const picked = b.op('Where', [b.op(cmp, [x, t]), dy, ctx.scalar(0)]);
    return b.op('Reshape', [ctx.reduceSum(picked, [], false), ctx.shapeOf(t)]);
  };
  return only(ctx, { 0: dx, 1: () => dBound(1, 'Less'), 2: () => dBound(2, 'Greater') });
};

const where: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const c = ctx.node.inputs[0];
  const zero = ctx.scalar(0);
  return only(ctx, {
    1: () => toInput(ctx, ctx.b.op('Where', [c, dy, zero]), 1),
    2: () => toInput(ctx, ctx.b.op('Where', [c, zero, dy]), 2),
  });
};

/** Inference-mode Dropout is the identity; training mode (random mask) is refused. */
const dropout: GradientRule = (ctx) => {
  const mode = ctx.node.inputs[2];
  if (mode) {
    const v = constInts(ctx, mode);
    if (!v || v.some((m) => m !== 0)) {
      throw new GraphError(
        `${ctx.label}: Dropout in training mode (training_mode=${v ? 'true' : 'not a constant'}) cannot be differentiated`,
        { hint: 'export the model in eval mode (model.eval()) so Dropout is the identity' },
      );
    }
  }
  const dy = dy0(ctx);
  return only(ctx, { 0: () => dy });
};

/** Sum and Mean: every input gets dy (÷ n for Mean), reduced to its shape. */
function sumLike(mean: boolean): GradientRule {
  return (ctx) => {
    const dy = dy0(ctx);
    const n = ctx.node.inputs.length;
    const g = mean && n > 1 ? ctx.b.op('Mul', [dy, ctx.scalar(1 / n)]) : dy;
    return ctx.node.inputs.map((_, i) => (ctx.needs[i] ? toInput(ctx, g, i) : undefined));
  };
}

/** Max/Min: dy goes to the inputs equal to the result, split evenly among ties (as torch.maximum). */
const maxMin: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const b = ctx.b;
  const inputs = ctx.node.inputs;
  const y = ctx.node.outputs[0];
  if (inputs.length === 1) return only(ctx, { 0: () => dy });
  const masks = inputs.map((x) => b.op('Cast', [b.op('Equal', [x, y])], { to: DataType.FLOAT }));
  const share = b.op('Div', [dy, b.op('Sum', masks)]);
  return inputs.map((_, i) => (ctx.needs[i] ? toInput(ctx, b.op('Mul', [share, masks[i]]), i) : undefined));
};

/** Piecewise-constant ops: their gradient is zero almost everywhere, so no gradient flows. */
function zeroGradient(opType: string): GradientRuleEntry {
  return { opType, rule: (ctx) => ctx.node.inputs.map(() => undefined), nonDifferentiableInputs: [0] };
}

export const rules: GradientRuleEntry[] = [
  { opType: 'Add', rule: add },
  { opType: 'Sub', rule: sub },
  { opType: 'Mul', rule: mul },
  { opType: 'Div', rule: div },
  { opType: 'Pow', rule: pow },
  { opType: 'Abs', rule: unary((c, dy, x) => c.b.op('Mul', [dy, c.b.op('Sign', [x])])) },
  { opType: 'Neg', rule: unary((c, dy) => c.b.op('Neg', [dy])) },
  { opType: 'Exp', rule: unary((c, dy, _x, y) => c.b.op('Mul', [dy, y])) },
  { opType: 'Log', rule: unary((c, dy, x) => c.b.op('Div', [dy, x])) },
  { opType: 'Sqrt', rule: unary((c, dy, _x, y) => c.b.op('Div', [c.b.op('Mul', [dy, c.scalar(0.5)]), y])) },
  {
    opType: 'Reciprocal',
    rule: unary((c, dy, _x, y) => c.b.op('Neg', [c.b.op('Mul', [dy, c.b.op('Mul', [y, y])])])),
  },
  {
    opType: 'Erf',
    rule: unary((c, dy, x) => {
      const gauss = c.b.op('Exp', [c.b.op('Neg', [c.b.op('Mul', [x, x])])]);
      return c.b.op('Mul', [dy, c.b.op('Mul', [gauss, c.scalar(TWO_OVER_SQRT_PI)])]);
    }),
  },
  { opType: 'Sin', rule: unary((c, dy, x) => c.b.op('Mul', [dy, c.b.op('Cos', [x])])) },
  { opType: 'Cos', rule: unary((c, dy, x) => c.b.op('Neg', [c.b.op('Mul', [dy, c.b.op('Sin', [x])])])) },
  { opType: 'Identity', rule: unary((_c, dy) => dy) },
  { opType: 'Clip', rule: clip },
  { opType: 'Where', rule: where, nonDifferentiableInputs: [0] },
  { opType: 'Dropout', rule: dropout, nonDifferentiableInputs: [1, 2] },
  { opType: 'Sum', rule: sumLike(false) },
  { opType: 'Mean', rule: sumLike(true) },
  { opType: 'Max', rule: maxMin },
  { opType: 'Min', rule: maxMin },
  zeroGradient('Floor'),
  zeroGradient('Ceil'),
  zeroGradient('Round'),
  zeroGradient('Sign'),
];
