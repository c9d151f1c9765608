/** Tiny ResNet-FPN teacher/student graphs (the project's builder) for fast distillation tests. */
import { classifyParameters } from '../../src/analysis/parameters';
import { addStudentAdapters, matchLevels, type LevelPair } from '../../src/distill/level-matching';
import { buildResnetFpn, type ResnetFpnOptions } from '../../src/models/resnet-fpn';
import type { OnnxModel } from '../../src/onnx/types';

/** A resnet18-fpn (or given arch) at 32×32 with few channels: P2..P5 at 8, 4, 2, 1 pixels. */
export function tinyFpn(options: Partial<ResnetFpnOptions> = {}): OnnxModel {
  return buildResnetFpn({
    arch: 'resnet18-fpn',
    widthMult: 1 / 16,
    fpnChannels: 8,
    height: 32,
    width: 32,
    fpnBias: 'random',
    seed: 1,
    ...options,
  });
}

/**
 * A tiny teacher (resnet34-fpn, `teacherChannels` FPN channels) and student (resnet18-fpn, 8 channels) at
 * 32×32, paired level by level with 1×1 adapters where the channels differ, as StudentDistiller options
 * (mse loss; `trainable` is the student's default trainable set plus the adapters).
 */
export function tinyDistillGraphs(teacherChannels = 8): {
  teacher: OnnxModel;
  student: OnnxModel;
  imageInput: string;
  teacherImageInput: string;
  pairs: LevelPair[];
  loss: 'mse';
  trainable: string[];
} {
  const teacher = tinyFpn({ arch: 'resnet34-fpn', seed: 1, fpnChannels: teacherChannels });
  const c = classifyParameters(tinyFpn({ seed: 2 }));
  const size = { height: 32, width: 32 };
  const { model: student, pairs } = addStudentAdapters(c.model, matchLevels(teacher, c.model, size), 1);
  const trainable = [
    ...c.trainable.map((e) => e.name),
    ...pairs.flatMap((p) => (p.adapter ? [p.adapter.weight, p.adapter.bias] : [])),
  ];
  return {
    teacher,
    student,
    imageInput: 'images',
    teacherImageInput: 'images',
    pairs,
    loss: 'mse',
    trainable,
  };
}
