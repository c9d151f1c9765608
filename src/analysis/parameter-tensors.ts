/**
 * The values of a model's trainable parameters, under the names training uses: after untying shared
 * parameter initializers (so every PyTorch parameter that torch.onnx.export merged into one stored tensor
 * comes back under its own name), classified by `classifyParameters`. What `rlpkd export-weights` writes.
 */
import { RlpkdError } from '../errors';
import type { OnnxModel, OnnxTensor } from '../onnx/types';
import { classifyParameters, type ParameterClassification, type ParameterPatterns } from './parameters';

/** Trainable parameter tensors (in initializer order) and the classification they come from. */
export interface ParameterTensors {
  tensors: OnnxTensor[];
  classification: ParameterClassification;
}

/**
 * Every trainable parameter of `model` with its value (shared initializers untied first, as training
 * does). Throws when a parameter's data is not in the model (external data that was not loaded).
 */
export function trainableParameterTensors(
  model: OnnxModel,
  patterns: ParameterPatterns = {},
): ParameterTensors {
  const classification = classifyParameters(model, { ...patterns, untie: true });
  const byName = new Map(classification.model.graph.initializers.map((t) => [t.name, t]));
  const tensors = classification.trainable.map((e) => {
    const t = byName.get(e.name)!;
    const expected = e.elements;
    if (t.data.length !== expected) {
      throw new RlpkdError(
        `parameter '${e.name}' of graph '${model.graph.name}' holds ${t.data.length} values, its shape [${e.dims.join(', ')}] needs ${expected}`,
        {
          hint: 'load the model with its external data file beside it (loadModel reads it from the same folder)',
        },
      );
    }
    return t;
  });
  return { tensors, classification };
}
