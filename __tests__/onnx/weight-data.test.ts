import { findPyramidLevels } from '../../src/analysis/pyramid';
import { computeCostModel } from '../../src/analysis/cost-model';
import { buildDemoGraph } from '../../src/models/demo-graphs';
import {
  DataType,
  inferShapes,
  modelToBytes,
  saveModel,
  withoutWeightData,
  withWeightsRestored,
} from '../../src/onnx';
import { embedParameters } from '../../src/training/graph-edit';
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

describe('withoutWeightData for named initializers, and withWeightsRestored', () => {
  const model = buildDemoGraph('student').model;
  const floats = model.graph.initializers.filter((t) => t.dataType === DataType.FLOAT);
  // Every other float initializer, small ones included (minElements 0).
  const named = new Set(floats.filter((_, i) => i % 2 === 0).map((t) => t.name));
  const stripped = withoutWeightData(model, 0, named);

  it('drops exactly the named initializers', () => {
    for (const t of stripped.graph.initializers) {
      const src = model.graph.initializers.find((u) => u.name === t.name)!;
      expect(t.data.length).toBe(named.has(t.name) ? 0 : src.data.length);
    }
    expect(stripped.weightsDropped).toBe(true);
  });

  it('refuses while a dropped initializer has no data, naming it', () => {
    expect(() => withWeightsRestored(stripped)).toThrow(/initializers '.+' .*still have no data/);
    const [first, ...rest] = [...named];
    const partial = embedParameters(
      stripped,
      Object.fromEntries(rest.map((n) => [n, model.graph.initializers.find((t) => t.name === n)!])),
    );
    expect(() => withWeightsRestored(partial)).toThrow(new RegExp(`'${first.replace(/\./g, '\\.')}' still`));
  });

  it('gives back a model that serializes to the original bytes once every dropped value is embedded', () => {
    const values = Object.fromEntries(
      [...named].map((n) => [n, model.graph.initializers.find((t) => t.name === n)!]),
    );
    const restored = withWeightsRestored(embedParameters(stripped, values));
    expect(restored.weightsDropped).toBeUndefined();
    expect(Buffer.from(modelToBytes(restored)).equals(Buffer.from(modelToBytes(model)))).toBe(true);
    expect(withWeightsRestored(model)).toBe(model);
  });
});
