/**
 * The level-selection environment of a run: the RL core's ParallelDistillationEnv (phase-2 semantics: the
 * trial update is measured and rolled back) on the run's teacher, student, levels, decision order, costs,
 * budget, λ and student optimizer. Its student gets the given parameters with a fresh optimizer state, so
 * each trial update is the first step of the student's optimizer and its effect on an image reflects the
 * levels selected now. (With the running Adam moments a single step is mostly the momentum of past
 * batches: measured on the demo, every level subset then changed the loss by about the same amount.)
 */
import { ParallelDistillationEnv, type ImageBatchSource } from '../rl/distillation-env';
import type { HostTensor } from '../runtime/tensors';
import type { OptimizerConfig } from '../training/optimizers';
import type { DistillSetup } from './setup';

/** What varies between the environments of a run. */
export interface SelectionEnvOptions {
  images: ImageBatchSource;
  seed: string;
  /** Student parameters (the trainer's current ones). */
  parameters: Record<string, HostTensor>;
  /** Level weights of the trial update, level order (default uniform). */
  weights?: readonly number[];
  /** Divides the state's loss feature (default: the first batch's mean loss). */
  lossReference?: number;
  lambda?: number;
  budget?: number | [number, number];
  numEnvs?: number;
}

/** The student optimizer of a run config as the engine's OptimizerConfig. */
export function studentOptimizer(setup: DistillSetup): OptimizerConfig {
  const o = setup.config.distill.optimizer;
  return o.type === 'adamw'
    ? { type: 'adamw', lr: o.lr, weightDecay: o.weight_decay, betas: o.betas, eps: o.eps }
    : { type: 'sgd', lr: o.lr, momentum: o.momentum, weightDecay: o.weight_decay };
}

/** Level costs in the decision order. */
export function decisionCosts(setup: DistillSetup): number[] {
  return setup.decisionOrder.map((n) => setup.costs[setup.levelNames.indexOf(n)]);
}

/** Creates the environment (see module doc). */
export async function createSelectionEnv(
  setup: DistillSetup,
  options: SelectionEnvOptions,
): Promise<ParallelDistillationEnv> {
  const c = setup.config;
  const L = setup.levelNames.length;
  const weights = options.weights ?? new Array<number>(L).fill(1 / L);
  const env = await ParallelDistillationEnv.create({
    teacher: setup.teacher,
    teacherSession: setup.teacherSession,
    student: setup.student,
    images: options.images,
    numEnvs: options.numEnvs ?? c.rl.environment.num_parallel_envs,
    actionMode: c.rl.policy.mode,
    phase: 2,
    budget: options.budget ?? c.rl.environment.budget,
    lambdaTradeoff: options.lambda ?? c.rl.environment.lambda_tradeoff,
    levelOrder: setup.decisionOrder,
    costs: decisionCosts(setup),
    inputSize: setup.size,
    optimizer: studentOptimizer(setup),
    ...(c.distill.grad_clip !== null ? { maxGradNorm: c.distill.grad_clip } : {}),
    loss: c.distill.loss,
    cwdTau: c.distill.cwd_tau,
    levelWeights: setup.decisionOrder.map((n) => weights[setup.levelNames.indexOf(n)]),
    ...(options.lossReference !== undefined ? { lossReference: options.lossReference } : {}),
    trainable: setup.trainable,
    executionProvider: setup.ep,
    seed: options.seed,
  });
  await env.session.loadParameters(options.parameters);
  return env;
}
