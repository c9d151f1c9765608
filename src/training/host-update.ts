/**
 * Optimizer updates on the host: AdamW and SGD as hand-encoded WebAssembly SIMD (f32x4) kernels over
 * float32 arrays that live in one WebAssembly.Memory (the training session feeds onnxruntime views of
 * it). Every step is one IEEE float32 operation in the order appendOptimizerUpdate (optimizers.ts) builds
 * in the graph, after appendGlobalNormClip's `Mul(g, coef)`: no FMA, no reassociation, so the results
 * are bit-identical to the fused graph's update. Tails shorter than four lanes run as scalar f32 ops.
 */
import { RlpkdError } from '../errors';
import type { ResolvedAdamW, ResolvedSgd } from './optimizers';
import { encodeModule, FunctionBody, ValType, type FloatBinaryOp, type WasmFunction } from './wasm-encoder';

const MEMORY_HINT =
  'disable host updates (optimizerOnHost: false) so the fused graph updates the parameters instead';

declare global {
  // This project's TypeScript libs (ES2022 + @types/node 20) have no WebAssembly types. Declare the one the
  // public API names, member for member as lib.dom declares it, so the two merge where both are present.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace WebAssembly {
    interface Memory {
      readonly buffer: ArrayBuffer;
      grow(delta: number): number;
    }
  }
}

/** The parts of the WebAssembly JS API used here, typed locally (see above). */
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number }) => WebAssembly.Memory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { readonly exports: Record<string, unknown> };
  validate(bytes: Uint8Array): boolean;
}

/** The engine's WebAssembly object, or undefined where there is none. */
function wasmApi(): WasmApi | undefined {
  return (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
}

/** The engine's WebAssembly object; throws a RlpkdError with the way out where there is none. */
function requireWasm(): WasmApi {
  const api = wasmApi();
  if (!api)
    throw new RlpkdError('host updates: this JavaScript engine has no WebAssembly', { hint: MEMORY_HINT });
  return api;
}

const PAGE_BYTES = 65536;
/** wasm32 addresses 2^32 bytes: 65536 pages of 64 KiB. */
const MAX_PAGES = 65536;
/**
 * Extra bytes beyond `floats * 4` for the padding that 16-byte alignment adds between allocations (at
 * most 12 bytes each, so room for thousands of allocations of sizes not divisible by four).
 */
const ALIGNMENT_SLACK_BYTES = 65536;
const ALIGN = 16;

/** float32 buffers carved out of one WebAssembly.Memory that never grows (views stay valid). */
export class HostUpdateMemory {
  /** The memory every view from `alloc` lies in; its buffer never changes (maximum = initial size). */
  readonly memory: WebAssembly.Memory;
  private readonly reserved: number;
  private used = 0;
  private nextByte = 0;

  private constructor(memory: WebAssembly.Memory, floats: number) {
    this.memory = memory;
    this.reserved = floats;
  }

  /**
   * Reserves room for `floats` float32 values in total (each allocation is 16-byte aligned; the padding
   * that adds comes on top). Throws a RlpkdError naming the size when it exceeds what wasm32 can address.
   */
  static create(floats: number): HostUpdateMemory {
    if (!Number.isSafeInteger(floats) || floats < 0) {
      throw new RlpkdError(
        `host update memory: size must be a whole number of float32 values, got ${floats}`,
      );
    }
    const bytes = floats * 4 + ALIGNMENT_SLACK_BYTES;
    const pages = Math.ceil(bytes / PAGE_BYTES);
    const size = `${floats} float32 values (${((floats * 4) / 2 ** 30).toFixed(2)} GiB)`;
    if (pages > MAX_PAGES) {
      throw new RlpkdError(
        `host update memory: ${size} exceed the 4 GiB one wasm32 WebAssembly.Memory can address`,
        { hint: MEMORY_HINT },
      );
    }
    let memory: WebAssembly.Memory;
    try {
      memory = new (requireWasm().Memory)({ initial: pages, maximum: pages });
    } catch (err) {
      throw new RlpkdError(`host update memory: could not allocate a WebAssembly.Memory for ${size}`, {
        hint: MEMORY_HINT,
        cause: err,
      });
    }
    return new HostUpdateMemory(memory, floats);
  }

  /** A zero-filled Float32Array view of n values inside the memory. Throws when out of reserved room. */
  alloc(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RlpkdError(`host update memory: alloc needs a whole number of values, got ${n}`);
    }
    if (this.used + n > this.reserved) {
      throw new RlpkdError(
        `host update memory: alloc(${n}) exceeds the reservation (${this.used} of ${this.reserved} float32 values used)`,
        { hint: 'create the HostUpdateMemory with the total size of every array it will hold' },
      );
    }
    const start = Math.ceil(this.nextByte / ALIGN) * ALIGN;
    const buffer = this.memory.buffer;
    if (start + n * 4 > buffer.byteLength) {
      throw new RlpkdError(
        `host update memory: alloc(${n}) at byte ${start} runs past the memory's ${buffer.byteLength} bytes ` +
          '(alignment padding of many small allocations used up the slack)',
        { hint: 'reserve each allocation rounded up to a multiple of 4 values' },
      );
    }
    this.used += n;
    this.nextByte = start + n * 4;
    // Fresh WebAssembly memory is zero and nothing is ever handed out twice, so the view is zero-filled.
    return new Float32Array(buffer, start, n);
  }
}

/** Per-step float32 scalars of AdamW (as appendOptimizerUpdate computes them: float64, cast once). */
export interface AdamWScalars {
  /** Global-norm clipping coefficient the gradient is multiplied by first (1: no clipping). */
  gradScale: number;
  /** Decoupled weight-decay factor 1 − lr·wd; absent: no decay for these parameters. */
  decay?: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  /** sqrt(1 − beta2^t). */
  bc2Sqrt: number;
  eps: number;
  /** −lr / (1 − beta1^t). */
  negStepSize: number;
}

/** Per-step float32 scalars of SGD (as appendOptimizerUpdate computes them). */
export interface SgdScalars {
  /** Global-norm clipping coefficient the gradient is multiplied by first (1: no clipping). */
  gradScale: number;
  /** L2 weight decay added to the gradient; absent or 0: none (the graph omits it then). */
  weightDecay?: number;
  /** Momentum factor; required exactly when a momentum buffer is passed. */
  momentum?: number;
  dampening: number;
  oneMinusDampening: number;
  /** Nesterov momentum (needs a momentum buffer). */
  nesterov: boolean;
  /** First update: with dampening ≠ 0 the buffer becomes the gradient itself (the graph's Where). */
  firstStep: boolean;
  /** −lr. */
  negLr: number;
}

const ADAMW_SCALARS = [
  'gradScale',
  'decay',
  'beta1',
  'oneMinusBeta1',
  'beta2',
  'oneMinusBeta2',
  'bc2Sqrt',
  'eps',
  'negStepSize',
] as const;
type AdamWScalarName = (typeof ADAMW_SCALARS)[number];

const SGD_SCALARS = ['gradScale', 'weightDecay', 'momentum', 'oneMinusDampening', 'negLr'] as const;
type SgdScalarName = (typeof SGD_SCALARS)[number];

/**
 * How an SGD kernel uses the momentum buffer (chosen per call, outside the element loop): none; buf1 =
 * decayed + d (plain, and nesterov which then steps along d + buf1·μ); decayed + d·(1−τ) (dampened); or
 * buf1 = d (first, the first step with dampening). Nesterov needs dampening 0, as in PyTorch.
 */
type SgdMomentumMode = 'none' | 'plain' | 'nesterov' | 'dampened' | 'first';
const SGD_MODES: readonly SgdMomentumMode[] = ['none', 'plain', 'nesterov', 'dampened', 'first'];

/**
 * One lane width's view of the element loop: addresses are `pointer + i` (i: byte offset), arithmetic
 * is f32x4 in the vector loop and f32 in the tail loop, scalars are splats or the f32 parameters.
 */
class Lanes<S extends string> {
  private readonly temps = new Map<string, number>();
  /** Scalars the body read (a dry run over a scratch body finds which need a splat). */
  readonly used = new Set<S>();

  constructor(
    private readonly f: FunctionBody,
    private readonly simd: boolean,
    private readonly index: number,
    private readonly scalarLocals: Record<S, number>,
  ) {}

  /** Pushes the address of element i of the array at pointer parameter `ptr`. */
  addr(ptr: number): this {
    this.f.localGet(ptr).localGet(this.index).i32Add();
    return this;
  }

  load(ptr: number): this {
    this.addr(ptr);
    if (this.simd) this.f.v128Load();
    else this.f.f32Load();
    return this;
  }

  /** Stores [address, value] from the stack. */
  store(): this {
    if (this.simd) this.f.v128Store();
    else this.f.f32Store();
    return this;
  }

  op(o: FloatBinaryOp | 'sqrt'): this {
    if (this.simd) this.f.f32x4(o);
    else this.f.f32(o);
    return this;
  }

  scalar(name: S): this {
    this.used.add(name);
    this.f.localGet(this.scalarLocals[name]);
    return this;
  }

  get(temp: string): this {
    this.f.localGet(this.temp(temp));
    return this;
  }

  set(temp: string): this {
    this.f.localSet(this.temp(temp));
    return this;
  }

  tee(temp: string): this {
    this.f.localTee(this.temp(temp));
    return this;
  }

  private temp(name: string): number {
    let index = this.temps.get(name);
    if (index === undefined) {
      index = this.f.local(this.simd ? ValType.v128 : ValType.f32);
      this.temps.set(name, index);
    }
    return index;
  }
}

/**
 * A kernel function: `pointers` i32 byte addresses (parameters 0..pointers-1), the i32 element count,
 * then the f32 `scalars`. The body runs over four elements at a time, then over the remaining 0-3 one at
 * a time.
 */
function elementKernel<S extends string>(
  name: string,
  pointers: number,
  scalars: readonly S[],
  body: (lanes: Lanes<S>) => void,
): WasmFunction {
  const n = pointers;
  const params: ValType[] = [
    ...Array.from({ length: pointers + 1 }, () => ValType.i32),
    ...scalars.map(() => ValType.f32),
  ];
  const f = new FunctionBody(params);
  const scalarParams = {} as Record<S, number>;
  scalars.forEach((s, k) => (scalarParams[s] = pointers + 1 + k));
  const i = f.local(ValType.i32);
  const endVector = f.local(ValType.i32);
  const endAll = f.local(ValType.i32);
  const dryRun = new Lanes(new FunctionBody(params), false, 0, scalarParams);
  body(dryRun);
  const splats = {} as Record<S, number>;
  for (const s of dryRun.used) {
    splats[s] = f.local(ValType.v128);
    f.localGet(scalarParams[s]).f32x4Splat().localSet(splats[s]);
  }
  f.localGet(n).i32Const(-4).i32And().i32Const(2).i32Shl().localSet(endVector); // bytes of whole vectors
  f.localGet(n).i32Const(2).i32Shl().localSet(endAll);
  f.i32Const(0).localSet(i);
  const loop = (lanes: Lanes<S>, stride: number, end: number, skip: () => void): void => {
    f.block();
    skip();
    f.brIf(0).loop();
    body(lanes);
    f.localGet(i).i32Const(stride).i32Add().localTee(i).localGet(end).i32LtU().brIf(0);
    f.end().end();
  };
  loop(new Lanes(f, true, i, splats), 16, endVector, () => f.localGet(endVector).i32Eqz());
  loop(new Lanes(f, false, i, scalarParams), 4, endAll, () => f.localGet(i).localGet(endAll).i32GeU());
  return { name, results: [], body: f };
}

function adamwKernelName(decay: boolean): string {
  return decay ? 'adamw_decay' : 'adamw';
}

function sgdKernelName(weightDecay: boolean, mode: SgdMomentumMode): string {
  return `sgd_${mode}${weightDecay ? '_wd' : ''}`;
}

/** AdamW over (param, grad, exp_avg, exp_avg_sq); the op order of appendOptimizerUpdate. */
function adamwKernel(decay: boolean): WasmFunction {
  return elementKernel<AdamWScalarName>(adamwKernelName(decay), 4, ADAMW_SCALARS, (l) => {
    const [P, G, M, V] = [0, 1, 2, 3]; // pointer parameters
    l.load(G).scalar('gradScale').op('mul').set('g'); // g = grad * gradScale
    // m1 = (m * beta1) + (g * oneMinusBeta1)
    l.addr(M).load(M).scalar('beta1').op('mul').get('g').scalar('oneMinusBeta1').op('mul').op('add');
    l.tee('m1').store();
    // v1 = (v * beta2) + ((g * g) * oneMinusBeta2)
    l.addr(V).load(V).scalar('beta2').op('mul').get('g').get('g').op('mul').scalar('oneMinusBeta2').op('mul');
    l.op('add').tee('v1').store();
    // param = p1 + ((m1 / ((sqrt(v1) / bc2Sqrt) + eps)) * negStepSize), p1 = param [* decay]
    l.addr(P).load(P);
    if (decay) l.scalar('decay').op('mul');
    l.get('m1').get('v1').op('sqrt').scalar('bc2Sqrt').op('div').scalar('eps').op('add').op('div');
    l.scalar('negStepSize').op('mul').op('add').store();
  });
}

/** SGD over (param, grad, momentum_buffer); the op order of appendOptimizerUpdate. */
function sgdKernel(weightDecay: boolean, mode: SgdMomentumMode): WasmFunction {
  const name = sgdKernelName(weightDecay, mode);
  return elementKernel<SgdScalarName>(name, 3, SGD_SCALARS, (l) => {
    const [P, G, B] = [0, 1, 2]; // pointer parameters
    l.load(G).scalar('gradScale').op('mul'); // g = grad * gradScale
    if (weightDecay) l.load(P).scalar('weightDecay').op('mul').op('add'); // d = g + (param * wd)
    l.set('d');
    if (mode !== 'none') {
      l.addr(B);
      if (mode === 'first') {
        l.get('d'); // buf1 = d
      } else {
        l.load(B).scalar('momentum').op('mul').get('d'); // decayed = buf * momentum
        if (mode === 'dampened') l.scalar('oneMinusDampening').op('mul');
        l.op('add'); // buf1 = decayed + d  |  decayed + (d * oneMinusDampening)
      }
      l.tee('buf1').store();
      if (mode === 'nesterov') l.get('d').get('buf1').scalar('momentum').op('mul').op('add').set('d');
      else l.get('buf1').set('d');
    }
    l.addr(P).load(P).get('d').scalar('negLr').op('mul').op('add').store(); // param + (d * negLr)
  });
}

let moduleBytes: Uint8Array | undefined;
let compiledModule: object | undefined;
let supported: boolean | undefined;

/**
 * The kernel module's bytes (built once; about 3.4 KB, under the 4 KB browsers allow for synchronous
 * compilation on a main thread: keep it so).
 */
function kernelModuleBytes(): Uint8Array {
  if (!moduleBytes) {
    const functions: WasmFunction[] = [adamwKernel(false), adamwKernel(true)];
    for (const wd of [false, true]) {
      for (const mode of SGD_MODES) functions.push(sgdKernel(wd, mode));
    }
    moduleBytes = encodeModule({ memoryImport: { module: 'env', name: 'memory', minPages: 0 }, functions });
  }
  return moduleBytes;
}

/**
 * The gradient scale of global-norm clipping exactly as appendGlobalNormClip computes it in the graph,
 * in float32: min(max / (norm + 1e-6), 1); 1 when `maxNorm` is +Infinity.
 */
export function clipCoefficient(norm: number, maxNorm: number): number {
  const f = Math.fround;
  return Math.min(f(f(maxNorm) / f(norm + f(1e-6))), 1);
}

/**
 * AdamW's float32 scalars for update `step` exactly as appendOptimizerUpdate derives them in the graph:
 * the learning rate read as float32 and widened, bias corrections in float64, each cast to float32 once.
 */
export function adamwUpdateScalars(
  config: ResolvedAdamW,
  step: number,
  learningRate: number,
  gradScale: number,
  decays: boolean,
): AdamWScalars {
  const f = Math.fround;
  const lr = f(learningRate);
  const [beta1, beta2] = config.betas;
  return {
    gradScale,
    ...(config.weightDecay !== 0 && decays ? { decay: f(1 - lr * config.weightDecay) } : {}),
    beta1: f(beta1),
    oneMinusBeta1: f(1 - beta1),
    beta2: f(beta2),
    oneMinusBeta2: f(1 - beta2),
    bc2Sqrt: f(Math.sqrt(1 - Math.pow(beta2, step))),
    eps: f(config.eps),
    negStepSize: f(-(lr / (1 - Math.pow(beta1, step)))),
  };
}

/** SGD's float32 scalars for update `step` exactly as appendOptimizerUpdate derives them in the graph. */
export function sgdUpdateScalars(
  config: ResolvedSgd,
  step: number,
  learningRate: number,
  gradScale: number,
  decays: boolean,
): SgdScalars {
  const f = Math.fround;
  return {
    gradScale,
    ...(config.weightDecay !== 0 && decays ? { weightDecay: f(config.weightDecay) } : {}),
    ...(config.momentum > 0 ? { momentum: f(config.momentum) } : {}),
    dampening: config.dampening,
    oneMinusDampening: f(1 - config.dampening),
    nesterov: config.nesterov,
    firstStep: step === 1,
    negLr: f(-f(learningRate)),
  };
}

/** True when this JS engine can compile the kernels (WebAssembly with SIMD). */
export function hostUpdateSupported(): boolean {
  if (supported === undefined) {
    try {
      supported = wasmApi()?.validate(kernelModuleBytes()) ?? false;
    } catch {
      supported = false;
    }
  }
  return supported;
}

type AdamWKernel = (
  param: number,
  grad: number,
  expAvg: number,
  expAvgSq: number,
  n: number,
  ...scalars: number[]
) => void;
type SgdKernel = (param: number, grad: number, buffer: number, n: number, ...scalars: number[]) => void;

const FLOAT32_TAG = '[object Float32Array]';

/**
 * The compiled kernels bound to one HostUpdateMemory. All arrays must be views into that memory, of equal
 * length and not overlapping (checked; clear error otherwise). Updates in place.
 */
export class HostUpdateKernels {
  private constructor(
    private readonly memory: HostUpdateMemory,
    private readonly exports: Record<string, unknown>,
  ) {}

  /** Instantiates the kernels over `memory` (the module is compiled once per process and cached). */
  static create(memory: HostUpdateMemory): HostUpdateKernels {
    if (!hostUpdateSupported()) {
      throw new RlpkdError('host updates: this JavaScript engine cannot compile WebAssembly SIMD kernels', {
        hint: MEMORY_HINT,
      });
    }
    const api = requireWasm();
    try {
      compiledModule ??= new api.Module(kernelModuleBytes());
      const instance = new api.Instance(compiledModule, { env: { memory: memory.memory } });
      return new HostUpdateKernels(memory, instance.exports);
    } catch (err) {
      throw new RlpkdError(
        `host updates: could not instantiate the WebAssembly kernels: ${(err as Error).message}`,
        {
          hint: MEMORY_HINT,
          cause: err,
        },
      );
    }
  }

  /** One AdamW step in place on param, exp_avg and exp_avg_sq (see the module doc for the op order). */
  adamw(
    param: Float32Array,
    grad: Float32Array,
    expAvg: Float32Array,
    expAvgSq: Float32Array,
    s: AdamWScalars,
  ): void {
    this.check('adamw', { param, grad, expAvg, expAvgSq });
    const decay = s.decay !== undefined;
    const kernel = this.exports[adamwKernelName(decay)] as AdamWKernel;
    kernel(
      param.byteOffset,
      grad.byteOffset,
      expAvg.byteOffset,
      expAvgSq.byteOffset,
      param.length,
      s.gradScale,
      decay ? s.decay! : 1,
      s.beta1,
      s.oneMinusBeta1,
      s.beta2,
      s.oneMinusBeta2,
      s.bc2Sqrt,
      s.eps,
      s.negStepSize,
    );
  }

  /** One SGD step in place on param and, with momentum, the momentum buffer. */
  sgd(param: Float32Array, grad: Float32Array, momentumBuffer: Float32Array | null, s: SgdScalars): void {
    const hasBuffer = momentumBuffer !== null;
    if (hasBuffer && s.momentum === undefined) {
      throw new RlpkdError('host update sgd: a momentum buffer was passed without scalars.momentum');
    }
    if (!hasBuffer && ((s.momentum ?? 0) !== 0 || s.nesterov)) {
      throw new RlpkdError(
        `host update sgd: momentum ${s.momentum ?? 0}${s.nesterov ? ' with nesterov' : ''} needs a momentum buffer`,
      );
    }
    if (s.nesterov && s.dampening !== 0) {
      throw new RlpkdError(`host update sgd: nesterov needs dampening 0 (as in PyTorch), got ${s.dampening}`);
    }
    this.check('sgd', hasBuffer ? { param, grad, momentumBuffer } : { param, grad });
    const mode: SgdMomentumMode = !hasBuffer
      ? 'none'
      : s.dampening !== 0
        ? s.firstStep
          ? 'first'
          : 'dampened'
        : s.nesterov
          ? 'nesterov'
          : 'plain';
    const weightDecay = s.weightDecay !== undefined && s.weightDecay !== 0;
    const kernel = this.exports[sgdKernelName(weightDecay, mode)] as SgdKernel;
    kernel(
      param.byteOffset,
      grad.byteOffset,
      hasBuffer ? momentumBuffer.byteOffset : 0,
      param.length,
      s.gradScale,
      s.weightDecay ?? 0,
      s.momentum ?? 0,
      s.oneMinusDampening,
      s.negLr,
    );
  }

  /** Every array a Float32Array view into this memory, all of one length, none overlapping another. */
  private check(op: string, views: Record<string, Float32Array>): void {
    const buffer = this.memory.memory.buffer;
    const entries = Object.entries(views);
    for (const [name, view] of entries) {
      if (Object.prototype.toString.call(view) !== FLOAT32_TAG || view.buffer !== buffer) {
        throw new RlpkdError(
          `host update ${op}: ${name} is not a Float32Array view into the kernels' memory`,
          {
            hint: 'allocate every array the kernels update with HostUpdateMemory.alloc on the same memory',
          },
        );
      }
    }
    const [firstName, first] = entries[0];
    for (const [name, view] of entries.slice(1)) {
      if (view.length !== first.length) {
        throw new RlpkdError(
          `host update ${op}: ${name} has ${view.length} values but ${firstName} has ${first.length}`,
        );
      }
    }
    for (let a = 0; a < entries.length; a++) {
      for (let b = a + 1; b < entries.length; b++) {
        const [nameA, x] = entries[a];
        const [nameB, y] = entries[b];
        const overlap =
          x.byteOffset < y.byteOffset + y.byteLength && y.byteOffset < x.byteOffset + x.byteLength;
        if (overlap && x.length > 0) {
          throw new RlpkdError(`host update ${op}: ${nameA} and ${nameB} overlap in memory`);
        }
      }
    }
  }
}
