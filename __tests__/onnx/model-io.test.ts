import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DataType,
  GraphBuilder,
  attr,
  floatTensor,
  loadModel,
  loadModelFromBytes,
  modelToBytes,
  saveModel,
  int64Tensor,
  tensorValuesAsNumbers,
  type OnnxModel,
} from '../../src/onnx';
import { createSession, hostFloat } from '../../src/runtime';

function tinyModel(): OnnxModel {
  const b = new GraphBuilder({ name: 'tiny' });
  const x = b.input('x', DataType.FLOAT, ['batch', 2, 4, 4]);
  const w = b.initializer(
    floatTensor(
      'conv.weight',
      [3, 2, 3, 3],
      Array.from({ length: 54 }, (_, i) => Math.sin(i)),
    ),
  );
  const bias = b.initializer(floatTensor('conv.bias', [3], [0.1, -0.2, 0.3]));
  const big = b.initializer(floatTensor('scale', [1, 3, 1, 1], [1.5, 2, -1]));
  const y = b.op('Conv', [x, w, bias], { pads: [1, 1, 1, 1], strides: [1, 1], kernel_shape: [3, 3] });
  const z = b.op('Mul', [y, big]);
  const r = b.op('LeakyRelu', [z], { alpha: attr.float(0.1) });
  const shape = b.initializer(int64Tensor('shape', [2], [-1, 48]));
  const flat = b.op('Reshape', [r, shape]);
  b.output(flat, DataType.FLOAT, ['batch', 48]);
  b.metadata.purpose = 'test';
  return b.build();
}

describe('ONNX model I/O', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-io-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips a model through bytes unchanged', () => {
    const m = tinyModel();
    const again = loadModelFromBytes(modelToBytes(m));
    expect(again.graph.nodes.map((n) => n.opType)).toEqual(['Conv', 'Mul', 'LeakyRelu', 'Reshape']);
    expect(again.graph.nodes[2].attributes.alpha).toEqual({ type: 'float', value: expect.closeTo(0.1, 6) });
    expect(again.graph.nodes[0].attributes.pads).toEqual({ type: 'ints', value: [1, 1, 1, 1] });
    expect(again.metadata).toEqual({ purpose: 'test' });
    expect(again.graph.inputs[0].shape).toEqual(['batch', 2, 4, 4]);
    expect(again.graph.initializers[0].data).toEqual(m.graph.initializers[0].data);
    expect(again.graph.initializers.find((t) => t.name === 'shape')!.data).toEqual(
      new BigInt64Array([-1n, 48n]),
    );
    expect(modelToBytes(again)).toEqual(modelToBytes(m));
  });

  it('saves with external data and gives the same onnxruntime outputs after reload', async () => {
    const m = tinyModel();
    const file = path.join(dir, 'tiny.onnx');
    const written = saveModel(m, file, { externalDataThreshold: 16 });
    expect(written).toEqual([file, path.join(dir, 'tiny.onnx.data')]);
    const reloaded = loadModel(file);
    expect(reloaded.graph.initializers.map((t) => tensorValuesAsNumbers(t))).toEqual(
      m.graph.initializers.map((t) => tensorValuesAsNumbers(t)),
    );
    const x = hostFloat(
      [2, 2, 4, 4],
      Array.from({ length: 64 }, (_, i) => Math.cos(i)),
    );
    const a = await createSession(m);
    const b = await createSession(file); // onnxruntime reads the external data itself from the path
    const c = await createSession(reloaded);
    const ya = (await a.run({ x }))[m.graph.outputs[0].name].data as Float32Array;
    const yb = (await b.run({ x }))[m.graph.outputs[0].name].data as Float32Array;
    const yc = (await c.run({ x }))[m.graph.outputs[0].name].data as Float32Array;
    expect(Array.from(yb)).toEqual(Array.from(ya));
    expect(Array.from(yc)).toEqual(Array.from(ya));
    await Promise.all([a.release(), b.release(), c.release()]);
  });

  it('reports a missing file, a non-ONNX file and a truncated file clearly', () => {
    expect(() => loadModel(path.join(dir, 'nope.onnx'))).toThrow(/does not exist/);
    const txt = path.join(dir, 'notes.onnx');
    fs.writeFileSync(txt, 'this is plainly a text file, not a protobuf\n'.repeat(20));
    expect(() => loadModel(txt)).toThrow(/not (a valid )?(an )?ONNX model/);
    const full = modelToBytes(tinyModel());
    const cut = path.join(dir, 'cut.onnx');
    fs.writeFileSync(cut, full.subarray(0, Math.floor(full.length * 0.6)));
    expect(() => loadModel(cut)).toThrow(/ONNX model/);
  });
});
