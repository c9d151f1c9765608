/**
 * The shared parameter W at which GradNorm measures each level's gradient norm. The paper takes "the last
 * shared layer" because W must be a tensor every task's loss flows through, and the one nearest the outputs
 * is the cheapest to reach. Rule used here, on the student graph:
 *   1. candidates = trainable parameters that every level output depends on (graph ancestry);
 *   2. W = the candidate read by the node latest in topological order (nearest the outputs);
 *   3. a tie (the weight and bias of one Conv) goes to the tensor with more elements, then the name.
 * On a torchvision ResNet-FPN this is the top lateral conv `fpn.inner_blocks.3.0.weight`: P5 reads it
 * directly and the top-down path carries it into P4..P2. A configured name overrides the rule but must
 * still feed every level.
 */
import { RlpkdError } from '../errors';
import { nodeReads, producerMap, topologicalSort } from '../onnx/graph-structure';
import type { OnnxModel } from '../onnx/types';

/** The chosen W and why. */
export interface SharedParameterChoice {
  name: string;
  /** 'auto' (the rule) or 'configured' (named by the user). */
  how: 'auto' | 'configured';
  /** Every trainable parameter all levels depend on, nearest the outputs first. */
  candidates: string[];
}

/** Trainable parameters each output depends on. */
function parameterAncestors(model: OnnxModel, output: string, trainable: ReadonlySet<string>): Set<string> {
  const producer = producerMap(model.graph);
  const found = new Set<string>();
  const seen = new Set<string>();
  const stack = [output];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (trainable.has(t)) found.add(t);
    const p = producer.get(t);
    if (p) for (const r of nodeReads(p)) stack.push(r);
  }
  return found;
}

function elementCount(model: OnnxModel, name: string): number {
  const init = model.graph.initializers.find((t) => t.name === name);
  if (init) return init.dims.reduce((a, b) => a * b, 1);
  const input = model.graph.inputs.find((v) => v.name === name);
  return (input?.shape ?? []).reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);
}

/**
 * Picks W for `levelOutputs` of `model` among `trainable` (see module doc); `requested` ('auto' or absent:
 * the rule) names it explicitly.
 */
export function findSharedParameter(
  model: OnnxModel,
  levelOutputs: readonly string[],
  trainable: readonly string[],
  requested?: string,
): SharedParameterChoice {
  if (levelOutputs.length === 0)
    throw new RlpkdError('GradNorm: no level outputs to find a shared parameter for');
  const trainableSet = new Set(trainable);
  const perLevel = levelOutputs.map((o) => parameterAncestors(model, o, trainableSet));
  const shared = [...perLevel[0]].filter((p) => perLevel.every((s) => s.has(p)));
  const sharedSet = new Set(shared);
  const position = new Map<string, number>();
  topologicalSort(model.graph).forEach((node, i) => {
    for (const r of node.inputs) if (sharedSet.has(r)) position.set(r, i);
  });
  const candidates = [...shared].sort(
    (a, b) =>
      (position.get(b) ?? -1) - (position.get(a) ?? -1) ||
      elementCount(model, b) - elementCount(model, a) ||
      (a < b ? -1 : 1),
  );
  if (requested !== undefined && requested !== 'auto') {
    if (!trainableSet.has(requested)) {
      throw new RlpkdError(
        `gradnorm.shared_parameter '${requested}' is not a trainable parameter of graph '${model.graph.name}'`,
        {
          hint: candidates.length
            ? `parameters every level depends on, nearest the outputs first: ${candidates.slice(0, 5).join(', ')}`
            : '`rlpkd inspect` lists the parameters',
        },
      );
    }
    const missing = levelOutputs.filter((_, i) => !perLevel[i].has(requested));
    if (missing.length) {
      throw new RlpkdError(
        `gradnorm.shared_parameter '${requested}' does not feed the level output(s) ${missing.join(', ')}, so their gradient norm there is zero`,
        { hint: `choose a parameter every level depends on, e.g. ${candidates[0] ?? 'one of the backbone'}` },
      );
    }
    return { name: requested, how: 'configured', candidates };
  }
  if (candidates.length === 0) {
    throw new RlpkdError(
      `no trainable parameter of graph '${model.graph.name}' feeds every level (${levelOutputs.join(', ')}), so GradNorm has no shared parameter`,
      { hint: 'name one with gradnorm.shared_parameter, or disable GradNorm (gradnorm.enabled: false)' },
    );
  }
  return { name: candidates[0], how: 'auto', candidates };
}
