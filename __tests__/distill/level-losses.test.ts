import { levelDistance, type DistillLossKind } from '../../src/distill/level-losses';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { floatTensor } from '../../src/onnx/tensor-data';
import { DataType } from '../../src/onnx/types';
import { createSession, type HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { checkGradients } from '../helpers/grad-check';

const [N, C, H, W] = [3, 4, 3, 5];

function random(seed: number, n: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal(0, scale));
}

/** float64 references, written from the papers' formulas. */
function reference(kind: DistillLossKind, s: Float32Array, t: Float32Array, tau: number): number[] {
  const hw = H * W;
  const at = (x: Float32Array, n: number, c: number, i: number) => x[(n * C + c) * hw + i];
  const out: number[] = [];
  for (let n = 0; n < N; n++) {
    let acc = 0;
    for (let c = 0; c < C; c++) {
      const sv = Array.from({ length: hw }, (_, i) => at(s, n, c, i));
      const tv = Array.from({ length: hw }, (_, i) => at(t, n, c, i));
      if (kind === 'mse') acc += sv.reduce((a, x, i) => a + (x - tv[i]) ** 2, 0) / hw;
      if (kind === 'pkd') {
        const norm = (v: number[]) => {
          const m = v.reduce((a, b) => a + b, 0) / hw;
          const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (hw - 1) + 1e-10);
          return v.map((x) => (x - m) / (sd + 1e-6));
        };
        const a = norm(sv);
        const b = norm(tv);
        acc += a.reduce((q, x, i) => q + (x - b[i]) ** 2, 0) / hw / 2;
      }
      if (kind === 'cwd') {
        const logSoftmax = (v: number[]) => {
          const z = v.map((x) => x / tau);
          const mx = Math.max(...z);
          const lse = mx + Math.log(z.reduce((a, x) => a + Math.exp(x - mx), 0));
          return z.map((x) => x - lse);
        };
        const ls = logSoftmax(sv);
        const lt = logSoftmax(tv);
        acc += tau * tau * lt.reduce((q, x, i) => q + Math.exp(x) * (x - ls[i]), 0);
      }
    }
    out.push(acc / C);
  }
  return out;
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
    const want = reference(kind, s, t, tau);
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
