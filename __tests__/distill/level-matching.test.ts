import { addStudentAdapters, matchLevels } from '../../src/distill/level-matching';
import { findSharedParameter } from '../../src/distill/shared-parameter';
import { loadModel } from '../../src/onnx/model-io';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { floatTensor } from '../../src/onnx/tensor-data';
import { DataType, type OnnxModel } from '../../src/onnx/types';
import { createSession } from '../../src/runtime';
import { exportModelForInference } from '../../src/training/artifacts';
import { classifyParameters } from '../../src/analysis/parameters';
import { tinyFpn } from './fixtures';

const SIZE = { height: 32, width: 32 };

/** One conv level at stride 2 of a 16×16 image; `pad` 0 makes it 7×7 instead of 8×8 (same stride). */
function oneLevel(name: string, pad: number): OnnxModel {
  const b = new GraphBuilder({ name });
  b.input('x', DataType.FLOAT, ['batch', 3, 16, 16]);
  const w = b.initializer(floatTensor('c.weight', [4, 3, 3, 3], new Array(108).fill(0.1)), {
    exactName: true,
  });
  b.op(
    'Conv',
    ['x', w],
    { kernel_shape: [3, 3], strides: [2, 2], pads: [pad, pad, pad, pad] },
    { outputs: ['p1'] },
  );
  b.output('p1', DataType.FLOAT);
  return b.build();
}

describe('teacher/student level matching', () => {
  it('pairs the demo graphs level by level without adapters', () => {
    const teacher = loadModel('onnx-graphs/teacher.onnx');
    const student = loadModel('onnx-graphs/student.onnx');
    const pairs = matchLevels(teacher, student, { height: 96, width: 96 });
    expect(pairs.map((p) => [p.name, p.stride, p.student.output, p.teacher.output])).toEqual([
      ['P2', 4, 'p2', 'p2'],
      ['P3', 8, 'p3', 'p3'],
      ['P4', 16, 'p4', 'p4'],
      ['P5', 32, 'p5', 'p5'],
    ]);
    expect(pairs.every((p) => p.studentTensor === p.student.output && !p.adapter)).toBe(true);
    expect(addStudentAdapters(student, pairs).model).toBe(student);
  });

  it('selects configured levels by level or output name', () => {
    const pairs = matchLevels(tinyFpn({ seed: 1 }), tinyFpn({ seed: 2 }), SIZE, ['P3', 'p5']);
    expect(pairs.map((p) => p.name)).toEqual(['P3', 'P5']);
    expect(() => matchLevels(tinyFpn(), tinyFpn(), SIZE, ['P7'])).toThrow(
      /models.levels names 'P7', which is not a pyramid level of the student/,
    );
  });

  it('adds a 1×1 adapter on the student side when channels differ, and export drops it', async () => {
    const teacher = tinyFpn({ seed: 1, fpnChannels: 16 });
    const student = tinyFpn({ seed: 2, fpnChannels: 8 });
    const pairs = matchLevels(teacher, student, SIZE);
    const adapted = addStudentAdapters(student, pairs, 5);
    expect(adapted.pairs.map((p) => p.adapter && [p.adapter.inChannels, p.adapter.outChannels])).toEqual([
      [8, 16],
      [8, 16],
      [8, 16],
      [8, 16],
    ]);
    expect(adapted.pairs[0].studentTensor).toBe('p2.adapted');
    expect(adapted.model.graph.outputs.map((o) => o.name)).toEqual([
      'p2.adapted',
      'p3.adapted',
      'p4.adapted',
      'p5.adapted',
    ]);
    // The adapted model's levels now match the teacher's channels.
    expect(matchLevels(teacher, adapted.model, SIZE).every((p) => p.student.channels === 16)).toBe(true);
    const session = await createSession(adapted.model);
    const out = await session.run({
      images: { data: new Float32Array(3 * 32 * 32).fill(0.5), dims: [1, 3, 32, 32] },
    });
    expect(out['p2.adapted'].dims).toEqual([1, 16, 8, 8]);
    await session.release();
    const params = Object.fromEntries(
      adapted.model.graph.initializers
        .filter((t) => t.name.startsWith('adapter.'))
        .map((t) => [t.name, { data: t.data as Float32Array, dims: t.dims }]),
    );
    const exported = exportModelForInference(adapted.model, params, {
      outputs: student.graph.outputs.map((o) => o.name),
    });
    expect(exported.graph.initializers.some((t) => t.name.startsWith('adapter.'))).toBe(false);
    expect(exported.graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3', 'p4', 'p5']);
  });

  it('names both shapes when a level has the same stride but another size', () => {
    expect(() =>
      matchLevels(oneLevel('teacher', 1), oneLevel('student', 0), { height: 16, width: 16 }),
    ).toThrow(
      /level P1 \(stride 2\) does not match: teacher 'p1' is \[4, 8, 8\] but student 'p1' is \[4, 7, 7\]/,
    );
  });

  it('reports a student level the teacher lacks, and an input size the graphs do not take', () => {
    const big = { height: 64, width: 64 };
    expect(() =>
      matchLevels(tinyFpn({ seed: 1, ...big }), tinyFpn({ seed: 2, p6: true, ...big }), big),
    ).toThrow(/level P6 \('p6', stride 64\) has no teacher level of the same stride/);
    expect(() => matchLevels(tinyFpn(), tinyFpn(), big)).toThrow(
      /data.image_size is 64×64 but the student graph's input 'images' takes 32×32 images/,
    );
  });
});

describe('GradNorm shared parameter', () => {
  const student = loadModel('onnx-graphs/student.onnx');
  const levels = ['p2', 'p3', 'p4', 'p5'];
  const trainable = classifyParameters(student).trainable.map((e) => e.name);

  it('is the top lateral FPN conv of a ResNet-FPN (the last parameter every level depends on)', () => {
    const c = findSharedParameter(student, levels, trainable);
    expect(c).toMatchObject({ name: 'fpn.inner_blocks.3.0.weight', how: 'auto' });
    // Its bias ties on position and loses on size; the backbone's last conv comes next.
    expect(c.candidates.slice(0, 3)).toEqual([
      'fpn.inner_blocks.3.0.weight',
      'fpn.inner_blocks.3.0.bias',
      'body.layer4.1.conv2.weight',
    ]);
    // No per-level parameter (a layer block, another lateral) is a candidate.
    expect(
      c.candidates.some((p) => p.startsWith('fpn.layer_blocks') || p.startsWith('fpn.inner_blocks.0')),
    ).toBe(false);
  });

  it('takes a configured name when it feeds every level, and explains when it does not', () => {
    expect(findSharedParameter(student, levels, trainable, 'body.layer4.1.conv2.weight')).toMatchObject({
      name: 'body.layer4.1.conv2.weight',
      how: 'configured',
    });
    expect(() => findSharedParameter(student, levels, trainable, 'fpn.layer_blocks.0.0.weight')).toThrow(
      /'fpn.layer_blocks.0.0.weight' does not feed the level output\(s\) p3, p4, p5/,
    );
    expect(() => findSharedParameter(student, levels, trainable, 'nope.weight')).toThrow(
      /'nope.weight' is not a trainable parameter/,
    );
  });
});
