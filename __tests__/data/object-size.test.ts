/** objectSize: mean √area of the non-crowd boxes, by hand. */
import { objectSize } from '../../src/data/object-size';
import type { BoxAnnotation } from '../../src/data/types';

const box = (area: number, iscrowd = false): BoxAnnotation => ({
  bbox: [0, 0, 1, 1],
  categoryId: 1,
  label: 0,
  iscrowd,
  area,
});

test('mean side length of the non-crowd boxes; null without any', () => {
  expect(objectSize({ id: 'a', file: '/a', boxes: [box(16), box(100), box(900, true)] })).toBe(7); // (4 + 10) / 2
  expect(objectSize({ id: 'b', file: '/b', boxes: [box(400, true)] })).toBeNull();
  expect(objectSize({ id: 'c', file: '/c' })).toBeNull();
});
