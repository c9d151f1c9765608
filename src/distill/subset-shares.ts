/**
 * The cost model's predicted share of the all-levels distillation step for each level subset of a run
 * (src/analysis/subset-work.ts), on the student as trained (adapters included) at the run's input size:
 * what the run's measured per-subset step times are set beside.
 */
import type { PyramidLevel } from '../analysis/pyramid';
import { inferAtSize } from '../analysis/pyramid';
import { subsetWork } from '../analysis/subset-work';
import type { DistillSetup } from './setup';

/** A function giving each subset's predicted share (computed once per subset, on first request). */
export function subsetWorkShares(
  setup: Pick<DistillSetup, 'student' | 'size' | 'pairs'>,
): (levels: readonly string[]) => number {
  // Levels as the loss sees them: the adapted student tensors, with the teacher's channel counts.
  const levels: PyramidLevel[] = setup.pairs.map((p) => ({
    ...p.student,
    output: p.studentTensor,
    channels: p.teacher.channels,
  }));
  const shares = new Map<string, number>();
  let context: { info: ReturnType<typeof inferAtSize>; levels: PyramidLevel[]; total: number } | undefined;
  return (names) => {
    const key = names.join('+');
    const known = shares.get(key);
    if (known !== undefined) return known;
    if (!context) {
      const info = inferAtSize(setup.student, setup.size);
      const total = subsetWork(setup.student, setup.size, levels, { info, levels }).work;
      context = { info, levels, total };
    }
    const chosen = levels.filter((l) => names.includes(l.name));
    const share = subsetWork(setup.student, setup.size, chosen, context).work / context.total;
    shares.set(key, share);
    return share;
  };
}
