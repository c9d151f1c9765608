/**
 * The tape check tfjs does on every gradient: it must have the shape of the tensor it is the gradient of.
 * Here it runs once on the finished graph, by shape inference, wherever both shapes are known.
 */
import { GraphError } from '../errors';
import { inferShapes } from '../onnx/shape-inference';
import type { Dim, OnnxModel } from '../onnx/types';

/** A gradient tensor and the static shape of the tensor it differentiates. */
export interface ShapeExpectation {
  tensor: string;
  expected: readonly Dim[] | undefined;
  /** What the gradient is of, for the error: `Conv 'c1' input 1 ('W')`. */
  what: string;
}

/** True when two shapes are known to differ (ranks differ, or two static dims differ). */
export function shapesConflict(a: readonly Dim[], b: readonly Dim[]): boolean {
  if (a.length !== b.length) return true;
  return a.some((d, i) => typeof d === 'number' && typeof b[i] === 'number' && d !== b[i]);
}

/** Throws a GraphError for the first gradient whose inferred shape conflicts with its expected shape. */
export function checkGradientShapes(
  model: OnnxModel,
  inputShapes: Record<string, Dim[]> | undefined,
  expectations: readonly ShapeExpectation[],
): void {
  if (expectations.length === 0) return;
  const infos = inferShapes(model, inputShapes);
  for (const e of expectations) {
    const got = infos.get(e.tensor)?.shape;
    if (!got || !e.expected) continue;
    if (shapesConflict(got, e.expected)) {
      throw new GraphError(
        `the gradient of ${e.what} has shape [${got.join(', ')}], but the tensor has shape [${e.expected.join(', ')}]`,
        { hint: 'this is a bug in the gradient rule of that op; please report it with the model' },
      );
    }
  }
}
