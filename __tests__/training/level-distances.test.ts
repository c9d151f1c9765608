import { levelDistance, type DistillLossKind } from '../../src/training/level-distances';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { floatTensor } from '../../src/onnx/tensor-data';
import { DataType } from '../../src/onnx/types';
import { createSession, type HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { checkGradients } from '../helpers/grad-check';
import { levelDistanceReference } from '../helpers/level-distance-reference';

const [N, C, H, W] = [3, 4, 3, 5];

function random(seed: number, n: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal(0, scale));
}

describe('level distances (per image)', () => {
  const s = random(1, N * C * H * W, 2);
  const t = random(2, N * C * H * W, 3);

  it.each([
    ['mse', 1],
    ['pkd', 1],
    ['cwd', 1],
    ['cwd', 2.5],
  ] as [DistillLossKind, number][])('%s (tau %s) matches a float64 reference', async (kind, tau) => {
    const b = new GraphBuilder({ name: 'distance' });
    b.input('S', DataType.FLOAT, ['batch', C, H, W]);
    b.input('T', DataType.FLOAT, ['batch', C, H, W]);
    b.op('Identity', [levelDistance(kind, tau)(b, 'S', 'T')], {}, { outputs: ['e'] });
    b.output('e', DataType.FLOAT, ['batch']);
    const session = await createSession(b.build());
    const feeds: Record<string, HostTensor> = {
      S: { data: s, dims: [N, C, H, W] },
      T: { data: t, dims: [N, C, H, W] },
    };
    const got = Array.from((await session.run(feeds)).e.data as Float32Array);
    await session.release();
    const want = levelDistanceReference(kind, s, t, [N, C, H, W], tau);
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 4));
    // pkd ignores the scale of either map; mse does not.
    if (kind === 'pkd') expect(Math.max(...got)).toBeLessThan(4);
  });

  it.each(['mse', 'pkd', 'cwd'] as DistillLossKind[])(
    '%s has correct gradients through a student conv (finite differences, float64 reference)',
    async (kind) => {
      const b = new GraphBuilder({ name: 'distance_grad' });
      b.input('x', DataType.FLOAT, ['batch', 2, H, W]);
      b.input('T', DataType.FLOAT, ['batch', C, H, W]);
      const w = b.initializer(floatTensor('w', [C, 2, 1, 1], random(3, C * 2, 0.7)), { exactName: true });
      const student = b.op('Conv', ['x', w], { kernel_shape: [1, 1] });
      const e = levelDistance(kind, 1.5)(b, student, 'T');
      b.op('ReduceSum', [e, b.constInt64([0], [1])], { keepdims: 0 }, { outputs: ['loss'] });
      b.output('loss', DataType.FLOAT, []);
      await checkGradients({
        model: b.build(),
        loss: 'loss',
        params: ['w'],
        feeds: {
          x: { data: random(4, N * 2 * H * W), dims: [N, 2, H, W] },
          T: { data: t, dims: [N, C, H, W] },
        },
        rtol: 2e-3,
      });
    },
  );
});
