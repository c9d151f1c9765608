/** `rlpkd teach`: a task head (with or without its backbone) trained on labels, evaluated with the task metric. */
export {
  runTeach,
  resolveTeachTask,
  DEFAULT_TASK,
  TEACH_FILES,
  type TeachOptions,
  type TeachReport,
  type TeachResult,
} from './teach-model';
export { formatTeachSummary } from './teach-summary';
export { LabelPrior } from './label-prior';
export { TaskScorer, PRIMARY_METRIC, type TaskPrediction, type TaskScore } from './task-scorer';
export { scoreSplit, modelPredictor, type Predictor, type ScoreSplitOptions } from './score-split';
export {
  buildTaskHead,
  createHeadTraining,
  trainHead,
  exportTaskModel,
  exportHeadModel,
  exportBackboneModel,
  type HeadTraining,
  type HeadTrainingSpec,
  type HeadTrainingLoop,
  type TaskHeadShape,
} from './head-training';
export { targetFeeds, batchBoxes, hasTaskLabels, TASK_LABELS } from './task-feeds';
export {
  buildDemoTeacher,
  teachConfigHash,
  defaultTeachDemoConfig,
  DEMO_TEACHER_FILES,
  DEMO_TEACHER_METADATA,
  type DemoTeacherOptions,
  type DemoTeacherReport,
  type DemoTeacherResult,
} from './demo-teacher';
