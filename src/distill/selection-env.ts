/**
 * The level-selection environment of a run: the RL core's ParallelDistillationEnv (phase-2 semantics: the
 * trial update is measured and rolled back) over the run's StudentDistiller, with the run's decision order,
 * costs, budget and λ. The distiller's trial starts from a fresh optimizer state, so each trial update is
 * the first step of the student's optimizer and its effect on an image reflects the levels selected now.
 * (With the running moments a single step is mostly the momentum of past batches: measured on the demo,
 * every level subset then changed the loss by about the same amount.) Environments are cheap (no
 * sessions): they only hold the MDP.
 */
import { ParallelDistillationEnv, type ImageBatchSource } from '../rl/distillation-env';
import type { Distiller } from '../rl/distiller';
import type { DistillSetup } from './setup';

/** What varies between the environments of a run. */
export interface SelectionEnvOptions {
  images: ImageBatchSource;
  seed: string;
  /** Level weights of the trial update, level order (default uniform). */
  weights?: readonly number[];
  /** Divides the state's loss feature (default: the first batch's mean loss). */
  lossReference?: number;
  lambda?: number;
  budget?: number | [number, number];
  numEnvs?: number;
  /** Consecutive episodes per image (phase 2's rl.ppo.group_size; default 1). */
  episodesPerImage?: number;
}

/** Level costs in the decision order. */
export function decisionCosts(setup: DistillSetup): number[] {
  return setup.decisionOrder.map((n) => setup.costs[setup.levelNames.indexOf(n)]);
}

/** Creates the environment (see module doc). */
export function createSelectionEnv(
  setup: DistillSetup,
  distiller: Distiller,
  options: SelectionEnvOptions,
): ParallelDistillationEnv {
  const c = setup.config;
  const L = setup.levelNames.length;
  return new ParallelDistillationEnv({
    distiller,
    images: options.images,
    numEnvs: options.numEnvs ?? c.rl.environment.num_parallel_envs,
    actionMode: c.rl.policy.mode,
    phase: 2,
    budget: options.budget ?? c.rl.environment.budget,
    lambdaTradeoff: options.lambda ?? c.rl.environment.lambda_tradeoff,
    quality: c.rl.reward.quality,
    levelOrder: setup.decisionOrder,
    costs: decisionCosts(setup),
    levelWeights: options.weights ?? new Array<number>(L).fill(1 / L),
    ...(options.lossReference !== undefined ? { lossReference: options.lossReference } : {}),
    stateKind: c.rl.policy.state,
    ...(setup.stateSources ? { stateSources: setup.stateSources } : {}),
    seed: options.seed,
    ...(options.episodesPerImage ? { episodesPerImage: options.episodesPerImage } : {}),
  });
}
