/**
 * The deploy state's sources: the trunk tensors the level parts read, checked against what onnxruntime
 * computes for them (shape → channels and stride) and against the split's own boundary.
 */
import { splitPyramid } from '../../src/onnx/level-pruning';
import { deployStateSources } from '../../src/rl/deploy-state';
import { pooledStateFeatures, stateLayout } from '../../src/rl/policy-state';
import { createSession } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { tinyFpn } from '../distill/fixtures';

describe('deployStateSources', () => {
  const model = tinyFpn();
  const levels = ['p2', 'p3', 'p4', 'p5'].map((output, i) => ({ name: `P${i + 2}`, output }));
  const size = { height: 32, width: 32 };

  it('lists each trunk tensor a level part reads once, with the channels and stride onnxruntime computes', async () => {
    const sources = deployStateSources(model, levels, size);
    const boundary = splitPyramid(model).boundary;
    expect(sources.map((s) => s.name).sort()).toEqual([...boundary].sort());
    // The coarsest level's part reads only its lateral (its 3×3 output conv is what can be skipped).
    expect(sources.map((s) => s.stride)).toEqual([4, 8, 16, 32]);
    const withOutputs = {
      ...model,
      graph: {
        ...model.graph,
        outputs: sources.map((s) => ({ name: s.name, dataType: 1 })),
      },
    };
    const session = await createSession(withOutputs);
    const image = new Rng(1).fillNormal(new Float32Array(3 * 32 * 32));
    const out = await session.run({ [model.graph.inputs[0].name]: { data: image, dims: [1, 3, 32, 32] } });
    await session.release();
    for (const s of sources) {
      expect(out[s.name].dims).toEqual([1, s.channels, 32 / s.stride, 32 / s.stride]);
    }
  });

  it('follows the decision order and feeds a deploy layout without a loss feature', () => {
    const reversed = deployStateSources(model, [...levels].reverse(), size);
    expect(reversed.map((s) => s.stride)).toEqual([32, 16, 8, 4]);
    const layout = stateLayout(
      'deploy',
      [...levels].reverse().map((l, i) => ({ name: l.name, stride: 32 >> i, channels: 8 })),
      reversed,
    );
    const C = reversed.map((s) => s.channels);
    expect(layout.lossIndex).toBeNull();
    expect(layout.dim).toBe(2 * C[0] + C.reduce((a, b) => a + b, 0) + 4 + 1);
    expect(layout.coarsest.name).toBe(reversed[0].name);
    const features = Object.fromEntries(
      reversed.map((s) => [
        s.name,
        {
          data: new Float32Array(s.channels * (32 / s.stride) ** 2).fill(s.stride),
          dims: [1, s.channels, 32 / s.stride, 32 / s.stride],
        },
      ]),
    );
    const pooled = pooledStateFeatures(layout, features, 1);
    expect(Array.from(pooled)).toEqual([
      ...new Array(2 * C[0]).fill(32),
      ...reversed.flatMap((s) => new Array(s.channels).fill(s.stride)),
    ]);
  });

  it('refuses a single-level student with a hint', () => {
    expect(() => deployStateSources(model, levels.slice(0, 1), size)).toThrow(/1 pyramid level/);
  });
});
