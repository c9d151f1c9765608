/**
 * The PPO loss as an ONNX graph on top of the policy's whole-episode forward, so the engine's autodiff
 * differentiates it and a TrainingSession trains the policy. The Bernoulli log-probs are computed in the
 * graph from logits (−softplus((1 − 2a)·z)), for the new logits and for the logits stored at acting time
 * alike, so right after a rollout the ratio is exp(0) = 1 exactly. Decisions fixed by the budget or
 * `minLevels` enter through the `free` mask (log-prob 0, entropy 0, no gradient), and transitions without
 * a free decision carry no policy-loss weight.
 *
 * Loss (stable-baselines3 conventions): L = L_clip + c_ent·(−H) + c_vf·mean((R − V̂)²), with
 * L_clip = −Σ_t w_t·min(A_t·r_t, A_t·clip(r_t, 1 ± ε)), w_t = 1/#(steps with a free decision) on those
 * steps, H = Σ_t w_t·H_t, and V̂ = V_old + clip(V − V_old, ±ε_vf) when value clipping is on (SB3's
 * variant: the clipped prediction only, no max with the unclipped one). No ½ on the value loss.
 */
import { GraphBuilder } from '../onnx/graph-builder';
import { DataType, type OnnxModel } from '../onnx/types';
import {
  declareSequenceInputs,
  emitPolicyParameters,
  emitPolicySequence,
  episodeLayout,
  resolveArchitecture,
  type PolicyArchitecture,
  type PolicyParameter,
} from './policy-graph';

/** Names of the loss graph's extra inputs and outputs. */
export const PPO_IO = {
  /** float [M, L] decisions taken (0/1). */
  actions: 'ppo.actions',
  /** float [M, L] 1 for free decisions, 0 for ones fixed by the constraints. */
  free: 'ppo.free',
  /** float [M, L] logits at acting time. */
  oldLogits: 'ppo.old_logits',
  /** float [M, S] V(s) at acting time. */
  oldValues: 'ppo.old_values',
  /** float [M, S] advantages (normalized per minibatch by the trainer). */
  advantages: 'ppo.advantages',
  /** float [M, S] value targets. */
  returns: 'ppo.returns',
  /** float [M, S] weight of each step in the policy loss and the entropy (Σ = 1 over free steps). */
  policyWeight: 'ppo.policy_weight',
  /** float [] ε of the ratio clip. */
  clipRange: 'ppo.clip_range',
  /** float [] ε of the value clip (read only by graphs built with value clipping). */
  clipRangeVf: 'ppo.clip_range_vf',
  /** float [] entropy coefficient. */
  entCoef: 'ppo.ent_coef',
  /** float [] value-loss coefficient. */
  vfCoef: 'ppo.vf_coef',
  /** float [] multiplies the whole loss (MAML averages tasks with it). */
  lossScale: 'ppo.loss_scale',
  loss: 'ppo.loss',
  policyLoss: 'ppo.policy_loss',
  valueLoss: 'ppo.value_loss',
  entropy: 'ppo.entropy',
  /** float [M, S] log r_t = log π_new(a_t) − log π_old(a_t). */
  logRatio: 'ppo.log_ratio',
} as const;

export interface PpoLossGraphOptions {
  /** Clip the value prediction around the old value (SB3's clip_range_vf); default false. */
  clipValue?: boolean;
}

/** Names of the non-parameter inputs of a loss graph, in feed order. */
export function ppoLossInputNames(arch: PolicyArchitecture, options: PpoLossGraphOptions = {}): string[] {
  const seq = arch.mode === 'sequential' ? ['prev_actions', 'h0', 'c0'] : [];
  return [
    'states',
    ...seq,
    PPO_IO.actions,
    PPO_IO.free,
    PPO_IO.oldLogits,
    PPO_IO.oldValues,
    PPO_IO.advantages,
    PPO_IO.returns,
    PPO_IO.policyWeight,
    PPO_IO.clipRange,
    ...(options.clipValue ? [PPO_IO.clipRangeVf] : []),
    PPO_IO.entCoef,
    PPO_IO.vfCoef,
    PPO_IO.lossScale,
  ];
}

/** The policy forward plus the PPO loss, parameters as initializers (the engine makes them trainable). */
export function buildPpoLossModel(
  archIn: PolicyArchitecture,
  params: readonly PolicyParameter[],
  options: PpoLossGraphOptions = {},
): OnnxModel {
  const a = resolveArchitecture(archIn);
  const { steps: S, decisions: A } = episodeLayout(a);
  const L = a.numLevels;
  const b = new GraphBuilder({ name: `rlpkd_policy_${a.mode}_ppo_loss` });
  const inputs = declareSequenceInputs(b, a);
  const f = DataType.FLOAT;
  const actions = b.input(PPO_IO.actions, f, ['episodes', L]);
  const free = b.input(PPO_IO.free, f, ['episodes', L]);
  const oldLogits = b.input(PPO_IO.oldLogits, f, ['episodes', L]);
  const oldValues = b.input(PPO_IO.oldValues, f, ['episodes', S]);
  const adv = b.input(PPO_IO.advantages, f, ['episodes', S]);
  const returns = b.input(PPO_IO.returns, f, ['episodes', S]);
  const weight = b.input(PPO_IO.policyWeight, f, ['episodes', S]);
  const eps = b.input(PPO_IO.clipRange, f, []);
  const epsVf = options.clipValue ? b.input(PPO_IO.clipRangeVf, f, []) : undefined;
  const entCoef = b.input(PPO_IO.entCoef, f, []);
  const vfCoef = b.input(PPO_IO.vfCoef, f, []);
  const scale = b.input(PPO_IO.lossScale, f, []);
  const p = emitPolicyParameters(b, params, 'initializers');
  const seq = emitPolicySequence(b, a, p, inputs);

  const one = b.constFloat(1, [], 'ppo/one');
  const two = b.constFloat(2, [], 'ppo/two');
  const stepShape = b.constInt64([-1, S, A], [3], 'ppo/step_shape');
  const axis2 = b.constInt64([2], [1], 'ppo/axis2');
  const sumDecisions = (x: string, name: string): string =>
    b.op('ReduceSum', [b.op('Reshape', [x, stepShape]), axis2], { keepdims: 0 }, { name });
  // log π(a | z) per free decision: −softplus((1 − 2a)·z), zero where the decision was fixed.
  const sign = b.op('Sub', [one, b.op('Mul', [two, actions])], {}, { name: 'ppo/sign' });
  const logProb = (z: string, tag: string): string =>
    b.op(
      'Mul',
      [b.op('Neg', [b.op('Softplus', [b.op('Mul', [sign, z], {}, { name: `ppo/${tag}_signed` })])]), free],
      {},
      { name: `ppo/${tag}_logp` },
    );
  const newLp = sumDecisions(logProb(seq.logits, 'new'), 'ppo/new_step_logp');
  const oldLp = sumDecisions(logProb(oldLogits, 'old'), 'ppo/old_step_logp');
  const logRatio = b.op('Sub', [newLp, oldLp], {}, { name: 'ppo/log_ratio', outputs: [PPO_IO.logRatio] });
  const ratio = b.op('Exp', [logRatio], {}, { name: 'ppo/ratio' });
  const lo = b.op('Sub', [one, eps], {}, { name: 'ppo/ratio_lo' });
  const hi = b.op('Add', [one, eps], {}, { name: 'ppo/ratio_hi' });
  const surr1 = b.op('Mul', [adv, ratio], {}, { name: 'ppo/surr1' });
  const surr2 = b.op(
    'Mul',
    [adv, b.op('Clip', [ratio, lo, hi], {}, { name: 'ppo/ratio_clip' })],
    {},
    { name: 'ppo/surr2' },
  );
  const surrogate = b.op('Min', [surr1, surr2], {}, { name: 'ppo/surrogate' });
  const policyLoss = b.op(
    'Neg',
    [
      b.op(
        'ReduceSum',
        [b.op('Mul', [surrogate, weight])],
        { keepdims: 0 },
        { name: 'ppo/weighted_surrogate' },
      ),
    ],
    {},
    { name: 'ppo/policy_loss', outputs: [PPO_IO.policyLoss] },
  );
  // Entropy of Bernoulli(sigmoid(z)): softplus(z) − z·sigmoid(z), per free decision.
  const z = seq.logits;
  const decEntropy = b.op(
    'Mul',
    [
      b.op(
        'Sub',
        [b.op('Softplus', [z], {}, { name: 'ppo/ent_softplus' }), b.op('Mul', [z, b.op('Sigmoid', [z])])],
        {},
        {
          name: 'ppo/ent_decision',
        },
      ),
      free,
    ],
    {},
    { name: 'ppo/ent_free' },
  );
  const entropy = b.op(
    'ReduceSum',
    [b.op('Mul', [sumDecisions(decEntropy, 'ppo/step_entropy'), weight])],
    { keepdims: 0 },
    { name: 'ppo/entropy', outputs: [PPO_IO.entropy] },
  );
  let vPred = seq.values;
  if (epsVf) {
    const delta = b.op('Sub', [seq.values, oldValues], {}, { name: 'ppo/value_delta' });
    const negEps = b.op('Neg', [epsVf], {}, { name: 'ppo/vf_lo' });
    vPred = b.op(
      'Add',
      [oldValues, b.op('Clip', [delta, negEps, epsVf], {}, { name: 'ppo/value_clip' })],
      {},
      {
        name: 'ppo/value_clipped',
      },
    );
  }
  const verr = b.op('Sub', [returns, vPred], {}, { name: 'ppo/value_error' });
  const valueLoss = b.op(
    'ReduceMean',
    [b.op('Mul', [verr, verr])],
    { keepdims: 0 },
    {
      name: 'ppo/value_loss',
      outputs: [PPO_IO.valueLoss],
    },
  );
  const total = b.op(
    'Add',
    [
      b.op('Sub', [policyLoss, b.op('Mul', [entCoef, entropy])], {}, { name: 'ppo/pg_minus_entropy' }),
      b.op('Mul', [vfCoef, valueLoss], {}, { name: 'ppo/weighted_value_loss' }),
    ],
    {},
    { name: 'ppo/total' },
  );
  b.op('Mul', [total, scale], {}, { name: 'ppo/loss', outputs: [PPO_IO.loss] });
  b.output(PPO_IO.loss, f, []);
  b.output(PPO_IO.policyLoss, f, []);
  b.output(PPO_IO.valueLoss, f, []);
  b.output(PPO_IO.entropy, f, []);
  b.output(PPO_IO.logRatio, f, ['episodes', S]);
  return b.build();
}
