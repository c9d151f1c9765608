import type { GradientRuleEntry } from '../types';

/** Gradient rules for the pool op family (filled in by its owner). */
export const rules: GradientRuleEntry[] = [];
