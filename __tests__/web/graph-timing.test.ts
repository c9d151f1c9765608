/** timeGraphRuns on onnxruntime-web (wasm) in Node: one time per timed run, and a clear error for two inputs. */
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { modelToBytes } from '../../src/onnx/model-io';
import { DataType } from '../../src/onnx/types';
import { timeGraphRuns } from '../../src/web/graph-timing';

function graph(inputs: number): Uint8Array {
  const b = new GraphBuilder({ name: 'timed' });
  const xs = Array.from({ length: inputs }, (_, i) => b.input(`x${i}`, DataType.FLOAT, [1, 2]));
  b.node(inputs === 1 ? 'Identity' : 'Add', xs, {}, { outputs: ['y'] });
  b.output('y', DataType.FLOAT, [1, 2]);
  return modelToBytes(b.build());
}

describe('timeGraphRuns', () => {
  it('gives one finite, non-negative time per timed run', async () => {
    const times = await timeGraphRuns(graph(1), [1, 2], { executionProvider: 'wasm', repeats: 3, warmup: 1 });
    expect(times).toHaveLength(3);
    for (const t of times) {
      expect(Number.isFinite(t)).toBe(true);
      expect(t).toBeGreaterThanOrEqual(0);
    }
  });

  it('refuses a graph with more than one input', async () => {
    await expect(timeGraphRuns(graph(2), [1, 2], { executionProvider: 'wasm', repeats: 1 })).rejects.toThrow(
      /one input, this one has 2/,
    );
  });
});
