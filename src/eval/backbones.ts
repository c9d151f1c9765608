/**
 * The backbones an evaluation compares: the teacher, the student as the run started (models.student), the
 * distilled student (the checkpoint's student.onnx) and, when the run trained one, the labels-only
 * baseline (the checkpoint's labels-only-student.onnx).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CHECKPOINT_FILES } from '../distill/run-checkpoint';
import { TASK_CHECKPOINT_FILES } from '../distill/task-checkpoint-files';
import { loadModel } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';

/** The backbones by role, in report order. */
export const BACKBONE_NAMES = ['teacher', 'studentBefore', 'studentAfter', 'labelsOnly'] as const;
export type BackboneName = (typeof BACKBONE_NAMES)[number];
/** The student backbones (compared with the teacher). */
export type StudentName = Exclude<BackboneName, 'teacher'>;

/** Labels of the backbones in tables. */
export const BACKBONE_LABELS: Record<BackboneName, string> = {
  teacher: 'teacher',
  studentBefore: 'student before',
  studentAfter: 'student after',
  labelsOnly: 'labels-only',
};

/** One backbone: its file and graph. */
export interface EvalBackbone {
  name: BackboneName;
  file: string;
  model: OnnxModel;
}

/** The backbones of a run's checkpoint (see module doc); labelsOnly only when its file exists. */
export function runBackbones(
  models: { teacher: string; student: string },
  checkpointDir: string,
): EvalBackbone[] {
  const after = path.join(checkpointDir, CHECKPOINT_FILES.student);
  const labelsOnly = path.join(checkpointDir, TASK_CHECKPOINT_FILES.labelsOnlyStudent);
  const files: [BackboneName, string][] = [
    ['teacher', models.teacher],
    ['studentBefore', models.student],
    ['studentAfter', after],
    ...(fs.existsSync(labelsOnly) ? [['labelsOnly', labelsOnly] as [BackboneName, string]] : []),
  ];
  return files.map(([name, file]) => ({ name, file, model: loadModel(file) }));
}
