import * as ort from 'onnxruntime-node';
import { DataType, GraphBuilder } from '../../src/onnx';
import { modelToBytes } from '../../src/onnx';

// ScatterElements(add) with many duplicate indices: exact answer is known.
it('scatter race', async () => {
  const n = 2 * 64 * 36 * 52;
  const b = new GraphBuilder({ name: 's', opset: 17 });
  b.input('z', DataType.FLOAT, [n]);
  b.input('i', DataType.INT64, [n / 4 * 1]);
  b.input('u', DataType.FLOAT, [n / 4 * 1]);
  const y = b.op('ScatterElements', ['z', 'i', 'u'], { axis: 0, reduction: 'add' });
  b.output(y, DataType.FLOAT, [n]);
  const m = n / 4;
  const idx = new BigInt64Array(m);
  for (let k = 0; k < m; k++) idx[k] = BigInt((k * 7) % 1000); // heavy duplicates
  const upd = new Float32Array(m).fill(1);
  for (const threads of [1, 2]) {
    const s = await ort.InferenceSession.create(modelToBytes(b.build()), { intraOpNumThreads: threads });
    for (let rep = 0; rep < 3; rep++) {
      const out = await s.run({ z: new ort.Tensor('float32', new Float32Array(n), [n]), i: new ort.Tensor('int64', idx, [m]), u: new ort.Tensor('float32', upd, [m]) });
      const d = out[y].data as Float32Array;
      let tot = 0; for (let k = 0; k < 1000; k++) tot += d[k];
      console.log('threads', threads, 'sum', tot, 'expected', m);
    }
  }
});
