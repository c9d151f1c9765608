import { GraphBuilder } from '../../src/onnx/graph-builder';
import { DataType } from '../../src/onnx/types';
import { openGraphSession, resolveDevice } from '../../src/runtime/choose-runtime';

describe('the runtime chooser', () => {
  it('names the device each choice runs on', () => {
    expect(resolveDevice({})).toBe('cpu');
    expect(resolveDevice({ runtime: 'node', executionProvider: 'cpu' })).toBe('cpu');
    expect(resolveDevice({ runtime: 'web', executionProvider: 'cuda' })).toBe('wasm'); // wasm ignores the EP
  });

  it('opens the same graph on onnxruntime-node and onnxruntime-web with equal results', async () => {
    const b = new GraphBuilder({ name: 'tiny' });
    const x = b.input('x', DataType.FLOAT, ['batch', 2]);
    const w = b.constFloat([1.5, -2, 0.25, 4], [2, 2], 'w');
    b.output(b.op('MatMul', [x, w], {}, { outputs: ['y'] }), DataType.FLOAT, ['batch', 2]);
    const model = b.build();
    const feeds = { x: { data: Float32Array.of(1, 2, -3, 0.5), dims: [2, 2] } };
    const node = await openGraphSession(model, { runtime: 'node' });
    const web = await openGraphSession(model, { runtime: 'web' });
    // Hand-computed: [1, 2]·w = [2, 6]; [-3, 0.5]·w = [-4.375, 8].
    expect(Array.from((await node.run(feeds)).y.data as Float32Array)).toEqual([2, 6, -4.375, 8]);
    expect(Array.from((await web.run(feeds)).y.data as Float32Array)).toEqual([2, 6, -4.375, 8]);
    expect(node.runInto).toBeDefined(); // in-place outputs: onnxruntime-node only
    expect(web.runInto).toBeUndefined();
    await Promise.all([node.release(), web.release()]);
  });
});
