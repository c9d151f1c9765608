import { DataType, GraphBuilder, floatTensor } from '../../src/onnx';
import { checkGradients } from '../helpers/grad-check';
import { createRng } from '../../src/util';
import { runReference } from '../helpers/reference';

async function run(stages: string[], H: number, W: number, vals: 'random' | 'distinct' = 'random') {
  const rng = createRng(1);
  const b = new GraphBuilder({ name: 'stem', opset: 17 });
  const C = 4;
  const w = Array.from({ length: C * 3 * 49 }, () => rng.uniform(-1, 1) * 0.2);
  b.initializer(floatTensor('w', [C, 3, 7, 7], w), { exactName: true });
  b.input('x', DataType.FLOAT, [1, 3, H, W]);
  let y = b.op('Conv', ['x', 'w'], { kernel_shape: [7, 7], strides: [2, 2], pads: [3, 3, 3, 3] });
  for (const s of stages) {
    if (s === 'relu') y = b.op('Relu', [y]);
    if (s === 'pool') y = b.op('MaxPool', [y], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  }
  const fwd = b.build();
  fwd.graph.outputs = [{ name: y, dataType: DataType.FLOAT }];
  const feeds = { x: { data: Float32Array.from({ length: 3 * H * W }, () => rng.uniform(-1, 1)), dims: [1, 3, H, W] } };
  const yv = runReference(fwd, feeds).get(y)!;
  const r = b.constFloat(Array.from({ length: yv.data.length }, () => rng.uniform(-1, 1)), yv.dims, 'R');
  const loss = b.op('ReduceSum', [b.op('Mul', [y, r])], { keepdims: 0 });
  b.output(loss, DataType.FLOAT, []);
  try {
    const rep = await checkGradients({ model: b.build(), loss, params: ['w'], feeds, rtol: 1e-4 });
    console.log(stages.join('+') || 'conv', H, W, 'ok', rep.params[0].relL2);
  } catch (e) {
    console.log(stages.join('+') || 'conv', H, W, 'FAIL', (e as Error).message.slice(0, 400));
  }
}

it('stem', async () => {
  for (const [H, W] of [[24, 32], [18, 26], [23, 29]]) {
    await run([], H, W);
    await run(['relu'], H, W);
    await run(['relu', 'pool'], H, W);
    await run(['pool'], H, W);
  }
}, 600000);
