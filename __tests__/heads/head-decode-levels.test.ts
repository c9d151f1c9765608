import { headLevelsOf, segmentationLabelMaps } from '../../src/heads';
import { tinyBackbone } from './head-fixtures';

describe('segmentationLabelMaps', () => {
  it('takes the arg-max class per pixel, ties to the lowest class (hand-computed)', () => {
    // Two images, 3 classes, 1×2 pixels; class planes of image 0: [1, 0], [2, 0], [2, −1]; image 1: all 0.
    const logits = [1, 0, 2, 0, 2, -1, 0, 0, 0, 0, 0, 0];
    const maps = segmentationLabelMaps(logits, [2, 3, 1, 2]);
    expect(maps.map((m) => Array.from(m))).toEqual([
      [1, 0],
      [0, 0],
    ]);
    expect(() => segmentationLabelMaps(logits, [2, 3, 2, 2])).toThrow(/do not fit 12 values/);
  });
});

describe('headLevelsOf', () => {
  const { model } = tinyBackbone(1);
  it("describes a backbone's pyramid outputs as head levels, selectable by output or level name", () => {
    const size = { height: 16, width: 16 };
    expect(headLevelsOf(model, size)).toEqual([
      { name: 'p2', channels: 8, stride: 4, height: 4, width: 4 },
      { name: 'p3', channels: 8, stride: 8, height: 2, width: 2 },
    ]);
    expect(headLevelsOf(model, size, ['P3']).map((l) => l.name)).toEqual(['p3']);
    expect(headLevelsOf(model, size, ['p3', 'p2']).map((l) => l.name)).toEqual(['p2', 'p3']);
    expect(() => headLevelsOf(model, size, ['p5'])).toThrow(
      /no pyramid level 'p5' \(levels: p2 \(P2\), p3 \(P3\)\)/,
    );
  });
});
