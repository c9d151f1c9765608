/**
 * Training artifacts of a pruned student: the graph `pruneToLevels` keeps for a level selection, with the
 * loss restricted to those levels, made into artifacts by the autodiff like any model. Its gradients
 * equal the full graph's for the same levels' loss (the full graph with the other levels masked out), at
 * the cost of only the selected levels' forward and backward passes.
 */
import { GraphError } from '../errors';
import { pruneToLevels, type LevelRef } from '../onnx/level-pruning';
import type { OnnxModel } from '../onnx/types';
import { generateArtifacts, type ArtifactOptions, type TrainingArtifacts } from './artifacts';
import type { LossSpec } from './losses';

/**
 * Artifacts for training only `levels` of `model`: the pruned graph's artifacts, its loss restricted to
 * the selected levels (distillation levels, regression outputs), an explicit trainable list restricted to
 * the parameters the pruned graph still reads. Parameter and input names stay those of the full graph.
 */
export function generateLevelArtifacts(
  model: OnnxModel,
  levels: readonly LevelRef[],
  options: ArtifactOptions,
): TrainingArtifacts {
  const pruned = pruneToLevels(model, levels);
  const kept = new Set(pruned.graph.outputs.map((o) => o.name));
  const initializers = new Set(pruned.graph.initializers.map((t) => t.name));
  // Parameters the pruning dropped go; names the full graph lacks stay, for generateArtifacts to report.
  const trainable = options.trainable?.filter(
    (name) => initializers.has(name) || !model.graph.initializers.some((t) => t.name === name),
  );
  return generateArtifacts(pruned, {
    ...options,
    loss: restrictLoss(options.loss, kept, pruned.graph.name),
    ...(trainable ? { trainable } : {}),
  });
}

/** The loss over only the kept outputs; throws when it would read an output the pruning removed. */
function restrictLoss(loss: LossSpec, kept: ReadonlySet<string>, graph: string): LossSpec {
  const missing = (name: string, what: string): never => {
    throw new GraphError(
      `level artifacts: the ${what} '${name}' is not among the selected levels of '${graph}'`,
      {
        hint: `select the level that computes it (kept outputs: ${[...kept].join(', ')})`,
      },
    );
  };
  switch (loss.type) {
    case 'distillation': {
      const levels = loss.levels.filter((l) => kept.has(l.student));
      if (levels.length === 0) {
        throw new GraphError(`level artifacts: no distillation level of '${graph}' is selected`, {
          hint: `the loss pairs ${loss.levels.map((l) => l.student).join(', ')}; select one of them`,
        });
      }
      return { ...loss, levels };
    }
    case 'mse':
    case 'l1':
    case 'smoothL1': {
      if (!loss.outputs) return loss; // default: every output of the pruned graph
      const outputs = loss.outputs.filter((o) => kept.has(o));
      if (outputs.length === 0) missing(loss.outputs[0], 'regressed output');
      return { ...loss, outputs };
    }
    case 'crossEntropy':
      if (loss.logits !== undefined && !kept.has(loss.logits)) missing(loss.logits, 'logits output');
      return loss;
    case 'output':
      if (!kept.has(loss.output)) missing(loss.output, 'loss output');
      return loss;
  }
}
