import { GraphBuilder } from '../../src/onnx/graph-builder';
import { Rng } from '../../src/util/rng';
import { DataType } from '../../src/onnx/types';
import { createSession, type HostTensor } from '../../src/runtime';
import {
  appendLoss,
  crossEntropyWithLogits,
  featureDistillationLoss,
  l1Loss,
  mseLoss,
  smoothL1Loss,
} from '../../src/training/losses';

/** A seeded stream of uniform numbers in [-1, 1) from the project's RNG. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.uniform(-1, 1);
}

const rand = (r: () => number, n: number, scale = 1): Float32Array =>
  Float32Array.from({ length: n }, () => r() * scale);
const scalar = (t: HostTensor): number => (t.data as Float32Array)[0];

async function runGraph(
  b: GraphBuilder,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const session = await createSession(b.build());
  const out = await session.run(feeds);
  await session.release();
  return out;
}

describe('losses as graph pieces (forward values against float64 references)', () => {
  const r = rng(11);
  const n = 24;
  const pred = rand(r, n, 2);
  const target = rand(r, n, 2);
  const diffs = Array.from(pred, (p, i) => p - target[i]);

  it.each([
    ['mse', (b: GraphBuilder) => mseLoss(b, 'pred', 'target'), diffs.reduce((a, d) => a + d * d, 0) / n],
    ['l1', (b: GraphBuilder) => l1Loss(b, 'pred', 'target'), diffs.reduce((a, d) => a + Math.abs(d), 0) / n],
    [
      'smoothL1 beta 0.5',
      (b: GraphBuilder) => smoothL1Loss(b, 'pred', 'target', 0.5),
      diffs.reduce((a, d) => a + (Math.abs(d) < 0.5 ? (0.5 * d * d) / 0.5 : Math.abs(d) - 0.25), 0) / n,
    ],
    [
      'smoothL1 beta 0 (= l1)',
      (b: GraphBuilder) => smoothL1Loss(b, 'pred', 'target', 0),
      diffs.reduce((a, d) => a + Math.abs(d), 0) / n,
    ],
  ])('%s', async (_name, build, want) => {
    const b = new GraphBuilder();
    b.input('pred', DataType.FLOAT, [2, 3, 4]);
    b.input('target', DataType.FLOAT, [2, 3, 4]);
    b.output(b.op('Identity', [build(b)], {}, { outputs: ['loss'] }), DataType.FLOAT, []);
    const out = await runGraph(b, {
      pred: { data: pred, dims: [2, 3, 4] },
      target: { data: target, dims: [2, 3, 4] },
    });
    expect(out.loss.dims).toEqual([]);
    expect(Math.abs(scalar(out.loss) - want)).toBeLessThan(1e-6 * Math.max(1, want));
  });

  it('smoothL1 mixes both branches in this fixture', () => {
    expect(diffs.some((d) => Math.abs(d) < 0.5)).toBe(true);
    expect(diffs.some((d) => Math.abs(d) >= 0.5)).toBe(true);
  });

  it('cross-entropy with logits equals −mean log_softmax at the label', async () => {
    const logits = rand(r, 4 * 5, 3);
    const labels = [0, 4, 2, 2];
    const b = new GraphBuilder();
    b.input('logits', DataType.FLOAT, ['batch', 5]);
    b.input('labels', DataType.INT64, ['batch']);
    b.output(b.op('Identity', [crossEntropyWithLogits(b, 'logits', 'labels')], {}, { outputs: ['loss'] }));
    const out = await runGraph(b, {
      logits: { data: logits, dims: [4, 5] },
      labels: { data: BigInt64Array.from(labels.map(BigInt)), dims: [4] },
    });
    let want = 0;
    for (let i = 0; i < 4; i++) {
      const row = Array.from(logits.subarray(i * 5, i * 5 + 5));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
      want -= row[labels[i]] - lse;
    }
    want /= 4;
    expect(Math.abs(scalar(out.loss) - want)).toBeLessThan(1e-6 * Math.max(1, want));
  });

  it('masked, weighted per-level distillation loss: total, unweighted level losses and per-sample matrix', async () => {
    const N = 3;
    const shapes = [
      [N, 2, 4, 4],
      [N, 3, 2, 2],
    ];
    const size = (s: number[]): number => s.reduce((a, x) => a * x, 1);
    const S = shapes.map((s) => rand(r, size(s)));
    const T = shapes.map((s) => rand(r, size(s)));
    const mask = [1, 0, 1, 1, 0, 0]; // sample 2 selects nothing: it still counts in N
    const weights = [0.7, 1.6];
    const b = new GraphBuilder();
    shapes.forEach((s, l) => {
      b.input(`s${l}`, DataType.FLOAT, ['batch', ...s.slice(1)]);
      b.input(`t${l}`, DataType.FLOAT, ['batch', ...s.slice(1)]);
    });
    b.input('mask', DataType.FLOAT, ['batch', 2]);
    b.input('weights', DataType.FLOAT, [2]);
    const t = featureDistillationLoss(b, {
      levels: [
        { name: 'p2', student: 's0', teacher: 't0' },
        { name: 'p3', student: 's1', teacher: 't1' },
      ],
      mask: 'mask',
      weights: 'weights',
      perSample: true,
    });
    b.output(b.op('Identity', [t.loss], {}, { outputs: ['loss'] }));
    t.levelLosses.forEach((l, i) => b.output(b.op('Identity', [l], {}, { outputs: [`level${i}`] })));
    b.output(b.op('Identity', [t.perSample!], {}, { outputs: ['per_sample'] }));
    const feeds: Record<string, HostTensor> = {
      mask: { data: Float32Array.from(mask), dims: [N, 2] },
      weights: { data: Float32Array.from(weights), dims: [2] },
    };
    shapes.forEach((s, l) => {
      feeds[`s${l}`] = { data: S[l], dims: s };
      feeds[`t${l}`] = { data: T[l], dims: s };
    });
    const out = await runGraph(b, feeds);
    // float64 reference: e[n,l] = mean over c,h,w; L_l = Σ_n m·e / N; L = Σ_l w_l L_l.
    const e = shapes.map((s, l) => {
      const per = size(s) / N;
      return Array.from({ length: N }, (_, i) => {
        let acc = 0;
        for (let k = 0; k < per; k++) acc += (S[l][i * per + k] - T[l][i * per + k]) ** 2;
        return acc / per;
      });
    });
    const levelRef = [0, 1].map((l) => e[l].reduce((a, x, i) => a + mask[i * 2 + l] * x, 0) / N);
    const totalRef = levelRef[0] * weights[0] + levelRef[1] * weights[1];
    let direct = 0; // the definition read literally: mean over n of Σ_l m·w·e
    for (let i = 0; i < N; i++) for (let l = 0; l < 2; l++) direct += mask[i * 2 + l] * weights[l] * e[l][i];
    direct /= N;
    expect(Math.abs(totalRef - direct)).toBeLessThan(1e-12);
    expect(Math.abs(scalar(out.loss) - totalRef)).toBeLessThan(1e-6);
    expect(Math.abs(scalar(out.level0) - levelRef[0])).toBeLessThan(1e-6);
    expect(Math.abs(scalar(out.level1) - levelRef[1])).toBeLessThan(1e-6);
    expect(out.per_sample.dims).toEqual([N, 2]);
    Array.from(out.per_sample.data as Float32Array).forEach((x, k) =>
      expect(Math.abs(x - e[k % 2][Math.floor(k / 2)])).toBeLessThan(1e-6),
    );
  });

  it('appendLoss(distillation) adds teacher, mask and weight inputs and named outputs', () => {
    const b = new GraphBuilder();
    b.input('x', DataType.FLOAT, ['batch', 1, 4, 4]);
    const p2 = b.op('Relu', ['x'], {}, { outputs: ['p2'] });
    const p3 = b.op('MaxPool', [p2], { kernel_shape: [2, 2], strides: [2, 2] }, { outputs: ['p3'] });
    b.output(p2, DataType.FLOAT, ['batch', 1, 4, 4]);
    b.output(p3, DataType.FLOAT, ['batch', 1, 2, 2]);
    const model = b.build();
    const b2 = GraphBuilder.fromModel(model);
    const added = appendLoss(b2, model, {
      type: 'distillation',
      levels: [{ student: 'p2' }, { student: 'p3' }],
    });
    expect(added.inputs.map((i) => [i.name, i.shape])).toEqual([
      ['teacher.p2', ['batch', 1, 4, 4]],
      ['teacher.p3', ['batch', 1, 2, 2]],
      ['distill.mask', ['batch', 2]],
      ['distill.weights', [2]],
    ]);
    expect(added.loss).toBe('distill.loss');
    expect(added.extraOutputs.map((o) => o.name)).toEqual([
      'distill.level_loss.p2',
      'distill.level_loss.p3',
      'distill.per_sample',
    ]);
    expect(() =>
      appendLoss(GraphBuilder.fromModel(model), model, { type: 'mse', outputs: ['nope'] }),
    ).toThrow(/'nope' is not an output of graph/);
  });
});
