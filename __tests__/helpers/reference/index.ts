/**
 * The float64 reference interpreter of ONNX graphs used by the gradient checks: one op table per family
 * (mirroring src/autodiff/rules/), combined here.
 */
import { ops as activation } from './activation';
import { ops as conv } from './conv';
import { ops as elementwise } from './elementwise';
import { ops as linear } from './linear';
import { ops as normalization } from './normalization';
import { ops as pool } from './pool';
import { ops as reduction } from './reduction';
import { ops as resize } from './resize';
import { ops as shapeOps } from './shape-ops';
import type { OnnxModel } from '../../../src/onnx';
import type { HostTensor } from '../../../src/runtime';
import { interpret } from './interpreter';
import type { RefOpTable, RefTensor } from './tensor';

/** Family name → its reference op table. */
export const REFERENCE_FAMILIES: Readonly<Record<string, RefOpTable>> = {
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

/** Every reference op by type. */
export const REFERENCE_OPS: RefOpTable = Object.assign(
  {},
  ...Object.values(REFERENCE_FAMILIES),
) as RefOpTable;

/**
 * Evaluates every node of `model` in float64 and returns all tensors by name. `feeds` give the graph
 * inputs and may also override initializers (how finite differences perturb a parameter).
 */
export function runReference(
  model: OnnxModel,
  feeds: Record<string, RefTensor | HostTensor>,
  ops: RefOpTable = REFERENCE_OPS,
): Map<string, RefTensor> {
  return interpret(model, feeds, ops);
}

export * from './tensor';
