/** Every shape rule, by default-domain op type. */
import { rules as constantOps } from './constant-ops';
import { rules as convPool } from './conv-pool';
import { rules as elementwise } from './elementwise';
import { rules as linear } from './linear';
import { rules as reduce } from './reduce';
import { rules as resize } from './resize';
import { rules as tensorOps } from './tensor-ops';
import type { ShapeRule } from './types';

/** Op type → shape rule (ai.onnx domain). Ops missing here get undefined shapes. */
export const SHAPE_RULES: ReadonlyMap<string, ShapeRule> = new Map(
  Object.entries({
    ...constantOps,
    ...convPool,
    ...elementwise,
    ...linear,
    ...reduce,
    ...resize,
    ...tensorOps,
  }),
);

export type { Inferred, InferContext, Scalar, ShapeRule } from './types';
