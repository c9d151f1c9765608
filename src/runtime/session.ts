/**
 * onnxruntime-node InferenceSessions behind a small interface. This is the only module that creates
 * sessions in Node; everything else asks for a GraphSession.
 */
import * as ort from 'onnxruntime-node';
import { RlpkdError } from '../errors';
import { modelToBytes } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import { fromOrtTensor, toOrtTensor, type HostTensor } from './tensors';

export type ExecutionProviderName = 'cpu' | 'cuda' | 'auto';

export interface SessionOptions {
  executionProvider?: ExecutionProviderName;
  /** onnxruntime graph optimization level (default 'all'). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  intraOpNumThreads?: number;
}

/** A loaded graph that can be run with named host tensors. */
export interface GraphSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly executionProvider: 'cpu' | 'cuda';
  run(feeds: Record<string, HostTensor>, fetches?: readonly string[]): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

/** True when onnxruntime-node has its CUDA provider library installed. */
export function cudaAvailable(): boolean {
  return (
    ort.listSupportedBackends().some((b) => b.name === 'cuda' && b.bundled !== false) || cudaLibraryPresent()
  );
}

function cudaLibraryPresent(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require('node:fs') as typeof import('node:fs');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require('node:path') as typeof import('node:path');
    const dir = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const lib = path.join(
      dir,
      'bin',
      'napi-v6',
      process.platform,
      process.arch,
      'libonnxruntime_providers_cuda.so',
    );
    return fs.existsSync(lib);
  } catch {
    return false;
  }
}

export const CUDA_INSTALL_HINT =
  'install onnxruntime-node with its CUDA provider: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` ' +
  '(needs network access to the NuGet feed, CUDA 13 and cuDNN 9 on the machine), or run with --ep cpu';

/** Resolves 'auto' and checks that CUDA is really there when asked for; never falls back silently. */
export function resolveExecutionProvider(ep: ExecutionProviderName = 'cpu'): 'cpu' | 'cuda' {
  if (ep === 'cpu') return 'cpu';
  const has = cudaAvailable();
  if (ep === 'auto') return has ? 'cuda' : 'cpu';
  if (!has) {
    throw new RlpkdError('the CUDA execution provider is not installed in onnxruntime-node', {
      hint: CUDA_INSTALL_HINT,
    });
  }
  return 'cuda';
}

/** Creates a session from a model object, serialized bytes, or a file path (needed for external data). */
export async function createSession(
  model: OnnxModel | Uint8Array | string,
  options: SessionOptions = {},
): Promise<GraphSession> {
  const ep = resolveExecutionProvider(options.executionProvider);
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: ep === 'cuda' ? [{ name: 'cuda', deviceId: 0 }] : ['cpu'],
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
  };
  let session: ort.InferenceSession;
  try {
    if (typeof model === 'string') session = await ort.InferenceSession.create(model, sessionOptions);
    else {
      const bytes = model instanceof Uint8Array ? model : modelToBytes(model);
      session = await ort.InferenceSession.create(bytes, sessionOptions);
    }
  } catch (err) {
    const msg = (err as Error).message;
    if (ep === 'cuda' && /cuda/i.test(msg)) {
      throw new RlpkdError(`onnxruntime could not start the CUDA provider: ${msg}`, {
        hint: CUDA_INSTALL_HINT,
        cause: err,
      });
    }
    throw new RlpkdError(`onnxruntime could not load the graph: ${msg}`, {
      hint: 'run `rlpkd inspect` on the model to see which op or tensor is at fault',
      cause: err,
    });
  }
  return new OrtGraphSession(session, ep);
}

class OrtGraphSession implements GraphSession {
  constructor(
    private readonly session: ort.InferenceSession,
    readonly executionProvider: 'cpu' | 'cuda',
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

  async release(): Promise<void> {
    await this.session.release();
  }
}
