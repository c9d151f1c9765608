/**
 * The one metric an ablation compares methods by, from `evaluateRun`'s output: the primary task metric of
 * the distilled student through the teacher's head when the evaluation has one (a `task` object with
 * `metric` and `studentAfter`), else the held-out all-level distillation loss (lower is better).
 */
import type { TrainSummary } from '../distill/evaluation';

/** The compared metric of one run. */
export interface AblationMetric {
  /** e.g. 'AP' or 'held-out distillation loss (mse)'. */
  name: string;
  value: number;
  higherIsBetter: boolean;
  source: 'task' | 'loss';
}

/** A number, or an object holding one under `value` (how a task score may be reported). */
function numberIn(x: unknown): number | undefined {
  if (typeof x === 'number' && Number.isFinite(x)) return x;
  if (x && typeof x === 'object' && 'value' in x) return numberIn((x as { value: unknown }).value);
  return undefined;
}

/** Picks the metric from an evaluation (see module doc). */
export function ablationMetric(evaluation: { summary: TrainSummary; task?: unknown }): AblationMetric {
  const task = evaluation.task as { metric?: unknown; studentAfter?: unknown } | undefined;
  const value = task ? numberIn(task.studentAfter) : undefined;
  if (task && value !== undefined) {
    return {
      name: typeof task.metric === 'string' ? task.metric : 'task metric',
      value,
      higherIsBetter: true,
      source: 'task',
    };
  }
  return {
    name: `held-out distillation loss (${evaluation.summary.lossKind})`,
    value: evaluation.summary.lossAfter,
    higherIsBetter: false,
    source: 'loss',
  };
}
