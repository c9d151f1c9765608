/** The pyramid levels of a backbone, described the way a head consumes them. */
import { RlpkdError } from '../errors';
import { findPyramidLevels, type InputSize } from '../analysis/pyramid';
import type { OnnxModel } from '../onnx/types';
import type { HeadLevel } from './types';

/**
 * The backbone's pyramid outputs at `size` as head levels (named by the output, so the head's inputs
 * match the backbone's outputs), finest first; `select` keeps the listed ones, by output name or level
 * name (`p3` or `P3`).
 */
export function headLevelsOf(backbone: OnnxModel, size: InputSize, select?: readonly string[]): HeadLevel[] {
  const all = findPyramidLevels(backbone, size);
  const levels = all.map((l) => ({
    name: l.output,
    level: l.name,
    channels: l.channels,
    stride: l.stride,
    height: l.height,
    width: l.width,
  }));
  if (!select) return levels.map(({ level: _level, ...l }) => l);
  const wanted = select.map((s) => {
    const found = levels.find((l) => l.name === s || l.level.toLowerCase() === s.toLowerCase());
    if (!found) {
      const have = levels.map((l) => `${l.name} (${l.level})`).join(', ');
      throw new RlpkdError(
        `backbone '${backbone.graph.name}' has no pyramid level '${s}' (levels: ${have})`,
        {
          hint: 'name levels by output (p3) or pyramid level (P3)',
        },
      );
    }
    return found;
  });
  return wanted.sort((a, b) => a.stride - b.stride).map(({ level: _level, ...l }) => l);
}
