/**
 * The trunk tensors the 'deploy' policy state pools (policy-state.ts): what every image computes before
 * the policy decides. The student is split as the browser bundle splits it (`splitPyramid`): the trunk
 * two or more levels share, then one skippable part per level. The state pools the trunk tensors the
 * parts read (the boundary), so the decision costs only pooling on top of the trunk.
 */
import { RlpkdError } from '../errors';
import { splitPyramid } from '../onnx/level-pruning';
import { inferAtSize, type InputSize } from '../analysis/pyramid';
import type { OnnxModel } from '../onnx/types';
import type { StateLevel } from './policy-state';

/** A level of the student: its name and graph output. */
export interface DeployLevel {
  name: string;
  output: string;
}

/**
 * The trunk tensors the level parts read, in `levels` order (each once, first reader wins; a level
 * output the trunk computes itself counts as read by its level), with channels and stride at `size`.
 */
export function deployStateSources(
  student: OnnxModel,
  levels: readonly DeployLevel[],
  size: InputSize,
): StateLevel[] {
  if (levels.length < 2) {
    throw new RlpkdError(
      `deploy policy state: the student has ${levels.length} pyramid level(s); the state pools the trunk that levels share`,
      { hint: 'use rl.policy.state: train for a single-level student' },
    );
  }
  const split = splitPyramid(
    student,
    levels.map((l) => l.output),
  );
  const boundary = new Set(split.boundary);
  const info = inferAtSize(student, size);
  const byOutput = new Map(split.parts.map((p) => [p.output, p]));
  const seen = new Set<string>();
  const sources: StateLevel[] = [];
  for (const level of levels) {
    const part = byOutput.get(level.output)!;
    const reads = boundary.has(level.output) ? [level.output] : part.inputs.filter((i) => boundary.has(i));
    for (const name of reads) {
      if (seen.has(name)) continue;
      seen.add(name);
      const shape = info.get(name)?.shape;
      if (!shape || shape.length !== 4 || shape.slice(1).some((d) => typeof d !== 'number')) {
        throw new RlpkdError(
          `deploy policy state: trunk tensor '${name}' of '${student.graph.name}' is not a [N, C, H, W] feature map at ${size.height}×${size.width}`,
          { hint: 'the deploy state pools feature maps; use rl.policy.state: train for this student' },
        );
      }
      const [, channels, height] = shape as [unknown, number, number, number];
      sources.push({ name, channels, stride: Math.round(size.height / height) });
    }
  }
  return sources;
}
