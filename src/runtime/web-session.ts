/**
 * A GraphSession over onnxruntime-web's wasm backend, so the very artifacts trained with
 * onnxruntime-node run unchanged where only WebAssembly is available (browsers, or Node for checking).
 * onnxruntime-web is loaded on first use with a dynamic import (under Node it needs
 * `--experimental-vm-modules` inside jest); nothing else in the toolkit imports it.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { RlpkdError } from '../errors';
import { loadModel, modelToBytes } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import type { GraphSession } from './session';
import { ortElementType } from './element-types';
import type { HostTensor } from './tensors';

/** A graph session on the wasm backend (same run/release contract as the Node sessions). */
export interface WebGraphSession extends Omit<GraphSession, 'executionProvider'> {
  readonly executionProvider: 'wasm';
}

export interface WebSessionOptions {
  /** wasm threads (default 1: threads need cross-origin isolation in browsers and add overhead for small graphs). */
  numThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

type OrtWebModule = typeof OrtWeb;
let ortWeb: Promise<OrtWebModule> | undefined;

/** Loads onnxruntime-web once. */
function loadOrtWeb(): Promise<OrtWebModule> {
  ortWeb ??= import('onnxruntime-web').catch((err: unknown) => {
    ortWeb = undefined;
    throw new RlpkdError(`onnxruntime-web could not be loaded: ${(err as Error).message}`, {
      hint: 'install onnxruntime-web; under jest run with NODE_OPTIONS=--experimental-vm-modules',
      cause: err,
    });
  });
  return ortWeb;
}

function toWebTensor(ort: OrtWebModule, name: string, t: HostTensor): OrtWeb.Tensor {
  try {
    return new ort.Tensor(ortElementType(t.data), t.data as Float32Array, [...t.dims]);
  } catch (err) {
    throw new RlpkdError(`wasm session: input '${name}': ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Creates a wasm session from a model object, serialized bytes, or a file path (read here, external data
 * inlined, since the wasm backend has no file system of its own).
 */
export async function createWebSession(
  model: OnnxModel | Uint8Array | string,
  options: WebSessionOptions = {},
): Promise<WebGraphSession> {
  const ort = await loadOrtWeb();
  ort.env.wasm.numThreads = options.numThreads ?? 1;
  const bytes =
    typeof model === 'string'
      ? modelToBytes(loadModel(model))
      : model instanceof Uint8Array
        ? model
        : modelToBytes(model);
  let session: OrtWeb.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    });
  } catch (err) {
    throw new RlpkdError(`onnxruntime-web (wasm) could not load the graph: ${(err as Error).message}`, {
      hint: 'run `rlpkd inspect` on the model to see which op or tensor is at fault',
      cause: err,
    });
  }
  return {
    executionProvider: 'wasm',
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds, fetches) {
      const webFeeds: Record<string, OrtWeb.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) webFeeds[k] = toWebTensor(ort, k, v);
      const out = fetches ? await session.run(webFeeds, [...fetches]) : await session.run(webFeeds);
      const result: Record<string, HostTensor> = {};
      for (const [k, v] of Object.entries(out)) {
        result[k] = {
          data: (v as OrtWeb.Tensor).data as HostTensor['data'],
          dims: [...(v as OrtWeb.Tensor).dims],
        };
      }
      return result;
    },
    async release() {
      await session.release();
    },
  };
}
