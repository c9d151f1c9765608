/** A tiny finished run (one pretraining and one policy epoch) for the deployment tests. */
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { runTraining } from '../../src/distill/pipeline';
import { buildFcosHead, buildSegmentationHead, headLevelsOf, type HeadModel } from '../../src/heads';
import type { OnnxModel } from '../../src/onnx/types';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import { tinyConfig, writeTinyModels } from '../distill/run-fixtures';

/**
 * An untrained FCOS head (3 classes) on the tiny teacher's levels, written to `<dir>/head.onnx`. Its
 * weights are scaled up from FCOS's N(0, 0.01) and the class prior raised so that its scores spread
 * over (0, 1) and some locations pass the 0.05 threshold: a head that detects something to compare.
 */
export function writeTinyDetectionHead(dir: string, teacherFile: string): string {
  const size = { height: 32, width: 32 };
  const head = buildFcosHead({
    levels: headLevelsOf(loadModel(teacherFile), size),
    numClasses: 3,
    imageHeight: size.height,
    imageWidth: size.width,
    seed: 7,
  });
  for (const t of head.model.graph.initializers) {
    if (!t.name.startsWith('head.') || !(t.data instanceof Float32Array)) continue;
    const scale = t.name.endsWith('.weight') ? 25 : 1;
    t.data = t.data.map((v) => (t.name === 'head.cls_logits.bias' ? -2 : v * scale));
  }
  const file = path.join(dir, 'head.onnx');
  saveModel(head.model, file);
  return file;
}

/** A Semantic-FPN head (3 classes, branch width 8) on every level of `backbone`, written to `<dir>/<name>`. */
export function writeTinySegmentationHead(
  dir: string,
  backbone: OnnxModel,
  seed: number,
  name = 'seg-head.onnx',
): { head: HeadModel; file: string } {
  const levels = headLevelsOf(backbone, { height: 32, width: 32 });
  const head = buildSegmentationHead({
    levels,
    numClasses: 3,
    imageHeight: 32,
    imageWidth: 32,
    width: 8,
    seed,
  });
  const file = path.join(dir, name);
  saveModel(head.model, file);
  return { head, file };
}

/** Trains the tiny run in `dir` on the given policy state kind and returns its run directory. */
export async function tinyDeployRun(
  dir: string,
  state: 'train' | 'deploy',
  policy: Record<string, unknown> = {},
  options: { detectionHead?: boolean } = {},
): Promise<string> {
  const models = writeTinyModels(dir);
  const head = options.detectionHead ? { teacher_head: writeTinyDetectionHead(dir, models.teacher) } : {};
  const r = await runTraining({
    config: tinyConfig(dir, models, {
      models: head,
      rl: { policy: { state, ...policy } },
      phases: {
        pretrain: { epochs: 1 },
        policy: { epochs: 1 },
        joint: { enabled: false },
        meta: { enabled: false },
      },
    }),
    logger: { stream: new Writable({ write: (_c, _e, done) => done() }), progress: 'lines' },
  });
  if (r.status !== 'completed') throw new Error(`the tiny run ended ${r.status}`);
  return r.runDir;
}
