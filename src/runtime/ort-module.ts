/**
 * The one place that loads onnxruntime-node. A process uses one onnxruntime: both the bundled release
 * (CPU, WebGPU) and the GPU runtime's 1.29 binding ship a `libonnxruntime.so.1`, and the dynamic linker
 * would hand the second binding the first one's core (same soname), so the provider would meet a core
 * of another version. The first session decides: `--ep cuda` loads the GPU runtime (which also runs the
 * run's CPU sessions), anything else the bundled package. Tensors must come from the loaded module too
 * (onnxruntime-common checks `instanceof` its own Tensor), hence `ortModule()` everywhere.
 */
import type * as Ort from 'onnxruntime-node';
import { RlpkdError } from '../errors';
import { GPU_INSTALL_HINT, gpuInstallProblems, gpuOrtPackageDir, gpuRuntimeDir } from './gpu-runtime';

export type OrtModule = typeof Ort;

/** Which onnxruntime-node a process loaded: the bundled dependency or the GPU runtime's 1.29 binding. */
export type OrtFlavour = 'bundled' | 'gpu';

let loaded: { flavour: OrtFlavour; module: OrtModule } | undefined;

/**
 * Set to `gpu` to run every session of the process on the GPU runtime's onnxruntime, CPU ones included:
 * how the GPU check shows that the same artifacts give the same results on both onnxruntime versions.
 */
export const ORT_RUNTIME_ENV = 'RLPKD_ORT_RUNTIME';

/** The flavour this process loaded, or undefined before the first session. */
export function loadedOrtFlavour(): OrtFlavour | undefined {
  return loaded?.flavour;
}

/**
 * Where the module `ortModule(want)` loads (or loaded) lives, for a child process that must use the same
 * onnxruntime build.
 */
export function ortModulePath(want: OrtFlavour = 'bundled'): string {
  if (process.env[ORT_RUNTIME_ENV] === 'gpu') want = 'gpu';
  const flavour = loaded?.flavour ?? want;
  return flavour === 'gpu' ? gpuOrtPackageDir(gpuRuntimeDir()) : require.resolve('onnxruntime-node');
}

/**
 * The onnxruntime-node module of this process, loading `want` when none is loaded yet. Asking for the
 * GPU runtime after the bundled one was loaded is an error (see the file comment); asking for the
 * bundled one after the GPU runtime returns the GPU runtime, which runs CPU sessions just as well.
 */
export function ortModule(want: OrtFlavour = 'bundled'): OrtModule {
  if (process.env[ORT_RUNTIME_ENV] === 'gpu') want = 'gpu';
  if (loaded) {
    if (want === 'gpu' && loaded.flavour !== 'gpu') {
      throw new RlpkdError(
        'this process already runs the bundled onnxruntime, so it cannot load the GPU runtime for CUDA',
        {
          hint:
            'use one execution provider for every session of a process: ask for cuda before creating any ' +
            'CPU session (the CLI does this with --ep cuda)',
        },
      );
    }
    return loaded.module;
  }
  if (want === 'gpu') {
    const problems = gpuInstallProblems();
    if (problems.length) {
      throw new RlpkdError(`the CUDA execution provider is not installed: ${problems.join('; ')}`, {
        hint: GPU_INSTALL_HINT,
      });
    }
    const dir = gpuOrtPackageDir(gpuRuntimeDir());
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = { flavour: 'gpu', module: require(dir) as OrtModule };
    } catch (err) {
      throw new RlpkdError(`the GPU runtime in ${dir} does not load: ${(err as Error).message}`, {
        hint: GPU_INSTALL_HINT,
        cause: err,
      });
    }
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = { flavour: 'bundled', module: require('onnxruntime-node') as OrtModule };
  }
  return loaded.module;
}
