import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEMO_GRAPHS, buildDemoGraph } from '../../src/models';
import { findGraphProblems, loadModel, modelToBytes } from '../../src/onnx';
import { findSharedInitializers } from '../../src/onnx/shared-initializers';

const SHIPPED = path.join(__dirname, '..', '..', 'onnx-graphs');

describe('shipped demo graphs', () => {
  it('are exactly what the builder makes today (rebuild with `rlpkd models demo`)', () => {
    for (const role of ['teacher', 'student'] as const) {
      const file = path.join(SHIPPED, DEMO_GRAPHS[role].file);
      expect(fs.existsSync(file)).toBe(true);
      const rebuilt = modelToBytes(buildDemoGraph(role).model);
      expect(Buffer.compare(Buffer.from(rebuilt), fs.readFileSync(file))).toBe(0);
    }
  });

  it('have matching pyramids: P2..P5 at strides 4/8/16/32 with the same channels and sizes', () => {
    const t = buildDemoGraph('teacher').info;
    const s = buildDemoGraph('student').info;
    const shape = (levels: typeof t.levels): number[][] =>
      levels.map((l) => [l.stride, l.channels, l.height, l.width]);
    expect(shape(t.levels)).toEqual(shape(s.levels));
    expect(shape(t.levels)).toEqual([
      [4, 64, 24, 24],
      [8, 64, 12, 12],
      [16, 64, 6, 6],
      [32, 64, 3, 3],
    ]);
    expect(t.trainableParameters).toBe(546_200);
    expect(s.trainableParameters).toBe(331_160);
    expect(s.trainableParameters).toBeLessThan(t.trainableParameters);
  });

  it('are small, valid and free of shared parameters', () => {
    let total = 0;
    for (const role of ['teacher', 'student'] as const) {
      const file = path.join(SHIPPED, DEMO_GRAPHS[role].file);
      total += fs.statSync(file).size;
      const m = loadModel(file);
      expect(findGraphProblems(m)).toEqual([]);
      expect(findSharedInitializers(m)).toEqual([]);
      expect(m.metadata['rlpkd.demo_role']).toBe(role);
      expect(m.graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3', 'p4', 'p5']);
    }
    expect(total).toBeLessThan(4_000_000);
  });
});
