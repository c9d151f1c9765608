/**
 * The one place src/web/ loads onnxruntime-web (DESIGN.md: web/ imports onnxruntime-web only). The
 * default entry carries the wasm backend and WebGPU; in a browser bundle it finds its .wasm beside the
 * bundle (import.meta.url), in Node it is onnxruntime-web's own Node build (the tests). It is loaded
 * with a dynamic import: a CommonJS `require` would share onnxruntime-common's backend registry with
 * onnxruntime-node in the same process, and the wasm backend would then take over the Node sessions'
 * 'cpu' provider.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { RlpkdError } from '../errors';

/** The onnxruntime-web module. */
export type OrtWebModule = typeof OrtWeb;

let loading: Promise<OrtWebModule> | undefined;

/** Loads onnxruntime-web once. */
export function loadOrtWeb(): Promise<OrtWebModule> {
  loading ??= import('onnxruntime-web').catch((err: unknown) => {
    loading = undefined;
    throw new RlpkdError(`onnxruntime-web could not be loaded: ${(err as Error).message}`, {
      hint: 'install onnxruntime-web; under jest run with NODE_OPTIONS=--experimental-vm-modules',
      cause: err,
    });
  });
  return loading;
}

/** Where graphs run: 'wasm' (CPU, default) or 'webgpu'. */
export type WebExecutionProvider = 'wasm' | 'webgpu';

/** What the environment offers, as the runtime sees it. */
export interface WebEnvironment {
  /** The page is cross-origin isolated (SharedArrayBuffer, so wasm threads). */
  crossOriginIsolated: boolean;
  /** navigator.gpu exists (whether an adapter comes is only known on request). */
  webgpu: boolean;
  /** Logical cores (navigator.hardwareConcurrency), 1 when unknown. */
  cores: number;
}

/** The current environment (browser or Node). */
export function webEnvironment(): WebEnvironment {
  const g = globalThis as {
    crossOriginIsolated?: boolean;
    navigator?: { gpu?: unknown; hardwareConcurrency?: number };
  };
  return {
    crossOriginIsolated: g.crossOriginIsolated === true,
    webgpu: g.navigator?.gpu !== undefined,
    cores: g.navigator?.hardwareConcurrency ?? 1,
  };
}

/**
 * wasm threads for this environment: `requested` if given, else min(4, cores) when the page is
 * cross-origin isolated, else 1 (threads need SharedArrayBuffer).
 */
export function wasmThreads(env: WebEnvironment, requested?: number): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1)
      throw new RlpkdError(`numThreads must be a positive integer, got ${requested}`);
    if (requested > 1 && !env.crossOriginIsolated) {
      throw new RlpkdError(`${requested} wasm threads need a cross-origin isolated page`, {
        hint: 'serve the page with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp',
      });
    }
    return requested;
  }
  return env.crossOriginIsolated ? Math.max(1, Math.min(4, env.cores)) : 1;
}

/** The onnxruntime-web version this runtime loads (the bundle's meta.json names the one it targets). */
export async function ortWebVersion(): Promise<string> {
  const ort = await loadOrtWeb();
  return ort.env.versions.web ?? ort.env.versions.common;
}
