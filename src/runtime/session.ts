/**
 * onnxruntime-node InferenceSessions behind a small interface. This is the only module that creates
 * sessions in Node; everything else asks for a GraphSession.
 */
import type * as ort from 'onnxruntime-node';
import { RlpkdError } from '../errors';
import { modelToBytes } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import { GPU_DOCTOR_HINT, GPU_INSTALL_HINT, gpuInstallProblems, WEBGPU_HINT } from './gpu-runtime';
import { ortModule } from './ort-module';
import { webgpuCpuNodeNames } from './webgpu-cpu-nodes';
import { fromOrtTensor, toOrtTensor, type HostTensor } from './tensors';

/** What a caller may ask for; 'auto' is CUDA where the GPU runtime is installed, else the CPU. */
export type ExecutionProviderName = 'cpu' | 'cuda' | 'webgpu' | 'auto';
/** The provider a session actually runs on. */
export type ResolvedExecutionProvider = Exclude<ExecutionProviderName, 'auto'>;

/**
 * Set to 1 to let onnxruntime place nodes the GPU provider does not take on the CPU. Off by default:
 * `--ep cuda`/`--ep webgpu` then mean every node runs on the GPU, or the session is refused.
 */
export const ALLOW_CPU_FALLBACK_ENV = 'RLPKD_ALLOW_CPU_FALLBACK';

export interface SessionOptions {
  executionProvider?: ExecutionProviderName;
  /** onnxruntime graph optimization level (default 'all'). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  intraOpNumThreads?: number;
  /**
   * Flush denormal floats to zero (default true). Denormals make CPU arithmetic 10-20× slower, and
   * training produces them (tiny gradients squared in AdamW's second moment). onnxruntime applies it to
   * its pool threads and, for the first session a process creates, to the calling thread.
   */
  denormalAsZero?: boolean;
  /** Let pool threads spin while waiting for work (default true, onnxruntime's default). */
  allowSpinning?: boolean;
  /**
   * Keep freed tensor memory in onnxruntime's own arena (default on). Off, memory goes back to the C heap
   * when a run ends, where the next session or run (and the output copies onnxruntime-node makes) reuse
   * it: a teacher session plus a training session then peak at the larger run, not their sum.
   */
  memArena?: boolean;
  /** Write onnxruntime's JSON profile (node timings) with this file prefix. */
  profileFilePrefix?: string;
  /**
   * GPU providers only: let onnxruntime run the nodes the provider does not take on the CPU (default:
   * $RLPKD_ALLOW_CPU_FALLBACK=1, else refused with an error).
   */
  allowCpuFallback?: boolean;
}

/** A loaded graph that can be run with named host tensors. */
export interface GraphSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly executionProvider: ResolvedExecutionProvider;
  run(feeds: Record<string, HostTensor>, fetches?: readonly string[]): Promise<Record<string, HostTensor>>;
  /**
   * Runs writing the outputs named in `into` straight into those tensors' memory (which may be the memory
   * of an input the graph has finished reading, for in-place updates); returns only the `fetches`.
   */
  runInto?(
    feeds: Record<string, HostTensor>,
    into: Record<string, HostTensor>,
    fetches: readonly string[],
  ): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

/**
 * True when the GPU runtime (`rlpkd gpu install`) is in place. Whether the machine can run it (driver,
 * CUDA 13, cuDNN 9) shows when a session starts, or in `rlpkd gpu doctor`. Loads nothing.
 */
export function cudaAvailable(): boolean {
  return gpuInstallProblems().length === 0;
}

/**
 * Resolves 'auto' and checks that CUDA is really there when asked for; never falls back silently.
 * Resolving to CUDA also settles this process on the GPU runtime (see ort-module.ts), so sessions the
 * run creates for the CPU afterwards use the same onnxruntime.
 */
export function resolveExecutionProvider(ep: ExecutionProviderName = 'cpu'): ResolvedExecutionProvider {
  if (ep === 'cpu' || ep === 'webgpu') return ep;
  const problems = gpuInstallProblems();
  if (ep === 'auto' && problems.length) return 'cpu';
  if (problems.length) {
    throw new RlpkdError(`the CUDA execution provider is not installed: ${problems.join('; ')}`, {
      hint: GPU_INSTALL_HINT,
    });
  }
  ortModule('gpu');
  return 'cuda';
}

/** onnxruntime's execution provider list for `ep` (WebGPU: with the nodes it must leave to the CPU). */
function providerList(
  ep: ResolvedExecutionProvider,
  model: OnnxModel | Uint8Array | string,
): ort.InferenceSession.SessionOptions['executionProviders'] {
  if (ep === 'cuda') return [{ name: 'cuda', deviceId: 0 }];
  if (ep === 'webgpu') {
    const forceCpuNodeNames = webgpuCpuNodeNames(model);
    return [forceCpuNodeNames.length ? { name: 'webgpu', forceCpuNodeNames } : 'webgpu'];
  }
  return [ep];
}

/** One clear error for a session that would not start (provider missing or unusable, bad graph). */
function sessionError(err: unknown, ep: ResolvedExecutionProvider): RlpkdError {
  const msg = (err as Error).message;
  if (ep !== 'cpu' && /fallback to CPU EP has been explicitly disabled/i.test(msg)) {
    return new RlpkdError(`onnxruntime would run some nodes of this graph on the CPU, not on ${ep}: ${msg}`, {
      hint:
        `set ${ALLOW_CPU_FALLBACK_ENV}=1 to let those nodes run on the CPU (every such node copies its ` +
        'tensors between host and device), or run with --ep cpu',
      cause: err,
    });
  }
  if (ep === 'cuda' && /cuda|cublas|cudnn|curand|libcu|nvidia|provider/i.test(msg)) {
    return new RlpkdError(`onnxruntime could not start the CUDA provider: ${msg}`, {
      hint: GPU_DOCTOR_HINT,
      cause: err,
    });
  }
  if (ep === 'webgpu' && /webgpu|adapter|dawn|vulkan/i.test(msg)) {
    return new RlpkdError(`onnxruntime could not start the WebGPU provider: ${msg}`, {
      hint: WEBGPU_HINT,
      cause: err,
    });
  }
  return new RlpkdError(`onnxruntime could not load the graph: ${msg}`, {
    hint: 'run `rlpkd inspect` on the model to see which op or tensor is at fault',
    cause: err,
  });
}

/** Creates a session from a model object, serialized bytes, or a file path (needed for external data). */
export async function createSession(
  model: OnnxModel | Uint8Array | string,
  options: SessionOptions = {},
): Promise<GraphSession> {
  const ep = resolveExecutionProvider(options.executionProvider);
  const ort = ortModule(ep === 'cuda' ? 'gpu' : 'bundled');
  const allowCpuFallback = options.allowCpuFallback ?? process.env[ALLOW_CPU_FALLBACK_ENV] === '1';
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: providerList(ep, model),
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    executionMode: 'sequential',
    enableCpuMemArena: options.memArena ?? true,
    enableMemPattern: true,
    extra: {
      session: {
        set_denormal_as_zero: options.denormalAsZero === false ? '0' : '1',
        intra_op: { allow_spinning: options.allowSpinning === false ? '0' : '1' },
        // "On the GPU" means every node: a node left to the CPU is refused, not placed there silently.
        ...(ep !== 'cpu' && !allowCpuFallback ? { disable_cpu_ep_fallback: '1' } : {}),
      },
    },
    ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    ...(options.profileFilePrefix
      ? { enableProfiling: true, profileFilePrefix: options.profileFilePrefix }
      : {}),
  };
  let session: ort.InferenceSession;
  try {
    if (typeof model === 'string') session = await ort.InferenceSession.create(model, sessionOptions);
    else {
      const bytes = model instanceof Uint8Array ? model : modelToBytes(model);
      session = await ort.InferenceSession.create(bytes, sessionOptions);
    }
  } catch (err) {
    throw sessionError(err, ep);
  }
  return new OrtGraphSession(session, ep);
}

class OrtGraphSession implements GraphSession {
  constructor(
    private readonly session: ort.InferenceSession,
    readonly executionProvider: ResolvedExecutionProvider,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(
    feeds: Record<string, HostTensor>,
    fetches?: readonly string[],
  ): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrtTensor(v);
    const out = fetches ? await this.session.run(ortFeeds, [...fetches]) : await this.session.run(ortFeeds);
    const result: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(out)) result[k] = fromOrtTensor(v as ort.Tensor);
    return result;
  }

  async runInto(
    feeds: Record<string, HostTensor>,
    into: Record<string, HostTensor>,
    fetches: readonly string[],
  ): Promise<Record<string, HostTensor>> {
    // onnxruntime-node would skip a name that is not an output, leaving that target unwritten.
    const unknown = [...Object.keys(into), ...fetches].filter((k) => !this.session.outputNames.includes(k));
    if (unknown.length) {
      throw new RlpkdError(
        `the graph has no output ${unknown
          .slice(0, 5)
          .map((k) => `'${k}'`)
          .join(', ')}${unknown.length > 5 ? ` (and ${unknown.length - 5} more)` : ''}`,
        { hint: 'the artifacts may be stale: regenerate them' },
      );
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrtTensor(v);
    const ortFetches: Record<string, ort.Tensor | null> = {};
    for (const [k, v] of Object.entries(into)) ortFetches[k] = toOrtTensor(v);
    for (const k of fetches) ortFetches[k] = null;
    const out = await this.session.run(ortFeeds, ortFetches);
    // onnxruntime-node hands back a copy of every output, also of those it wrote into `into`: drop those.
    const result: Record<string, HostTensor> = {};
    for (const k of fetches) result[k] = fromOrtTensor(out[k]);
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

type GcFunction = (options?: { type?: 'major' | 'minor' }) => void;
let gcFunction: GcFunction | null | undefined;

/**
 * Runs V8's garbage collector now (enabled on demand; a no-op where unavailable). onnxruntime-node copies
 * every output into a fresh ArrayBuffer, even outputs written into caller memory: a training step leaves
 * hundreds of MB of such copies, which V8 keeps for several steps because a small JS heap gives it no
 * reason to collect. A full collection of a small heap takes a few milliseconds.
 */
export function collectGarbage(): void {
  if (gcFunction === undefined) {
    gcFunction = null;
    try {
      const g = globalThis as { gc?: unknown };
      if (typeof g.gc === 'function') gcFunction = g.gc as GcFunction;
      else {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        (require('node:v8') as typeof import('node:v8')).setFlagsFromString('--expose-gc');
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const fn = (require('node:vm') as typeof import('node:vm')).runInNewContext('gc') as unknown;
        if (typeof fn === 'function') gcFunction = fn as GcFunction;
      }
    } catch {
      gcFunction = null;
    }
  }
  gcFunction?.();
}
