import { DataType, GraphBuilder, loadModel, saveModel } from '../../src/onnx';
import { buildGradientGraph } from '../../src/autodiff';
import { createSession } from '../../src/runtime';
import { readNpy } from '../../src/io/npy';
import { mseLoss } from '../../src/training/losses';
import { moveInitializersToInputs, pruneToOutputs } from '../../src/training/graph-edit';

it('cut pool levels', async () => {
  const model = loadModel('/tmp/tg/r18/model.onnx');
  const x = readNpy('/tmp/tg/r18/inputs/images.npy');
  const t = readNpy('/tmp/tg/cut/pool_t.npy');
  const ref = readNpy('/tmp/tg/cut/pool_g.npy').data as Float32Array;
  const tensor = '/body/maxpool/MaxPool_output_0';
  const cut = moveInitializersToInputs(pruneToOutputs(model, [tensor]), ['body.conv1.weight']);
  const b = GraphBuilder.fromModel(cut);
  b.input('t', DataType.FLOAT, [2, 64, 18, 26]);
  const loss = mseLoss(b, tensor, 't');
  const m = pruneToOutputs(b.build(), [loss]);
  const g = buildGradientGraph(m, { targets: [{ loss, wrt: ['body.conv1.weight'] }], inputShapes: { images: [2, 3, 72, 104], t: [2, 64, 18, 26] } });
  saveModel(g.model, '/tmp/tg/cut/grad_pool.onnx');
  const w = model.graph.initializers.find((i) => i.name === 'body.conv1.weight')!;
  for (const n of ['/body/maxpool/MaxPool_grad_dx_out', '/body/relu/Relu_output_0', '/body/maxpool/MaxPool_out1', '/body/bn1/Mul/grad/Mul_out']) g.model.graph.outputs.push({ name: n, dataType: n.endsWith('out1') ? DataType.INT64 : DataType.FLOAT });
  const { writeNpy } = require('../../src/io/npy');
  for (const level of ['all'] as const) {
    const s = await createSession(g.model, { graphOptimizationLevel: level });
    const out = await s.run({ images: { data: x.data, dims: x.shape }, t: { data: t.data, dims: t.shape }, 'body.conv1.weight': { data: w.data, dims: w.dims } });
    const d = out[g.gradients[0].output].data as Float32Array;
    let e = 0, n = 0;
    for (let i = 0; i < ref.length; i++) { e += (d[i] - ref[i]) ** 2; n += ref[i] ** 2; }
    console.log(level, Math.sqrt(e / n));
    writeNpy('/tmp/tg/cut/c_dx.npy', out['/body/maxpool/MaxPool_grad_dx_out']);
    writeNpy('/tmp/tg/cut/c_r.npy', out['/body/relu/Relu_output_0']);
    writeNpy('/tmp/tg/cut/c_idx.npy', out['/body/maxpool/MaxPool_out1']);
    writeNpy('/tmp/tg/cut/c_dmul.npy', out['/body/bn1/Mul/grad/Mul_out']);
  }
});
