/**
 * Gradient rules for activations. Where the derivative is a function of the output (Relu, Sigmoid, Tanh,
 * Softmax), the rule reads Y so X need not stay alive for the backward pass.
 */
import { GraphError } from '../../errors';
import { getFloat, getInt } from '../../onnx/attributes';
import { dy0, only, staticShapeOf } from '../rule-helpers';
import type { GradContext, GradientRule, GradientRuleEntry } from '../types';

function unary(local: (ctx: GradContext, dy: string, x: string, y: string) => string): GradientRule {
  return (ctx) => {
    const dy = dy0(ctx);
    return only(ctx, { 0: () => local(ctx, dy, ctx.node.inputs[0], ctx.node.outputs[0]) });
  };
}

/**
 * Relu: dy where y > 0 (0 at x = 0, as PyTorch), as dy times the mask cast to dy's type: onnxruntime's
 * Where with a broadcast scalar takes a slow path (2.8 ms against 0.8 ms for Mul on a [2, 256, 56, 56]
 * tensor; ReLU gradients were ~50 ms of a ResNet-50-FPN training step).
 */
const relu = unary((c, dy, _x, y) =>
  c.b.op('Mul', [dy, c.b.op('Cast', [c.b.op('Greater', [y, c.scalar(0)])], { to: c.info(y).dataType })]),
);

/** LeakyRelu: dy where x > 0, alpha·dy elsewhere. */
const leakyRelu = unary((c, dy, x) => {
  const alpha = getFloat(c.node, 'alpha', 0.01);
  const neg = c.b.op('Mul', [dy, c.scalar(alpha)]);
  return c.b.op('Where', [c.b.op('Greater', [x, c.scalar(0)]), dy, neg]);
});

const sigmoid = unary((c, dy, _x, y) =>
  c.b.op('Mul', [dy, c.b.op('Mul', [y, c.b.op('Sub', [c.scalar(1), y])])]),
);

const tanh = unary((c, dy, _x, y) =>
  c.b.op('Mul', [dy, c.b.op('Sub', [c.scalar(1), c.b.op('Mul', [y, y])])]),
);

/** Softmax/LogSoftmax before opset 13 normalize a flattened 2-D view; refused (the driver needs ≥ 13). */
function softmaxAxis(ctx: GradContext): number {
  if (ctx.opset < 13) {
    throw new GraphError(`${ctx.label}: Softmax before opset 13 (2-D coercion semantics) is not supported`, {
      hint: 're-export the model with opset 13 or newer',
    });
  }
  return getInt(ctx.node, 'axis', -1);
}

/** Softmax: dx = y·(dy − Σ_axis dy·y). */
const softmax = unary((c, dy, _x, y) => {
  const axis = softmaxAxis(c);
  const dot = c.reduceSum(c.b.op('Mul', [dy, y]), [axis], true);
  return c.b.op('Mul', [y, c.b.op('Sub', [dy, dot])]);
});

/** LogSoftmax: dx = dy − exp(y)·Σ_axis dy. */
const logSoftmax = unary((c, dy, _x, y) => {
  const axis = softmaxAxis(c);
  const total = c.reduceSum(dy, [axis], true);
  return c.b.op('Sub', [dy, c.b.op('Mul', [c.b.op('Exp', [y]), total])]);
});

/** Softplus: dy·sigmoid(x). */
const softplus = unary((c, dy, x) => c.b.op('Mul', [dy, c.b.op('Sigmoid', [x])]));

/** Elu: dy where x > 0, dy·(y + alpha) elsewhere. */
const elu = unary((c, dy, x, y) => {
  const alpha = getFloat(c.node, 'alpha', 1);
  const neg = c.b.op('Mul', [dy, c.b.op('Add', [y, c.scalar(alpha)])]);
  return c.b.op('Where', [c.b.op('Greater', [x, c.scalar(0)]), dy, neg]);
});

/** HardSigmoid: alpha·dy strictly inside the linear part (0 < y < 1). */
const hardSigmoid = unary((c, dy, _x, y) => {
  const alpha = getFloat(c.node, 'alpha', 0.2);
  const inside = c.b.op('And', [c.b.op('Greater', [y, c.scalar(0)]), c.b.op('Less', [y, c.scalar(1)])]);
  return c.b.op('Where', [inside, c.b.op('Mul', [dy, c.scalar(alpha)]), c.scalar(0)]);
});

/**
 * HardSwish (opset 14; y = x·HardSigmoid(x) with alpha 1/6, beta 0.5): dx = dy·(x/3 + 1/2) on
 * [-3, 3], dy above, 0 below. The ends of the interval follow PyTorch's hardswish_backward (x = -3 gives
 * -1/2, x = 3 gives 3/2), so a graph exported from torchvision differentiates as PyTorch does.
 */
const hardSwish = unary((c, dy, x) => {
  const slope = c.b.op('Add', [c.b.op('Mul', [x, c.scalar(1 / 3)]), c.scalar(0.5)]);
  const upper = c.b.op('Where', [c.b.op('Greater', [x, c.scalar(3)]), dy, c.b.op('Mul', [dy, slope])]);
  return c.b.op('Where', [c.b.op('Less', [x, c.scalar(-3)]), c.scalar(0), upper]);
});

/** PRelu: dx = dy where x > 0 else slope·dy; dslope = Σ dy·x where x ≤ 0, reduced to the slope's shape. */
const prelu: GradientRule = (ctx) => {
  const dy = dy0(ctx);
  const b = ctx.b;
  const [x, slope] = ctx.node.inputs;
  const pos = b.op('Greater', [x, ctx.scalar(0)]);
  const yShape = staticShapeOf(ctx, ctx.node.outputs[0]);
  return only(ctx, {
    0: () => ctx.unbroadcast(b.op('Where', [pos, dy, b.op('Mul', [dy, slope])]), x, yShape),
    1: () => ctx.unbroadcast(b.op('Where', [pos, ctx.scalar(0), b.op('Mul', [dy, x])]), slope, yShape),
  });
};

export const rules: GradientRuleEntry[] = [
  { opType: 'Relu', rule: relu },
  { opType: 'LeakyRelu', rule: leakyRelu },
  { opType: 'Sigmoid', rule: sigmoid },
  { opType: 'Tanh', rule: tanh },
  { opType: 'Softmax', rule: softmax },
  { opType: 'LogSoftmax', rule: logSoftmax },
  { opType: 'Softplus', rule: softplus },
  { opType: 'Elu', rule: elu },
  { opType: 'HardSigmoid', rule: hardSigmoid },
  { opType: 'HardSwish', rule: hardSwish },
  { opType: 'PRelu', rule: prelu },
];
