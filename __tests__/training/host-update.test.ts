import { RlpkdError } from '../../src/errors';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { DataType } from '../../src/onnx/types';
import { createSession, type HostTensor } from '../../src/runtime';
import {
  HostUpdateKernels,
  HostUpdateMemory,
  hostUpdateSupported,
  type AdamWScalars,
  type SgdScalars,
  adamwUpdateScalars,
  clipCoefficient,
  sgdUpdateScalars,
} from '../../src/training/host-update';
import {
  GRAD_NORM_OUTPUT,
  OPTIMIZER_INPUTS,
  appendGlobalNormClip,
  appendOptimizerUpdate,
  buildOptimizerModel,
  resolveOptimizerConfig,
  stateTensorName,
  updatedName,
  type OptimizerConfig,
  type ResolvedAdamW,
  type ResolvedSgd,
} from '../../src/training/optimizers';
import { FunctionBody, ValType, encodeModule, sleb128, uleb128 } from '../../src/training/wasm-encoder';
import { createRng, type Rng } from '../../src/util/rng';

const f = Math.fround;

/** Reference AdamW: one Math.fround per float32 op, in appendOptimizerUpdate's order (in place). */
function adamwReference(
  p: Float32Array,
  grad: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: AdamWScalars,
): void {
  for (let i = 0; i < p.length; i++) {
    const g = f(grad[i] * s.gradScale);
    const p1 = s.decay === undefined ? p[i] : f(p[i] * s.decay);
    const m1 = f(f(m[i] * s.beta1) + f(g * s.oneMinusBeta1));
    const g2 = f(g * g);
    const v1 = f(f(v[i] * s.beta2) + f(g2 * s.oneMinusBeta2));
    const denom = f(f(f(Math.sqrt(v1)) / s.bc2Sqrt) + s.eps);
    p[i] = f(p1 + f(f(m1 / denom) * s.negStepSize));
    m[i] = m1;
    v[i] = v1;
  }
}

/** Reference SGD: one Math.fround per float32 op, in appendOptimizerUpdate's order (in place). */
function sgdReference(p: Float32Array, grad: Float32Array, buf: Float32Array | null, s: SgdScalars): void {
  const wd = s.weightDecay !== undefined && s.weightDecay !== 0 ? s.weightDecay : undefined;
  for (let i = 0; i < p.length; i++) {
    const g = f(grad[i] * s.gradScale);
    let d = wd === undefined ? g : f(g + f(p[i] * wd));
    if (buf) {
      const decayed = f(buf[i] * s.momentum!);
      const buf1 =
        s.firstStep && s.dampening !== 0
          ? d
          : s.dampening !== 0
            ? f(decayed + f(d * s.oneMinusDampening))
            : f(decayed + d);
      buf[i] = buf1;
      d = s.nesterov ? f(d + f(buf1 * s.momentum!)) : buf1;
    }
    p[i] = f(p[i] + f(d * s.negLr));
  }
}

/** Values spread over several orders of magnitude (float32 rounding then matters in every op). */
function fillSpread(rng: Rng, out: Float32Array, scale: number): void {
  for (let i = 0; i < out.length; i++) out[i] = rng.normal() * scale * 10 ** rng.uniform(-3, 0);
}

/** Index and values of the first element where two arrays differ as float32 bit patterns (Object.is). */
function firstDifference(got: Float32Array, want: Float32Array): string | undefined {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) return `[${i}]: got ${got[i]}, want ${want[i]}`;
  }
  return undefined;
}

function expectBitEqual(got: Float32Array, want: Float32Array, what: string): void {
  expect({ what, difference: firstDifference(got, want) }).toEqual({ what, difference: undefined });
}

const adamwScalars = (c: ResolvedAdamW, lr32: number, t: number, gradScale: number, decays: boolean) =>
  adamwUpdateScalars(c, t, lr32, gradScale, decays);
const sgdScalars = (c: ResolvedSgd, lr32: number, t: number, gradScale: number) =>
  sgdUpdateScalars(c, t, lr32, gradScale, true);

const LENGTHS = [1, 3, 4, 5, 17, 1000];

describe('wasm encoder', () => {
  it('encodes LEB128 like the spec examples', () => {
    expect(uleb128(0)).toEqual([0]);
    expect(uleb128(127)).toEqual([0x7f]);
    expect(uleb128(128)).toEqual([0x80, 0x01]);
    expect(uleb128(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(uleb128(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(sleb128(0)).toEqual([0]);
    expect(sleb128(-1)).toEqual([0x7f]);
    expect(sleb128(63)).toEqual([0x3f]);
    expect(sleb128(64)).toEqual([0xc0, 0x00]);
    expect(sleb128(-64)).toEqual([0x40]);
    expect(sleb128(-65)).toEqual([0xbf, 0x7f]);
    expect(sleb128(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(() => uleb128(-1)).toThrow(RlpkdError);
    expect(() => sleb128(2 ** 31)).toThrow(RlpkdError);
  });

  it('emits a module V8 compiles and runs (f32 arithmetic, a loop, locals)', () => {
    // sumTo(n) = 1 + 2 + ... + n as f32 via a counting loop; mulSub(a, b) = a * b - b.
    const sum = new FunctionBody([ValType.i32]);
    const acc = sum.local(ValType.f32);
    const i = sum.local(ValType.i32);
    sum.block().localGet(0).i32Eqz().brIf(0).loop();
    sum.localGet(i).i32Const(1).i32Add().localSet(i);
    sum.localGet(acc).f32Const(1).f32('add').localSet(acc); // acc += 1 ...
    sum.localGet(i).localGet(0).i32LtU().brIf(0).end().end();
    sum.localGet(acc);
    const mulSub = new FunctionBody([ValType.f32, ValType.f32]);
    mulSub.localGet(0).localGet(1).f32('mul').localGet(1).f32('sub');
    const bytes = encodeModule({
      functions: [
        { name: 'count', results: [ValType.f32], body: sum },
        { name: 'mulSub', results: [ValType.f32], body: mulSub },
      ],
    });
    const wasm = (globalThis as unknown as { WebAssembly: WasmForTest }).WebAssembly;
    const exports = new wasm.Instance(new wasm.Module(bytes), {}).exports as Record<
      string,
      (...a: number[]) => number
    >;
    expect(exports.count(0)).toBe(0);
    expect(exports.count(1000)).toBe(1000);
    expect(exports.mulSub(3, 0.5)).toBe(1);
  });
});

/** The WebAssembly constructors the encoder test calls (the project's TS libs declare none). */
interface WasmForTest {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: Record<string, never>) => { exports: Record<string, unknown> };
}

describe('host update kernels vs a float32 reference', () => {
  it('are supported by this engine', () => {
    expect(hostUpdateSupported()).toBe(true);
  });

  /** Runs `steps` updates of both the kernels and the reference on identical inputs and compares. */
  function compareAdamW(n: number, decay: boolean, gradScale: number, misaligned: boolean): void {
    const rng = createRng(`adamw-${n}-${decay}-${gradScale}-${misaligned}`);
    const extra = misaligned ? 1 : 0;
    const memory = HostUpdateMemory.create(4 * (n + extra));
    const kernels = HostUpdateKernels.create(memory);
    const [p, g, m, v] = [0, 1, 2, 3].map(() => memory.alloc(n + extra).subarray(extra));
    fillSpread(rng, p, 1);
    const [rp, rm, rv] = [p.slice(), m.slice(), v.slice()];
    const c = resolveOptimizerConfig({ type: 'adamw', lr: 3e-3, weightDecay: 0.05 }) as ResolvedAdamW;
    for (let t = 1; t <= 3; t++) {
      fillSpread(rng, g, 0.1);
      const s = adamwScalars(c, f(3e-3 * t), t, gradScale, decay);
      kernels.adamw(p, g, m, v, s);
      adamwReference(rp, g, rm, rv, s);
      const what = `adamw n=${n} decay=${decay} gradScale=${gradScale} misaligned=${misaligned} step ${t}`;
      expectBitEqual(p, rp, `${what} param`);
      expectBitEqual(m, rm, `${what} exp_avg`);
      expectBitEqual(v, rv, `${what} exp_avg_sq`);
    }
    expect(
      firstDifference(
        p,
        p.map(() => 0),
      ),
    ).toBeDefined(); // the update really wrote something
  }

  it.each(LENGTHS)('AdamW is bit-identical for length %i (decay on/off, gradScale 1 and 0.37)', (n) => {
    for (const decay of [false, true]) {
      for (const gradScale of [1, f(0.37)]) compareAdamW(n, decay, gradScale, false);
    }
  });

  it('AdamW is bit-identical on views not 16-byte aligned', () => {
    for (const n of [5, 17, 1000]) compareAdamW(n, true, f(0.81), true);
  });

  interface SgdVariant {
    momentum: number;
    dampening: number;
    nesterov: boolean;
  }
  const SGD_VARIANTS: SgdVariant[] = [
    { momentum: 0, dampening: 0, nesterov: false },
    { momentum: 0.9, dampening: 0, nesterov: false },
    { momentum: 0.9, dampening: 0.1, nesterov: false },
    { momentum: 0.9, dampening: 0, nesterov: true },
    { momentum: 0.8, dampening: 0.5, nesterov: false },
  ];

  function compareSgd(n: number, variant: SgdVariant, weightDecay: number, gradScale: number): void {
    const label = `sgd n=${n} ${JSON.stringify(variant)} wd=${weightDecay} gradScale=${gradScale}`;
    const rng = createRng(label);
    const hasBuffer = variant.momentum > 0;
    const memory = HostUpdateMemory.create(3 * n);
    const kernels = HostUpdateKernels.create(memory);
    const [p, g] = [memory.alloc(n), memory.alloc(n)];
    const buf = hasBuffer ? memory.alloc(n) : null;
    fillSpread(rng, p, 1);
    const rp = p.slice();
    const rbuf = buf ? buf.slice() : null;
    for (let t = 1; t <= 3; t++) {
      fillSpread(rng, g, 0.1);
      const s: SgdScalars = {
        gradScale,
        ...(weightDecay ? { weightDecay: f(weightDecay) } : {}),
        ...(hasBuffer ? { momentum: f(variant.momentum) } : {}),
        dampening: variant.dampening,
        oneMinusDampening: f(1 - variant.dampening),
        nesterov: variant.nesterov,
        firstStep: t === 1,
        negLr: f(-0.05 * t),
      };
      kernels.sgd(p, g, buf, s);
      sgdReference(rp, g, rbuf, s);
      expectBitEqual(p, rp, `${label} step ${t} param`);
      if (buf && rbuf) expectBitEqual(buf, rbuf, `${label} step ${t} momentum_buffer`);
    }
  }

  it.each(LENGTHS)('SGD is bit-identical for length %i (every momentum variant, wd, gradScale)', (n) => {
    for (const variant of SGD_VARIANTS) {
      for (const wd of [0, 1e-2]) {
        for (const gradScale of [1, f(0.37)]) compareSgd(n, variant, wd, gradScale);
      }
    }
  });

  it('SGD first step with dampening sets the buffer to the gradient; later steps dampen', () => {
    const memory = HostUpdateMemory.create(12);
    const kernels = HostUpdateKernels.create(memory);
    const [p, g, buf] = [memory.alloc(4), memory.alloc(4), memory.alloc(4)];
    p.set([1, 2, 3, 4]);
    g.set([0.5, -0.5, 0.25, 2]);
    buf.set([100, 100, 100, 100]); // ignored on the first step
    const s: SgdScalars = {
      gradScale: 1,
      momentum: 0.5,
      dampening: 0.5,
      oneMinusDampening: 0.5,
      nesterov: false,
      firstStep: true,
      negLr: -1,
    };
    kernels.sgd(p, g, buf, s);
    expect(Array.from(buf)).toEqual([0.5, -0.5, 0.25, 2]);
    expect(Array.from(p)).toEqual([0.5, 2.5, 2.75, 2]);
    kernels.sgd(p, g, buf, { ...s, firstStep: false }); // buf = 0.5 * buf + 0.5 * g
    expect(Array.from(buf)).toEqual([0.5, -0.5, 0.25, 2]);
    expect(Array.from(p)).toEqual([0, 3, 2.5, 0]);
  });

  it('on memory above 2 GiB (byte offsets past int32) the kernels address it correctly', () => {
    const low = 2 ** 29 + 3; // 2 GiB + 12 bytes of untouched room below the arrays
    const n = 37;
    const memory = HostUpdateMemory.create(low + 4 * n);
    memory.alloc(low);
    const kernels = HostUpdateKernels.create(memory);
    const [p, g, m, v] = [0, 1, 2, 3].map(() => memory.alloc(n));
    expect(p.byteOffset).toBeGreaterThan(2 ** 31);
    const rng = createRng('high-memory');
    fillSpread(rng, p, 1);
    fillSpread(rng, g, 0.1);
    const [rp, rm, rv] = [p.slice(), m.slice(), v.slice()];
    const s = adamwScalars(resolveOptimizerConfig({ type: 'adamw' }) as ResolvedAdamW, f(1e-3), 1, 1, true);
    kernels.adamw(p, g, m, v, s);
    adamwReference(rp, g, rm, rv, s);
    expectBitEqual(p, rp, 'param');
    expectBitEqual(m, rm, 'exp_avg');
    expectBitEqual(v, rv, 'exp_avg_sq');
  });
});

describe('host update kernels vs onnxruntime (bit identity with the graph update)', () => {
  const DIMS = [7, 143]; // 1001 values: 250 vectors and a 1-element tail
  const N = 7 * 143;
  const scalarF = (v: number): HostTensor => ({ data: Float32Array.of(v), dims: [] });
  const scalarI = (v: number): HostTensor => ({ data: BigInt64Array.of(BigInt(v)), dims: [] });

  /** Runs buildOptimizerModel's graph and the kernels side by side for 3 steps; both evolve on their own. */
  async function compareWithGraph(config: OptimizerConfig): Promise<void> {
    const resolved = resolveOptimizerConfig(config);
    const session = await createSession(buildOptimizerModel([{ name: 'w', dims: DIMS }], config));
    const stateNames =
      resolved.type === 'adamw'
        ? ['exp_avg', 'exp_avg_sq']
        : resolved.momentum > 0
          ? ['momentum_buffer']
          : [];
    const memory = HostUpdateMemory.create(N * (2 + stateNames.length));
    const kernels = HostUpdateKernels.create(memory);
    const param = memory.alloc(N);
    const grad = memory.alloc(N);
    const state: Record<string, Float32Array> = {};
    for (const s of stateNames) state[s] = memory.alloc(N);
    const rng = createRng(`ort-${JSON.stringify(config)}`);
    fillSpread(rng, param, 1);
    // The graph's copies of every tensor, fed back each step.
    let graphParam: Float32Array = param.slice();
    const graphState: Record<string, Float32Array> = {};
    for (const s of stateNames) graphState[s] = state[s].slice();
    for (let t = 1; t <= 3; t++) {
      fillSpread(rng, grad, 0.1);
      const lr32 = f(0.01 / t);
      const feeds: Record<string, HostTensor> = {
        [OPTIMIZER_INPUTS.learningRate]: scalarF(lr32),
        [OPTIMIZER_INPUTS.step]: scalarI(t),
        w: { data: graphParam, dims: DIMS },
        w_grad: { data: grad.slice(), dims: DIMS },
      };
      for (const s of stateNames) feeds[stateTensorName('w', s)] = { data: graphState[s], dims: DIMS };
      const out = await session.run(feeds);
      graphParam = out[updatedName('w')].data as Float32Array;
      for (const s of stateNames)
        graphState[s] = out[updatedName(stateTensorName('w', s))].data as Float32Array;
      if (resolved.type === 'adamw') {
        kernels.adamw(param, grad, state.exp_avg, state.exp_avg_sq, adamwScalars(resolved, lr32, t, 1, true));
      } else {
        const s = sgdScalars(resolved, lr32, t, 1);
        kernels.sgd(param, grad, resolved.momentum > 0 ? state.momentum_buffer : null, s);
      }
      const what = `${JSON.stringify(config)} step ${t}`;
      expectBitEqual(param, graphParam, `${what} param`);
      for (const s of stateNames) expectBitEqual(state[s], graphState[s], `${what} ${s}`);
    }
    await session.release();
  }

  it('AdamW with weight decay', async () => {
    await compareWithGraph({ type: 'adamw', lr: 0.01, weightDecay: 0.05 });
  });

  it('AdamW without weight decay', async () => {
    await compareWithGraph({ type: 'adamw', lr: 0.01, weightDecay: 0, betas: [0.8, 0.99], eps: 1e-6 });
  });

  it('SGD with momentum, dampening and weight decay (first step and later steps)', async () => {
    await compareWithGraph({ type: 'sgd', momentum: 0.9, dampening: 0.1, weightDecay: 1e-3 });
  });

  it('SGD with Nesterov momentum', async () => {
    await compareWithGraph({ type: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 1e-3 });
  });

  it('AdamW after global-norm clipping (gradScale = the clip coefficient)', async () => {
    const config = resolveOptimizerConfig({ type: 'adamw', lr: 0.01, weightDecay: 0.05 }) as ResolvedAdamW;
    const b = new GraphBuilder({ name: 'clipped_adamw' });
    const lr = b.input(OPTIMIZER_INPUTS.learningRate, DataType.FLOAT, []);
    const step = b.input(OPTIMIZER_INPUTS.step, DataType.INT64, []);
    const maxNorm = b.input(OPTIMIZER_INPUTS.maxGradNorm, DataType.FLOAT, []);
    const tensors = ['w', 'w_grad', 'w.exp_avg', 'w.exp_avg_sq'].map((n) => b.input(n, DataType.FLOAT, DIMS));
    const clip = appendGlobalNormClip(b, [tensors[1]], maxNorm);
    const slot = {
      name: 'w',
      param: tensors[0],
      grad: clip.grads[0],
      state: { exp_avg: tensors[2], exp_avg_sq: tensors[3] },
    };
    const result = appendOptimizerUpdate(b, [slot], config, { learningRate: lr, step });
    b.output(result.params[0], DataType.FLOAT, DIMS);
    b.output(result.states[0].exp_avg, DataType.FLOAT, DIMS);
    b.output(result.states[0].exp_avg_sq, DataType.FLOAT, DIMS);
    b.output(b.op('Identity', [clip.norm], {}, { outputs: [GRAD_NORM_OUTPUT] }), DataType.FLOAT, []);
    const session = await createSession(b.build());

    const memory = HostUpdateMemory.create(4 * N);
    const kernels = HostUpdateKernels.create(memory);
    const [param, grad, m, v] = [0, 1, 2, 3].map(() => memory.alloc(N));
    const rng = createRng('clipped-adamw');
    fillSpread(rng, param, 1);
    fillSpread(rng, grad, 0.5);
    const lr32 = f(0.01);
    const bound = f(0.25);
    const out = await session.run({
      [OPTIMIZER_INPUTS.learningRate]: scalarF(lr32),
      [OPTIMIZER_INPUTS.step]: scalarI(1),
      [OPTIMIZER_INPUTS.maxGradNorm]: scalarF(bound),
      w: { data: param.slice(), dims: DIMS },
      w_grad: { data: grad.slice(), dims: DIMS },
      'w.exp_avg': { data: m.slice(), dims: DIMS },
      'w.exp_avg_sq': { data: v.slice(), dims: DIMS },
    });
    const norm = (out[GRAD_NORM_OUTPUT].data as Float32Array)[0];
    // The host's mirror of appendGlobalNormClip's Min(Div(maxNorm, Add(norm, 1e-6)), 1), checked against it.
    const coef = clipCoefficient(norm, bound);
    expect(coef).toBeLessThan(1); // the bound really clips
    kernels.adamw(param, grad, m, v, adamwScalars(config, lr32, 1, coef, true));
    expectBitEqual(param, out[updatedName('w')].data as Float32Array, 'param');
    expectBitEqual(m, out[updatedName('w.exp_avg')].data as Float32Array, 'exp_avg');
    expectBitEqual(v, out[updatedName('w.exp_avg_sq')].data as Float32Array, 'exp_avg_sq');
    await session.release();
  });
});

const adamw = adamwScalars(resolveOptimizerConfig({ type: 'adamw' }) as ResolvedAdamW, f(1e-3), 1, 1, true);
const sgdBase: SgdScalars = {
  gradScale: 1,
  dampening: 0,
  oneMinusDampening: 1,
  nesterov: false,
  firstStep: false,
  negLr: -0.1,
};

describe('host update errors', () => {
  it('rejects views that are not in the kernels’ memory', () => {
    const memory = HostUpdateMemory.create(16);
    const kernels = HostUpdateKernels.create(memory);
    const [p, m, v] = [memory.alloc(4), memory.alloc(4), memory.alloc(4)];
    expect(() => kernels.adamw(p, new Float32Array(4), m, v, adamw)).toThrow(
      /adamw: grad is not a Float32Array view into the kernels' memory/,
    );
    const other = HostUpdateMemory.create(4);
    expect(() => kernels.adamw(p, other.alloc(4), m, v, adamw)).toThrow(/grad is not a Float32Array view/);
    const asInt = new Int32Array(memory.memory.buffer, 0, 4) as unknown as Float32Array;
    expect(() => kernels.sgd(asInt, p, null, sgdBase)).toThrow(/sgd: param is not a Float32Array view/);
  });

  it('rejects mismatched lengths and overlapping arrays', () => {
    const memory = HostUpdateMemory.create(64);
    const kernels = HostUpdateKernels.create(memory);
    const [p, g, m, v] = [memory.alloc(4), memory.alloc(4), memory.alloc(4), memory.alloc(3)];
    expect(() => kernels.adamw(p, g, m, v, adamw)).toThrow(/adamw: expAvgSq has 3 values but param has 4/);
    expect(() => kernels.sgd(p, g.subarray(1), null, sgdBase)).toThrow(
      /sgd: grad has 3 values but param has 4/,
    );
    const big = memory.alloc(8);
    expect(() => kernels.sgd(big.subarray(0, 4), big.subarray(2, 6), null, sgdBase)).toThrow(
      /sgd: param and grad overlap/,
    );
    expect(() => kernels.adamw(p, g, m, m, adamw)).toThrow(/expAvg and expAvgSq overlap/);
  });

  it('rejects a momentum buffer without momentum, momentum without a buffer, nesterov with dampening', () => {
    const memory = HostUpdateMemory.create(12);
    const kernels = HostUpdateKernels.create(memory);
    const [p, g, b] = [memory.alloc(4), memory.alloc(4), memory.alloc(4)];
    expect(() => kernels.sgd(p, g, b, sgdBase)).toThrow(
      /momentum buffer was passed without scalars.momentum/,
    );
    expect(() => kernels.sgd(p, g, null, { ...sgdBase, momentum: 0.9 })).toThrow(
      /momentum 0.9 needs a momentum buffer/,
    );
    const nesterovDampened = {
      ...sgdBase,
      momentum: 0.9,
      nesterov: true,
      dampening: 0.1,
      oneMinusDampening: 0.9,
    };
    expect(() => kernels.sgd(p, g, b, nesterovDampened)).toThrow(
      /nesterov needs dampening 0 \(as in PyTorch\), got 0.1/,
    );
    expect(() => kernels.sgd(p, g, null, { ...sgdBase, nesterov: true })).toThrow(
      /with nesterov needs a momentum buffer/,
    );
  });

  it('allocates zero-filled, 16-byte aligned views and stops at the reservation', () => {
    const memory = HostUpdateMemory.create(10);
    const views = [memory.alloc(3), memory.alloc(3), memory.alloc(4)]; // exactly 10, padding on top
    for (const view of views) {
      expect(view.byteOffset % 16).toBe(0);
      expect(view.buffer).toBe(memory.memory.buffer);
      expect(Array.from(view)).toEqual(new Array(view.length).fill(0));
    }
    expect(views[1].byteOffset).toBe(16);
    expect(() => memory.alloc(1)).toThrow(
      /alloc\(1\) exceeds the reservation \(10 of 10 float32 values used\)/,
    );
    expect(() => HostUpdateMemory.create(4).alloc(5)).toThrow(RlpkdError);
    expect(() => memory.alloc(-1)).toThrow(/whole number/);
  });

  it('refuses a reservation larger than wasm32 can address, naming the size and the way out', () => {
    let error: unknown;
    try {
      HostUpdateMemory.create(2 ** 30); // 4 GiB of float32 values plus alignment slack
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RlpkdError);
    expect((error as RlpkdError).message).toMatch(/1073741824 float32 values \(4\.00 GiB\) exceed the 4 GiB/);
    expect((error as RlpkdError).hint).toMatch(/optimizerOnHost: false/);
  });
});

describe('host update timing (information only)', () => {
  it('prints the time of one AdamW step over 4M elements', () => {
    const n = 4 * 2 ** 20;
    const memory = HostUpdateMemory.create(4 * n);
    const kernels = HostUpdateKernels.create(memory);
    const [p, g, m, v] = [0, 1, 2, 3].map(() => memory.alloc(n));
    p.fill(0.5);
    g.fill(0.01);
    m.fill(0); // touch every page before timing
    v.fill(0);
    const times: number[] = [];
    for (let t = 1; t <= 4; t++) {
      const start = performance.now();
      kernels.adamw(p, g, m, v, adamw);
      times.push(performance.now() - start);
    }
    console.log(
      `host AdamW over ${n} elements: ${times.map((ms) => ms.toFixed(1)).join(', ')} ms (steps 1-4)`,
    );
    expect(Number.isFinite(p[n - 1]) && p[n - 1] < 0.5).toBe(true);
  });
});
