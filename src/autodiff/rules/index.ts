/**
 * Every gradient rule, registered by op type. A test checks that each file in this folder is listed here,
 * so a new rule file cannot be forgotten.
 */
import type { GradientRuleEntry } from '../types';
import { rules as activation } from './activation';
import { rules as conv } from './conv';
import { rules as elementwise } from './elementwise';
import { rules as linear } from './linear';
import { rules as normalization } from './normalization';
import { rules as pool } from './pool';
import { rules as reduction } from './reduction';
import { rules as resize } from './resize';
import { rules as shapeOps } from './shape-ops';

export const RULE_FILES: Record<string, readonly GradientRuleEntry[]> = {
  activation,
  conv,
  elementwise,
  linear,
  normalization,
  pool,
  reduction,
  resize,
  'shape-ops': shapeOps,
};

/** Op type → rule. */
export const GRADIENT_RULES: ReadonlyMap<string, GradientRuleEntry> = new Map(
  Object.values(RULE_FILES).flatMap((entries) => entries.map((e) => [e.opType, e] as const)),
);
