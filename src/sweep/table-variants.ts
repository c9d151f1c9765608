/**
 * The branch variants `rlpkd ablate --tables` adds for the component ablation (Table 4) and the gradient
 * ablation (Table 5): each is the rl branch or the uniform (all-level) branch with a few config keys
 * changed. A variant is written after the method's name with '@' (`rl@lambda0`, `P2+P3+P4+P5@clip`), which
 * keeps job ids file-name and queue safe. A variant whose config equals its base method's (say the user's
 * config already has `rl.policy.mode: independent`) runs no job of its own: the tables read the base job.
 */
import type { RunConfig } from '../config/schema';

/** The variants (see module doc). */
export const TABLE_VARIANTS = [
  'independent',
  'lambda0',
  'no-gradnorm',
  'baseline',
  'clip',
  'clip+gradnorm',
] as const;
export type TableVariant = (typeof TABLE_VARIANTS)[number];

/** Which base method a variant modifies. */
export const VARIANT_BASE: Record<TableVariant, 'rl' | 'uniform'> = {
  independent: 'rl',
  lambda0: 'rl',
  'no-gradnorm': 'rl',
  baseline: 'uniform',
  clip: 'uniform',
  'clip+gradnorm': 'uniform',
};

/** What each variant changes, as the tables say it. */
export const VARIANT_CHANGES: Record<TableVariant, string> = {
  independent: 'rl.policy.mode=independent',
  lambda0: 'rl.environment.lambda_tradeoff=0',
  'no-gradnorm': 'gradnorm.enabled=false',
  baseline: 'gradnorm.enabled=false, distill.grad_clip=null',
  clip: 'gradnorm.enabled=false, distill.grad_clip=c',
  'clip+gradnorm': 'gradnorm.enabled=true, distill.grad_clip=c',
};

/** Whether the variant clips the student gradient at the ablation's clip value c. */
export function variantClips(v: TableVariant): boolean {
  return v === 'clip' || v === 'clip+gradnorm';
}

/**
 * Applies `variant` to a branch config in place. `clip` is c, the clipping norm of the clipping variants
 * (the config's distill.grad_clip, or the one measured from phase 1: ablation-job.ts).
 */
export function applyVariant(c: RunConfig, variant: TableVariant, clip: number | null): void {
  switch (variant) {
    case 'independent':
      c.rl.policy.mode = 'independent';
      // One decision for every level at once; an explicit sequential step count would not fit.
      c.rl.environment.max_steps = 'auto';
      return;
    case 'lambda0':
      c.rl.environment.lambda_tradeoff = 0;
      return;
    case 'no-gradnorm':
      c.gradnorm.enabled = false;
      return;
    case 'baseline':
      c.gradnorm.enabled = false;
      c.distill.grad_clip = null;
      return;
    case 'clip':
      c.gradnorm.enabled = false;
      c.distill.grad_clip = clip;
      return;
    case 'clip+gradnorm':
      c.gradnorm.enabled = true;
      c.distill.grad_clip = clip;
      return;
  }
}

/** `method@variant`. */
export function variantMethodName(base: string, variant: TableVariant): string {
  return `${base}@${variant}`;
}
