/**
 * Which teacher level each student level is distilled from: levels are matched by stride (both graphs
 * analysed at the run's input size), their spatial sizes must agree, and a channel mismatch gets a 1×1
 * convolution adapter on the student side (trained with the student, dropped from the exported student).
 */
import {
  findPyramidLevels,
  imageInput,
  resolveInputSize,
  type InputSize,
  type PyramidLevel,
} from '../analysis/pyramid';
import { RlpkdError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { floatTensor } from '../onnx/tensor-data';
import { DataType, type OnnxModel, type ValueInfo } from '../onnx/types';
import { Rng, type Seed } from '../util/rng';

/** A student level, the teacher level it learns from, and the tensor compared with the teacher. */
export interface LevelPair {
  /** Level name (P2, P3, ...). */
  name: string;
  stride: number;
  student: PyramidLevel;
  teacher: PyramidLevel;
  /** Student tensor the loss compares with the teacher: the level output, or its adapter's output. */
  studentTensor: string;
  /** The 1×1 adapter when the channel counts differ. */
  adapter?: { weight: string; bias: string; inChannels: number; outChannels: number };
}

const shapeText = (l: PyramidLevel) => `[${l.channels}, ${l.height}, ${l.width}]`;

function listLevels(levels: readonly PyramidLevel[]): string {
  return levels.map((l) => `${l.name} '${l.output}' ${shapeText(l)}`).join(', ');
}

/** Checks that the student takes images of `size` (a static input size must equal it). */
export function checkInputSize(model: OnnxModel, size: InputSize, what: string): void {
  const input = imageInput(model);
  const [, , h, w] = input.shape ?? [];
  const fixedH = typeof h === 'number' ? h : undefined;
  const fixedW = typeof w === 'number' ? w : undefined;
  if ((fixedH !== undefined && fixedH !== size.height) || (fixedW !== undefined && fixedW !== size.width)) {
    const own = resolveInputSize(model, { height: fixedH ?? size.height, width: fixedW ?? size.width });
    throw new RlpkdError(
      `data.image_size is ${size.height}×${size.width} but the ${what} graph's input '${input.name}' takes ${own.height}×${own.width} images`,
      {
        hint: `set data.image_size to [${own.height}, ${own.width}] (or export the graph with a dynamic size)`,
      },
    );
  }
}

function pick(levels: readonly PyramidLevel[], wanted: string): PyramidLevel | undefined {
  return (
    levels.find((l) => l.name === wanted || l.output === wanted) ??
    levels.find(
      (l) => l.name.toLowerCase() === wanted.toLowerCase() || l.output.toLowerCase() === wanted.toLowerCase(),
    )
  );
}

/**
 * Matches the student's pyramid levels (all, or the `requested` names: level names like P3 or output
 * names) with the teacher's by stride. Errors name both graphs' levels and shapes.
 */
export function matchLevels(
  teacher: OnnxModel,
  student: OnnxModel,
  size: InputSize,
  requested: 'auto' | readonly string[] = 'auto',
): LevelPair[] {
  checkInputSize(student, size, 'student');
  checkInputSize(teacher, size, 'teacher');
  const sLevels = findPyramidLevels(student, size);
  const tLevels = findPyramidLevels(teacher, size);
  let chosen = sLevels;
  if (requested !== 'auto') {
    chosen = requested.map((name) => {
      const l = pick(sLevels, name);
      if (!l) {
        throw new RlpkdError(`models.levels names '${name}', which is not a pyramid level of the student`, {
          hint: `the student's levels: ${listLevels(sLevels)}`,
        });
      }
      return l;
    });
  }
  return chosen.map((s) => {
    const t = tLevels.find((l) => l.stride === s.stride);
    if (!t) {
      throw new RlpkdError(
        `the student's level ${s.name} ('${s.output}', stride ${s.stride}) has no teacher level of the same stride; teacher levels: ${listLevels(tLevels)}`,
        {
          hint: 'distil only the levels both graphs have (models.levels), or export graphs with the same pyramid',
        },
      );
    }
    if (t.height !== s.height || t.width !== s.width) {
      throw new RlpkdError(
        `level ${s.name} (stride ${s.stride}) does not match: teacher '${t.output}' is ${shapeText(t)} but student '${s.output}' is ${shapeText(s)} at ${size.height}×${size.width} input`,
        { hint: 'teacher and student levels must have the same spatial size (same strides and padding)' },
      );
    }
    return { name: s.name, stride: s.stride, student: s, teacher: t, studentTensor: s.output };
  });
}

/**
 * Adds a 1×1 Conv adapter (PyTorch's default init, seeded) after every student level whose channels
 * differ from the teacher's; the adapted tensors replace those level outputs. Pairs are updated.
 */
export function addStudentAdapters(
  student: OnnxModel,
  pairs: readonly LevelPair[],
  seed: Seed = 0,
): { model: OnnxModel; pairs: LevelPair[] } {
  if (pairs.every((p) => p.student.channels === p.teacher.channels))
    return { model: student, pairs: [...pairs] };
  const b = GraphBuilder.fromModel(student);
  const rng = new Rng(seed).fork('adapters');
  const replaced = new Map<string, ValueInfo>();
  const out = pairs.map((p) => {
    if (p.student.channels === p.teacher.channels) return { ...p };
    const cin = p.student.channels;
    const cout = p.teacher.channels;
    const bound = 1 / Math.sqrt(cin); // kaiming_uniform(a=√5) and the bias init of torch.nn.Conv2d
    const weight = b.initializer(
      floatTensor(
        `adapter.${p.name}.weight`,
        [cout, cin, 1, 1],
        Array.from({ length: cout * cin }, () => rng.uniform(-bound, bound)),
      ),
      { exactName: true },
    );
    const bias = b.initializer(
      floatTensor(
        `adapter.${p.name}.bias`,
        [cout],
        Array.from({ length: cout }, () => rng.uniform(-bound, bound)),
      ),
      { exactName: true },
    );
    const adapted = b.op(
      'Conv',
      [p.student.output, weight, bias],
      { kernel_shape: [1, 1] },
      {
        name: `adapter.${p.name}`,
        outputs: [`${p.student.output}.adapted`],
      },
    );
    replaced.set(p.student.output, {
      name: adapted,
      dataType: DataType.FLOAT,
      shape: ['batch', cout, p.student.height, p.student.width],
    });
    return { ...p, studentTensor: adapted, adapter: { weight, bias, inChannels: cin, outChannels: cout } };
  });
  const outputs = b.outputs.map((o) => replaced.get(o.name) ?? o);
  b.outputs.length = 0;
  b.outputs.push(...outputs);
  return { model: b.build(), pairs: out };
}
