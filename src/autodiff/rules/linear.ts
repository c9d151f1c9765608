import type { GradientRuleEntry } from '../types';

/** Gradient rules for the linear op family (filled in by its owner). */
export const rules: GradientRuleEntry[] = [];
