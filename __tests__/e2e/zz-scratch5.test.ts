import { DataType, GraphBuilder } from '../../src/onnx';
import { buildGradientGraph } from '../../src/autodiff';
import { createSession } from '../../src/runtime';
import { readNpy, writeNpy } from '../../src/io/npy';
import { mseLoss } from '../../src/training/losses';

it('pool grad', async () => {
  const r = readNpy('/tmp/tg/cut/r.npy');
  const t = readNpy('/tmp/tg/cut/pool_t.npy');
  const b = new GraphBuilder({ name: 's', opset: 17 });
  b.input('r', DataType.FLOAT, ['batch', 64, 36, 52]);
  b.input('t', DataType.FLOAT, ['batch', 64, 18, 26]);
  const p = b.op('MaxPool', ['r'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 0 });
  const loss = mseLoss(b, p, 't');
  b.output(loss, DataType.FLOAT, []);
  const g = buildGradientGraph(b.build(), { targets: [{ loss, wrt: ['r'] }], keepOutputs: [] });
  for (const level of ['all', 'disabled'] as const) {
    const s = await createSession(g.model, { graphOptimizationLevel: level });
    const out = await s.run({ r: { data: r.data, dims: r.shape }, t: { data: t.data, dims: t.shape } });
    const d = out[g.gradients[0].output];
    writeNpy(`/tmp/tg/cut/r_ours_${level}.npy`, d);
    console.log(level, 'loss', out[loss].data[0]);
  }
});
