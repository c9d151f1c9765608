/** A tiny detection head on the tiny teacher's pyramid (tests of the task loss and the task yardstick). */
import * as path from 'node:path';
import { buildFcosHead } from '../../src/heads/fcos-head';
import { headLevelsOf } from '../../src/heads/head-levels';
import type { HeadModel } from '../../src/heads/types';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import type { OnnxModel } from '../../src/onnx/types';

/** An FCOS-style head (one tower conv) on the levels of `teacher` at 32×32. */
export function tinyHead(teacher: OnnxModel, numClasses = 3, seed = 5): HeadModel {
  const levels = headLevelsOf(teacher, { height: 32, width: 32 });
  return buildFcosHead({ levels, numClasses, imageHeight: 32, imageWidth: 32, towerConvs: 1, seed });
}

/**
 * Writes head.onnx into `dir`: an FCOS-style head (one tower conv, 3 classes: the synthetic scenes') on
 * the levels of the teacher graph in `teacherFile` at 32×32; returns its path and the head.
 */
export function writeTinyHead(dir: string, teacherFile: string, seed = 5): { file: string; head: HeadModel } {
  const head = tinyHead(loadModel(teacherFile), 3, seed);
  const file = path.join(dir, 'head.onnx');
  saveModel(head.model, file);
  return { file, head };
}
