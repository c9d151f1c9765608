/**
 * The run configs of an ablation's jobs, derived from the one the user gave: the seed (run.seed + k), the
 * phase-1 run (rl selection, so phase 1 distils every level; optimizer state kept so branches resume
 * it), and per method the branch's selection. Fixed and random branches train in phase 3 on the rl run's
 * image schedule (`phases.joint.schedule: episodes`), so every method gets the same student updates on
 * the same images. `--quick` shortens the phases for smoke use.
 */
import type { RunConfig } from '../config/schema';
import { RlpkdError } from '../errors';
import type { AblationMethod } from './ablation-plan';
import { applyVariant } from './table-variants';

/** Epoch caps of `--quick` (phases 1–4). */
export const QUICK_EPOCHS = { pretrain: 3, policy: 4, joint: 2, meta: 1 } as const;

/** The config with every phase's epochs capped at QUICK_EPOCHS. */
export function quickConfig(base: RunConfig): RunConfig {
  const c = structuredClone(base);
  for (const k of Object.keys(QUICK_EPOCHS) as (keyof typeof QUICK_EPOCHS)[]) {
    c.phases[k].epochs = Math.min(c.phases[k].epochs, QUICK_EPOCHS[k]);
  }
  return c;
}

/** The config of seed `seed`'s phase-1 run. */
export function phaseOneConfig(base: RunConfig, seed: number): RunConfig {
  const c = structuredClone(base);
  c.run.seed = seed;
  c.run.name = `ablate-s${seed}-phase1`;
  c.distill.selection = 'rl';
  c.checkpoint.optimizer_state = 'always';
  return c;
}

/**
 * The config of a branch: the method's selection (and variant, at clipping norm `clip`); random at
 * `randomCost` (the rl branch's measured mean cost of the same seed).
 */
export function branchConfig(
  base: RunConfig,
  seed: number,
  method: AblationMethod,
  randomCost?: number,
  clip: number | null = null,
): RunConfig {
  if (method.kind === 'nas') throw new RlpkdError('internal: a NAS search job is not a training branch');
  const c = structuredClone(base);
  c.run.seed = seed;
  c.checkpoint.optimizer_state = 'except_final';
  if (method.kind !== 'random' && method.variant) applyVariant(c, method.variant, clip);
  if (method.kind === 'rl') {
    c.distill.selection = 'rl';
    return c;
  }
  c.phases.joint.schedule = 'episodes';
  if (method.kind === 'fixed') c.distill.selection = [...method.levels];
  else {
    if (randomCost === undefined) throw new RlpkdError('internal: the random branch needs the rl cost');
    c.distill.selection = 'random';
    c.distill.random_cost = randomCost;
  }
  return c;
}
