/**
 * Gradient of BatchNormalization in its inference form, Y = a·(X − mean) + B with a = scale/√(var + ε)
 * per channel (axis 1), in standard ONNX ops:
 *
 *   dX = dY·a,  dB = Σ dY,  dscale = Σ dY·(X − mean) / √(var + ε),
 *   dmean = −a·Σ dY,  dvar = −½·scale·(var + ε)^(−3/2)·Σ dY·(X − mean)
 *
 * with Σ over every axis but the channel axis. Training mode (batch statistics) is refused: its forward
 * depends on the batch and onnxruntime only runs it in full builds.
 */
import { GraphError } from '../../errors';
import { getFloat, getInt } from '../../onnx/attributes';
import type { GradContext, GradientRuleEntry } from '../types';

function refuseTraining(ctx: GradContext): void {
  const extraOutputs = ctx.node.outputs.slice(1).some((o) => o !== '');
  if (getInt(ctx.node, 'training_mode', 0) !== 0 || extraOutputs) {
    throw new GraphError(`${ctx.label}: the gradient of training-mode BatchNormalization is not supported`, {
      hint: 'export the model in eval mode (training_mode=0, one output), or write the normalization as ReduceMean/Sub/Mul ops',
    });
  }
  if (getInt(ctx.node, 'spatial', 1) !== 1) {
    throw new GraphError(`${ctx.label}: BatchNormalization with spatial=0 is not supported`);
  }
}

const batchNormalization: GradientRuleEntry = {
  opType: 'BatchNormalization',
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY) return [];
    refuseTraining(ctx);
    const { b, needs } = ctx;
    const [x, scale, , mean, variance] = ctx.node.inputs;
    const rank = ctx.info(x).shape?.length;
    if (rank === undefined) throw new GraphError(`${ctx.label}: the rank of input '${x}' is unknown`);
    if (rank < 2) throw new GraphError(`${ctx.label}: input must have rank >= 2, got ${rank}`);
    const eps = getFloat(ctx.node, 'epsilon', 1e-5);
    const trailing = Array.from({ length: rank - 2 }, (_, i) => i + 1);
    const perChannel = (t: string): string => ctx.unsqueeze(t, trailing);
    const sumAxes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const invStd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, ctx.scalar(eps)])])]);
    const needA = needs[0] || needs[3];
    const a = needA ? b.op('Mul', [scale, invStd]) : undefined;
    const needSumDy = needs[2] || needs[3];
    const sumDy = needSumDy ? ctx.reduceSum(dY, sumAxes, false) : undefined;
    const needCentered = needs[1] || needs[4];
    const centered = needCentered
      ? ctx.reduceSum(b.op('Mul', [dY, b.op('Sub', [x, perChannel(mean)])]), sumAxes, false)
      : undefined;
    const dScale = centered ? b.op('Mul', [centered, invStd]) : undefined;
    return [
      needs[0] && a ? b.op('Mul', [dY, perChannel(a)], {}, { name: `${ctx.node.name}_grad_dx` }) : undefined,
      needs[1] ? dScale : undefined,
      needs[2] ? sumDy : undefined,
      needs[3] && a && sumDy ? b.op('Neg', [b.op('Mul', [sumDy, a])]) : undefined,
      needs[4] && dScale
        ? b.op('Mul', [
            b.op('Mul', [dScale, scale]),
            b.op('Mul', [b.op('Mul', [invStd, invStd]), ctx.scalar(-0.5)]),
          ])
        : undefined,
    ];
  },
};

export const rules: GradientRuleEntry[] = [batchNormalization];
