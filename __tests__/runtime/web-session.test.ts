import { GraphBuilder } from '../../src/onnx/graph-builder';
import { DataType } from '../../src/onnx/types';
import { createSession } from '../../src/runtime';
import { createWebSession } from '../../src/runtime/web-session';

describe('onnxruntime-web (wasm) GraphSession', () => {
  it('runs a graph with float and int64 inputs and agrees with onnxruntime-node', async () => {
    const b = new GraphBuilder({ name: 'tiny' });
    const x = b.input('x', DataType.FLOAT, ['batch', 3]);
    const idx = b.input('idx', DataType.INT64, [2]);
    const w = b.constFloat([0.5, -1, 2, 0.25, 1.5, -0.75], [3, 2], 'w');
    const y = b.op('Relu', [b.op('MatMul', [x, w])], {}, { outputs: ['y'] });
    b.output(y, DataType.FLOAT, ['batch', 2]);
    b.output(b.op('Gather', [x, idx], { axis: 1 }, { outputs: ['picked'] }), DataType.FLOAT, ['batch', 2]);
    const model = b.build();
    const feeds = {
      x: { data: Float32Array.of(1, 2, 3, -1, 0.5, 4), dims: [2, 3] },
      idx: { data: BigInt64Array.of(2n, 0n), dims: [2] },
    };
    const web = await createWebSession(model);
    const node = await createSession(model);
    expect(web.executionProvider).toBe('wasm');
    expect([...web.inputNames]).toEqual(['x', 'idx']);
    const a = await web.run(feeds);
    const c = await node.run(feeds);
    expect(a.y.dims).toEqual([2, 2]);
    expect(Array.from(a.y.data as Float32Array)).toEqual(Array.from(c.y.data as Float32Array));
    expect(Array.from(a.picked.data as Float32Array)).toEqual([3, 1, 4, -1]);
    const only = await web.run(feeds, ['picked']);
    expect(Object.keys(only)).toEqual(['picked']);
    await web.release();
    await node.release();
  });
});
