import type { GradientRuleEntry } from '../types';

/** Gradient rules for the shape-ops op family (filled in by its owner). */
export const rules: GradientRuleEntry[] = [];
