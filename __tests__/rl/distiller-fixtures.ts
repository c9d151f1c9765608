/** The demo teacher/student, random images and a distiller + environment over them, for the env tests. */
import { computeCostModel } from '../../src/analysis/cost-model';
import { classifyParameters } from '../../src/analysis/parameters';
import { imageInput } from '../../src/analysis/pyramid';
import { matchLevels } from '../../src/distill/level-matching';
import { StudentDistiller } from '../../src/distill/student-distiller';
import { buildDemoGraph } from '../../src/models/demo-graphs';
import type { HostTensor } from '../../src/runtime';
import { ParallelDistillationEnv, type DistillationEnvOptions } from '../../src/rl/distillation-env';
import type { OptimizerConfig } from '../../src/training/optimizers';
import type { DistillLossKind } from '../../src/training/level-distances';
import { Rng } from '../../src/util/rng';

export const teacher = buildDemoGraph('teacher').model;
export const student = buildDemoGraph('student').model;
export const SIZE = 96;

export function images(n: number, seed: number): HostTensor {
  const rng = new Rng(seed);
  return {
    data: Float32Array.from({ length: n * 3 * SIZE * SIZE }, () => rng.uniform(-1, 1)),
    dims: [n, 3, SIZE, SIZE],
  };
}

export const SIZE_HW = { height: SIZE, width: SIZE };
export const costs = computeCostModel(student, SIZE_HW).levels.map((l) => l.distillCost);

/** The demo student's distiller (AdamW lr 1e-4 unless given), every level, the given distance. */
export function distillerFor(
  options: { loss?: DistillLossKind; cwdTau?: number; optimizer?: OptimizerConfig } = {},
): Promise<StudentDistiller> {
  const c = classifyParameters(student);
  return StudentDistiller.create({
    teacher,
    student: c.model,
    imageInput: imageInput(student).name,
    teacherImageInput: imageInput(teacher).name,
    pairs: matchLevels(teacher, c.model, SIZE_HW),
    loss: options.loss ?? 'mse',
    ...(options.cwdTau !== undefined ? { tau: options.cwdTau } : {}),
    trainable: c.trainable.map((e) => e.name),
    optimizer: options.optimizer ?? { type: 'adamw', lr: 1e-4, weightDecay: 0 },
  });
}

/** An environment over a fresh distiller (costs from the cost model, decision order = level order). */
export async function createEnv(
  options: Omit<DistillationEnvOptions, 'distiller' | 'costs'> & {
    loss?: DistillLossKind;
    cwdTau?: number;
    optimizer?: OptimizerConfig;
  },
): Promise<{ env: ParallelDistillationEnv; distiller: StudentDistiller }> {
  const { loss, cwdTau, optimizer, ...rest } = options;
  const distiller = await distillerFor({
    ...(loss ? { loss } : {}),
    ...(cwdTau !== undefined ? { cwdTau } : {}),
    ...(optimizer ? { optimizer } : {}),
  });
  return { env: new ParallelDistillationEnv({ ...rest, distiller, costs }), distiller };
}
