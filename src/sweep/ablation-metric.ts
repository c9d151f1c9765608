/**
 * The one metric an ablation compares methods by, from `evaluateRun`'s output: the primary task metric of
 * the distilled student through the teacher's head when the evaluation has one (a `task` object with
 * `metric` and `studentAfter`), else the held-out all-level distillation loss (lower is better).
 */
import type { TrainSummary } from '../distill/evaluation';
import type { TaskSummary } from '../eval/checkpoint-evaluation';

/** The compared metric of one run. */
export interface AblationMetric {
  /** e.g. 'AP' or 'held-out distillation loss (mse)'. */
  name: string;
  value: number;
  higherIsBetter: boolean;
  source: 'task' | 'loss';
}

/** Picks the metric from an evaluation (see module doc): `task` is the evaluation's task summary. */
export function ablationMetric(evaluation: {
  summary: TrainSummary;
  task?: TaskSummary | null;
}): AblationMetric {
  const task = evaluation.task;
  const value = task?.studentAfter;
  if (task && typeof value === 'number' && Number.isFinite(value)) {
    return {
      name: task.metric,
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
