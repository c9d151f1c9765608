/**
 * Raising a gradient graph's default-domain opset when a rule needs a newer op form (ScatterElements with
 * reduction='add' needs 16). Between opsets 13 and 17 every op keeps its meaning except the few listed
 * here, so the raise is safe when none of them is present.
 */
import { GraphError } from '../errors';
import type { OnnxModel, OnnxNode } from '../onnx/types';

/** The lowest and highest default-domain opsets the driver accepts. */
export const MIN_OPSET = 13;
export const MAX_OPSET = 18;

/**
 * Why a node would change meaning if the opset were raised from `from` to `to`, or undefined when it would
 * not. Checked against the ONNX operator changelog for versions 14–17.
 */
export function upgradeConflict(node: OnnxNode, from: number, to: number): string | undefined {
  const crosses = (v: number): boolean => from < v && to >= v;
  if (node.opType === 'RoiAlign' && crosses(16)) {
    return "RoiAlign's default coordinate_transformation_mode changed in opset 16";
  }
  if (
    node.opType === 'BatchNormalization' &&
    crosses(14) &&
    node.outputs.filter((o) => o !== '').length > 1
  ) {
    return 'BatchNormalization with training outputs changed its outputs in opset 14';
  }
  return undefined;
}

/** Raises the default-domain opset import of `model` in place, or throws naming the blocking node. */
export function raiseOpset(model: OnnxModel, to: number, why: string): void {
  const imp = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (!imp || imp.version >= to) return;
  for (const n of model.graph.nodes) {
    const conflict = upgradeConflict(n, imp.version, to);
    if (conflict) {
      throw new GraphError(
        `the gradient graph needs opset ${to} (${why}), but the model is opset ${imp.version} and ` +
          `${n.opType} '${n.name}' would change meaning: ${conflict}`,
        { hint: `re-export the model with opset ${to} or newer` },
      );
    }
  }
  imp.version = to;
}
