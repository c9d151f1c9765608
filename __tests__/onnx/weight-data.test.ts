import { findPyramidLevels } from '../../src/analysis/pyramid';
import { computeCostModel } from '../../src/analysis/cost-model';
import { buildDemoGraph } from '../../src/models/demo-graphs';
import { DataType, inferShapes, modelToBytes, saveModel, withoutWeightData } from '../../src/onnx';
import { createSession } from '../../src/runtime';

describe('withoutWeightData', () => {
  const model = buildDemoGraph('teacher').model;
  const size = { height: 96, width: 96 };
  const stripped = withoutWeightData(model);

  it('drops large floating-point weights only, and leaves the source model alone', () => {
    const before = new Map(model.graph.initializers.map((t) => [t.name, t]));
    let dropped = 0;
    for (const t of stripped.graph.initializers) {
      const src = before.get(t.name)!;
      expect(t.dims).toEqual(src.dims);
      expect(t.dataType).toBe(src.dataType);
      const large = src.dataType === DataType.FLOAT && src.data.length >= 1024;
      expect(t.data.length).toBe(large ? 0 : src.data.length);
      if (large) dropped++;
      expect(src.data.length).toBe(src.dims.reduce((a, b) => a * b, 1));
    }
    expect(dropped).toBeGreaterThan(10);
    expect(stripped.weightsDropped).toBe(true);
    expect(model.weightsDropped).toBeUndefined();
  });

  it('keeps what shape inference, level detection and the cost model read', () => {
    const shapes = (m: typeof model) =>
      [...inferShapes(m, { images: [2, 3, 96, 96] }).entries()].map(([k, v]) => [k, v.dataType, v.shape]);
    expect(shapes(stripped)).toEqual(shapes(model));
    expect(findPyramidLevels(stripped, size)).toEqual(findPyramidLevels(model, size));
    expect(computeCostModel(stripped, size)).toEqual(computeCostModel(model, size));
  });

  it('refuses to be serialized, saved or run, saying why', async () => {
    expect(() => modelToBytes(stripped)).toThrow(/large weights were dropped to save memory/);
    expect(() => saveModel(stripped, '/nonexistent/never-written.onnx')).toThrow(/weights were dropped/);
    await expect(createSession(stripped)).rejects.toThrow(/weights were dropped/);
  });
});
