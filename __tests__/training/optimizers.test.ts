import { spawnSync } from 'node:child_process';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { Rng } from '../../src/util/rng';
import { DataType } from '../../src/onnx/types';
import { createSession, type GraphSession, type HostTensor } from '../../src/runtime';
import { findTorchPython } from '../../src/tools/python';
import { optionalReference, TORCH_INSTALL_HINT } from '../helpers/optional-reference';
import {
  GRAD_NORM_OUTPUT,
  OPTIMIZER_INPUTS,
  appendGlobalNormClip,
  buildOptimizerModel,
  resolveOptimizerConfig,
  stateTensorName,
  updatedName,
  type OptimizerConfig,
  type ResolvedAdamW,
  type ResolvedSgd,
} from '../../src/training/optimizers';

/** A seeded stream of uniform numbers in [-1, 1) from the project's RNG. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.uniform(-1, 1);
}

const scalarF = (v: number): HostTensor => ({ data: Float32Array.of(v), dims: [] });
const scalarI = (v: number): HostTensor => ({ data: BigInt64Array.of(BigInt(v)), dims: [] });

/** float64 PyTorch AdamW on plain arrays (in place). */
function adamwRef(
  c: ResolvedAdamW,
  name: string,
  p: number[],
  g: number[],
  m: number[],
  v: number[],
  lr: number,
  t: number,
): void {
  const [b1, b2] = c.betas;
  const wd = c.noWeightDecay.includes(name) ? 0 : c.weightDecay;
  const bc1 = 1 - b1 ** t;
  const bc2 = 1 - b2 ** t;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - lr * wd;
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    p[i] -= ((lr / bc1) * m[i]) / (Math.sqrt(v[i]) / Math.sqrt(bc2) + c.eps);
  }
}

/** float64 PyTorch SGD on plain arrays (in place); buf is undefined before the first step. */
function sgdRef(
  c: ResolvedSgd,
  name: string,
  p: number[],
  g: number[],
  buf: number[] | undefined,
  lr: number,
): number[] | undefined {
  const wd = c.noWeightDecay.includes(name) ? 0 : c.weightDecay;
  const d = g.map((gi, i) => gi + wd * p[i]);
  let out = buf;
  if (c.momentum > 0) {
    out = buf ? buf.map((bi, i) => c.momentum * bi + (1 - c.dampening) * d[i]) : [...d];
    for (let i = 0; i < d.length; i++) d[i] = c.nesterov ? d[i] + c.momentum * out[i] : out[i];
  }
  for (let i = 0; i < p.length; i++) p[i] -= lr * d[i];
  return out;
}

const PARAMS = [
  { name: 'conv.weight', dims: [3, 2] },
  { name: 'conv.bias', dims: [4] },
];

/**
 * Runs the optimizer graph for `lrs.length` steps with random gradients; at every step the float64
 * reference starts from the graph's own float32 inputs, so the error measured is that of one update.
 */
async function maxStepError(config: OptimizerConfig, lrs: number[]): Promise<number> {
  const resolved = resolveOptimizerConfig(config);
  const session: GraphSession = await createSession(buildOptimizerModel(PARAMS, config));
  const r = rng(7);
  const stateNames =
    resolved.type === 'adamw' ? ['exp_avg', 'exp_avg_sq'] : resolved.momentum > 0 ? ['momentum_buffer'] : [];
  const values: Record<string, Float32Array> = {};
  for (const p of PARAMS) {
    const n = p.dims.reduce((a, b) => a * b, 1);
    values[p.name] = Float32Array.from({ length: n }, () => r());
    for (const s of stateNames) values[stateTensorName(p.name, s)] = new Float32Array(n);
  }
  let maxRel = 0;
  // Error relative to the tensor's scale (its largest magnitude): entries near zero after cancellation
  // (momentum buffers, moments) would otherwise turn float32 rounding of O(scale) terms into huge ratios.
  const compare = (got: Float32Array, want: number[]): void => {
    const scale = Math.max(...want.map(Math.abs), 1e-12);
    got.forEach((x, i) => {
      maxRel = Math.max(maxRel, Math.abs(x - want[i]) / scale);
    });
  };
  for (let t = 1; t <= lrs.length; t++) {
    const lr = lrs[t - 1];
    const feeds: Record<string, HostTensor> = {
      [OPTIMIZER_INPUTS.learningRate]: scalarF(lr),
      [OPTIMIZER_INPUTS.step]: scalarI(t),
    };
    const grads: Record<string, Float32Array> = {};
    for (const p of PARAMS) {
      grads[p.name] = Float32Array.from({ length: values[p.name].length }, () => r() * 0.5);
      feeds[p.name] = { data: values[p.name], dims: p.dims };
      feeds[`${p.name}_grad`] = { data: grads[p.name], dims: p.dims };
      for (const s of stateNames)
        feeds[stateTensorName(p.name, s)] = { data: values[stateTensorName(p.name, s)], dims: p.dims };
    }
    const out = await session.run(feeds);
    for (const p of PARAMS) {
      const pRef = Array.from(values[p.name]);
      const g = Array.from(grads[p.name]);
      const got = (name: string): Float32Array => out[updatedName(name)].data as Float32Array;
      if (resolved.type === 'adamw') {
        const m = Array.from(values[stateTensorName(p.name, 'exp_avg')]);
        const v = Array.from(values[stateTensorName(p.name, 'exp_avg_sq')]);
        adamwRef(resolved, p.name, pRef, g, m, v, lr, t);
        compare(got(stateTensorName(p.name, 'exp_avg')), m);
        compare(got(stateTensorName(p.name, 'exp_avg_sq')), v);
      } else {
        const bufName = stateTensorName(p.name, 'momentum_buffer');
        const buf = stateNames.length && t > 1 ? Array.from(values[bufName]) : undefined;
        const bufRef = sgdRef(resolved, p.name, pRef, g, buf, lr);
        if (bufRef) compare(got(bufName), bufRef);
      }
      compare(got(p.name), pRef);
    }
    for (const name of Object.keys(values)) values[name] = out[updatedName(name)].data as Float32Array;
  }
  await session.release();
  return maxRel;
}

describe('optimizer graphs', () => {
  it('AdamW first step equals the hand-computed value', async () => {
    const session = await createSession(
      buildOptimizerModel([{ name: 'w', dims: [2] }], { type: 'adamw', lr: 0.1, weightDecay: 0.01 }),
    );
    const out = await session.run({
      [OPTIMIZER_INPUTS.learningRate]: scalarF(0.1),
      [OPTIMIZER_INPUTS.step]: scalarI(1),
      w: { data: Float32Array.of(1, -2), dims: [2] },
      w_grad: { data: Float32Array.of(0.5, -0.25), dims: [2] },
      'w.exp_avg': { data: new Float32Array(2), dims: [2] },
      'w.exp_avg_sq': { data: new Float32Array(2), dims: [2] },
    });
    // p·(1 − 0.1·0.01) − 0.1·g/(|g| + 1e-8): m̂ = g and v̂ = g² after bias correction.
    const w = out['w.updated'].data as Float32Array;
    expect(w[0]).toBeCloseTo(0.999 - (0.1 * 0.5) / (0.5 + 1e-8), 6);
    expect(w[1]).toBeCloseTo(-2 * 0.999 + (0.1 * 0.25) / (0.25 + 1e-8), 6);
    expect(Array.from(out['w.exp_avg.updated'].data as Float32Array)).toEqual([
      Math.fround(0.05),
      Math.fround(-0.025),
    ]);
    const v = out['w.exp_avg_sq.updated'].data as Float32Array;
    expect(v[0]).toBeCloseTo(0.001 * 0.25, 9);
    await session.release();
  });

  it('SGD with momentum and L2 weight decay equals two hand-computed steps', async () => {
    const session = await createSession(
      buildOptimizerModel([{ name: 'w', dims: [1] }], {
        type: 'sgd',
        lr: 0.1,
        momentum: 0.9,
        weightDecay: 0.1,
      }),
    );
    const step = async (t: number, p: Float32Array, buf: Float32Array): Promise<Record<string, HostTensor>> =>
      session.run({
        [OPTIMIZER_INPUTS.learningRate]: scalarF(0.1),
        [OPTIMIZER_INPUTS.step]: scalarI(t),
        w: { data: p, dims: [1] },
        w_grad: { data: Float32Array.of(0.5), dims: [1] },
        'w.momentum_buffer': { data: buf, dims: [1] },
      });
    const s1 = await step(1, Float32Array.of(1), Float32Array.of(0));
    // d = 0.5 + 0.1·1 = 0.6; buf = 0.6; p = 1 − 0.06
    expect((s1['w.updated'].data as Float32Array)[0]).toBeCloseTo(0.94, 6);
    const s2 = await step(
      2,
      s1['w.updated'].data as Float32Array,
      s1['w.momentum_buffer.updated'].data as Float32Array,
    );
    // d = 0.5 + 0.094 = 0.594; buf = 0.9·0.6 + 0.594 = 1.134; p = 0.94 − 0.1134
    expect((s2['w.momentum_buffer.updated'].data as Float32Array)[0]).toBeCloseTo(1.134, 6);
    expect((s2['w.updated'].data as Float32Array)[0]).toBeCloseTo(0.8266, 6);
    await session.release();
  });

  it.each<[string, OptimizerConfig]>([
    ['AdamW defaults', { type: 'adamw' }],
    [
      'AdamW, no decay on the bias',
      { type: 'adamw', weightDecay: 0.1, betas: [0.8, 0.99], eps: 1e-6, noWeightDecay: ['conv.bias'] },
    ],
    ['SGD plain', { type: 'sgd' }],
    ['SGD momentum + dampening', { type: 'sgd', momentum: 0.9, dampening: 0.3, weightDecay: 0.01 }],
    ['SGD Nesterov', { type: 'sgd', momentum: 0.8, nesterov: true, weightDecay: 0.05 }],
  ])('%s matches a float64 reference over 4 steps with a changing learning rate', async (_name, config) => {
    const maxRel = await maxStepError(config, [0.1, 0.05, 0.02, 0.3]);
    console.log(
      `${_name}: max error relative to tensor scale vs float64 reference ${maxRel.toExponential(2)}`,
    );
    expect(maxRel).toBeLessThan(1e-6);
  });

  it('rejects invalid hyperparameters with a message naming the field', () => {
    expect(() => resolveOptimizerConfig({ type: 'adamw', betas: [1, 0.9] })).toThrow(/betas\[0\]/);
    expect(() => resolveOptimizerConfig({ type: 'sgd', nesterov: true })).toThrow(/nesterov needs momentum/);
    expect(() => resolveOptimizerConfig({ type: 'sgd', lr: -1 })).toThrow(/lr must be/);
  });

  it('global-norm clipping matches PyTorch clip_grad_norm_ semantics', async () => {
    const b = new GraphBuilder({ name: 'clip' });
    const g1 = b.input('g1', DataType.FLOAT, [3]);
    const g2 = b.input('g2', DataType.FLOAT, [2, 2]);
    const maxNorm = b.input(OPTIMIZER_INPUTS.maxGradNorm, DataType.FLOAT, []);
    const clipped = appendGlobalNormClip(b, [g1, g2], maxNorm);
    b.output(b.op('Identity', [clipped.grads[0]], {}, { outputs: ['c1'] }));
    b.output(b.op('Identity', [clipped.grads[1]], {}, { outputs: ['c2'] }));
    b.output(b.op('Identity', [clipped.norm], {}, { outputs: [GRAD_NORM_OUTPUT] }));
    const session = await createSession(b.build());
    const g1v = [3, -4, 0];
    const g2v = [1, 2, -2, 0.5];
    const norm = Math.sqrt([...g1v, ...g2v].reduce((a, x) => a + x * x, 0));
    for (const bound of [1, 100, Infinity]) {
      const out = await session.run({
        g1: { data: Float32Array.from(g1v), dims: [3] },
        g2: { data: Float32Array.from(g2v), dims: [2, 2] },
        [OPTIMIZER_INPUTS.maxGradNorm]: scalarF(bound),
      });
      const coef = Math.min(bound / (norm + 1e-6), 1);
      expect((out[GRAD_NORM_OUTPUT].data as Float32Array)[0]).toBeCloseTo(norm, 5);
      Array.from(out.c1.data as Float32Array).forEach((x, i) => expect(x).toBeCloseTo(g1v[i] * coef, 6));
      Array.from(out.c2.data as Float32Array).forEach((x, i) => expect(x).toBeCloseTo(g2v[i] * coef, 6));
    }
    await session.release();
  });

  const torchPython = optionalReference('the torch.optim cross-check', findTorchPython(), TORCH_INSTALL_HINT);
  (torchPython ? it : it.skip)(
    'AdamW and SGD-Nesterov match torch.optim over 3 steps (optional, needs PyTorch)',
    async () => {
      const script = `
import json, sys, torch
cfg = json.loads(sys.argv[1])
out = {}
for name, make in [('adamw', lambda p: torch.optim.AdamW([p], lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)),
                   ('sgd', lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1))]:
    p = torch.tensor(cfg['p'], dtype=torch.float32, requires_grad=True)
    opt = make(p)
    for g in cfg['grads']:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    out[name] = p.detach().tolist()
print(json.dumps(out))
`;
      const p0 = [0.5, -1.5, 2, 0.25];
      const grads = [
        [0.1, -0.2, 0.3, 0],
        [-0.5, 0.4, 0.1, 0.2],
        [0.05, 0.05, -0.3, 1],
      ];
      const r = spawnSync(torchPython!, ['-c', script, JSON.stringify({ p: p0, grads })], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(r.stderr);
      const torchOut = JSON.parse(r.stdout) as Record<string, number[]>;
      const configs: Record<string, OptimizerConfig> = {
        adamw: { type: 'adamw', lr: 0.05, betas: [0.9, 0.99], weightDecay: 0.1 },
        sgd: { type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.1 },
      };
      for (const [name, config] of Object.entries(configs)) {
        const resolved = resolveOptimizerConfig(config);
        const session = await createSession(buildOptimizerModel([{ name: 'p', dims: [4] }], config));
        let p: Float32Array = Float32Array.from(p0);
        const state: Record<string, Float32Array> = {};
        const stateNames = resolved.type === 'adamw' ? ['exp_avg', 'exp_avg_sq'] : ['momentum_buffer'];
        for (const s of stateNames) state[s] = new Float32Array(4);
        for (let t = 1; t <= grads.length; t++) {
          const feeds: Record<string, HostTensor> = {
            [OPTIMIZER_INPUTS.learningRate]: scalarF(0.05),
            [OPTIMIZER_INPUTS.step]: scalarI(t),
            p: { data: p, dims: [4] },
            p_grad: { data: Float32Array.from(grads[t - 1]), dims: [4] },
          };
          for (const s of stateNames) feeds[`p.${s}`] = { data: state[s], dims: [4] };
          const out = await session.run(feeds);
          p = out['p.updated'].data as Float32Array;
          for (const s of stateNames) state[s] = out[`p.${s}.updated`].data as Float32Array;
        }
        const maxAbs = Math.max(...Array.from(p).map((x, i) => Math.abs(x - torchOut[name][i])));
        console.log(`${name} vs torch.optim: max abs difference ${maxAbs.toExponential(2)}`);
        expect(maxAbs).toBeLessThan(1e-6);
        await session.release();
      }
    },
  );
});
