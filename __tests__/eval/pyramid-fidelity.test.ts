import { findPyramidLevels } from '../../src/analysis/pyramid';
import type { LevelPair } from '../../src/distill/level-matching';
import { pyramidFidelity } from '../../src/eval/pyramid-fidelity';
import type { OnnxModel } from '../../src/onnx/types';
import { Rng } from '../../src/util/rng';
import { tinyFpn } from '../distill/fixtures';

const size = { height: 32, width: 32 };

function pairsOf(teacher: OnnxModel, student: OnnxModel): LevelPair[] {
  const t = findPyramidLevels(teacher, size);
  return findPyramidLevels(student, size).map((s, i) => ({
    name: s.name,
    stride: s.stride,
    student: s,
    teacher: t[i]!,
    studentTensor: s.output,
  }));
}

describe('pyramidFidelity', () => {
  const rng = new Rng('fidelity-images');
  const images = {
    data: Float32Array.from({ length: 3 * 3 * 32 * 32 }, () => rng.normal()),
    dims: [3, 3, 32, 32],
  };

  it('gives MSE 0 and cosine 1 for a student that is the teacher, batch split or not', async () => {
    const teacher = tinyFpn({ seed: 5 });
    const pairs = pairsOf(teacher, teacher);
    for (const batchSize of [1, 2, 3]) {
      const r = await pyramidFidelity(
        [
          { name: 'teacher', file: 't', model: teacher },
          { name: 'studentAfter', file: 's', model: teacher },
        ],
        pairs,
        images,
        { batchSize },
      );
      expect(r.levels).toEqual(['P2', 'P3', 'P4', 'P5']);
      expect(r.backbones.studentAfter!.mse).toEqual([0, 0, 0, 0]);
      r.backbones.studentAfter!.cosine.forEach((c) => expect(c).toBeCloseTo(1, 6));
    }
  });

  it('leaves levels of other widths (distilled through an adapter) out, saying why', async () => {
    const teacher = tinyFpn({ seed: 1, fpnChannels: 16 });
    const student = tinyFpn({ seed: 2, fpnChannels: 8 });
    const r = await pyramidFidelity(
      [
        { name: 'teacher', file: 't', model: teacher },
        { name: 'studentBefore', file: 's', model: student },
      ],
      pairsOf(teacher, student),
      images,
      { batchSize: 2 },
    );
    expect(r.backbones.studentBefore).toEqual({
      mse: [null, null, null, null],
      cosine: [null, null, null, null],
    });
    expect(r.notes.P3).toMatch(/student has 8 channels, the teacher 16/);
  });
});
