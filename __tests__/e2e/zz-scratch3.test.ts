import { loadModel } from '../../src/onnx';
import { readNpy } from '../../src/io/npy';
import { computeGradients } from '../../src/training/gradients';
import { pruneToOutputs } from '../../src/training/graph-edit';

it('cut', async () => {
  const model = loadModel('/tmp/tg/r18/model.onnx');
  const x = readNpy('/tmp/tg/r18/inputs/images.npy');
  for (const [name, tensor] of [['conv', '/body/conv1/Conv_output_0'], ['add', '/body/bn1/Add_output_0'], ['relu', '/body/relu/Relu_output_0'], ['pool', '/body/maxpool/MaxPool_output_0']]) {
    const cut = pruneToOutputs(model, [tensor]);
    const t = readNpy(`/tmp/tg/cut/${name}_t.npy`);
    const ref = readNpy(`/tmp/tg/cut/${name}_g.npy`).data as Float32Array;
    const r = await computeGradients(cut, { inputs: { images: { data: x.data, dims: x.shape } }, targets: { [tensor]: { data: t.data, dims: t.shape } } });
    const g = r.gradients.get('body.conv1.weight')!.data as Float32Array;
    let d = 0, n = 0;
    for (let i = 0; i < ref.length; i++) { d += (g[i] - ref[i]) ** 2; n += ref[i] ** 2; }
    console.log(name, r.loss, Math.sqrt(d / n));
  }
}, 600000);
