/**
 * The quality term of the level-selection reward, from one image's yardstick before and after the update
 * (rl.reward.quality):
 * - 'relative' (SPEC.md): (L_before − L_after) / L_before, the update's relative gain on the image;
 * - 'share': (L_before − L_after) / (L_before − L_after,all), the share of the gain an all-level update of
 *   the same image achieves (one more trial update per image). It takes out how much an image can improve
 *   at all, so the reward says which levels carry the image's gain rather than which images gain most: on
 *   the demo small-object scenes gain ~10× less than large ones from any subset, which under 'relative'
 *   makes fine levels worth least exactly where the objects live on them. Clipped to [−SHARE_LIMIT,
 *   SHARE_LIMIT]; an image whose all-level gain is at most SHARE_MIN_GAIN·L_before (nothing to share) scores 0
 *   for every selection, leaving the choice to the efficiency term.
 */

import { RlpkdError } from '../errors';

/** How the quality term is measured (see module doc). */
export type RewardQuality = 'relative' | 'share';

/** The quality modes, in the order the config lists them. */
export const REWARD_QUALITIES: readonly RewardQuality[] = ['relative', 'share'];

/** Bound of the 'share' quality term. */
export const SHARE_LIMIT = 2;
/** All-level relative gain at or below which an image has no gain to share. */
export const SHARE_MIN_GAIN = 1e-4;

/**
 * The quality term of one image (see module doc); `afterAll` (the yardstick after an all-level update of the
 * same image) is needed by 'share' only.
 */
export function qualityTerm(mode: RewardQuality, before: number, after: number, afterAll?: number): number {
  if (!(before > 0)) return 0;
  if (mode === 'relative') return (before - after) / before;
  if (afterAll === undefined)
    throw new RlpkdError("internal: the 'share' quality term needs the all-level update");
  const all = before - afterAll;
  if (!(all > SHARE_MIN_GAIN * before)) return 0;
  return Math.max(-SHARE_LIMIT, Math.min(SHARE_LIMIT, (before - after) / all));
}
