/**
 * Files a run's checkpoint holds when the student trains with the task loss (`distill.task_loss_weight`)
 * or beside a labels-only baseline (`distill.labels_only_baseline`). Written by the training side, read by
 * `rlpkd eval`; absent from runs that use neither.
 */
export const TASK_CHECKPOINT_FILES = {
  /** The distilled student with its own task head, inference form (image in, head outputs out). */
  studentTaskModel: 'student-task-model.onnx',
  /** The labels-only baseline's backbone (same schedule, distillation weight 0), inference form. */
  labelsOnlyStudent: 'labels-only-student.onnx',
  /** The labels-only baseline with its own head, inference form. */
  labelsOnlyTaskModel: 'labels-only-task-model.onnx',
  /** The labels-only baseline's parameters and optimizer state (what resuming it needs; eval ignores it). */
  labelsOnlyTrain: 'labels-only.train.onnx',
} as const;
