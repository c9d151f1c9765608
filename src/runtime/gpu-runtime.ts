/**
 * Where the opt-in GPU runtime lives and what it must hold. The CUDA provider on npm
 * (com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9) is onnxruntime 1.29.0's, and onnxruntime refuses a
 * provider whose version differs from its core's, so `rlpkd gpu install` places it beside
 * onnxruntime-node 1.29.0's binding in a folder of its own (default `<package>/.rlpkd-gpu`, git-ignored;
 * RLPKD_GPU_DIR overrides). The default install keeps the bundled onnxruntime-node (CPU, WebGPU).
 * Pure file-system facts: nothing here loads onnxruntime.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The onnxruntime-node release whose binding pairs with the npm CUDA provider. */
export const GPU_ORT_VERSION = '1.29.0';
/** The npm package that ships onnxruntime's CUDA 13 provider libraries for linux x64. */
export const CUDA_PROVIDER_PACKAGE = 'com.github.asus4.onnxruntime.linux-x64-gpu';
export const CUDA_PROVIDER_PACKAGE_VERSION = '0.4.9';
/** The provider libraries placed beside the binding. */
export const CUDA_PROVIDER_FILES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];
/** Written last by `rlpkd gpu install`: a folder without it is not an install. */
export const GPU_MANIFEST_FILE = 'manifest.json';

/** What `rlpkd gpu install` recorded. */
export interface GpuManifest {
  /** onnxruntime-node version of the binding (and of onnxruntime-common beside it). */
  onnxruntimeNode: string;
  /** name@version of the package the provider came from. */
  providerPackage: string;
  /** onnxruntime version the provider was built for (must equal onnxruntimeNode). */
  providerOrtVersion: string;
  /** Byte sizes of the files placed beside the binding. */
  files: Record<string, number>;
  installedAt: string;
}

/** The package root (where package.json is), from src/runtime or dist/runtime alike. */
function packageRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** The GPU runtime folder: $RLPKD_GPU_DIR, else `.rlpkd-gpu` in the package root. */
export function gpuRuntimeDir(): string {
  const env = process.env.RLPKD_GPU_DIR;
  return env ? path.resolve(env) : path.join(packageRoot(), '.rlpkd-gpu');
}

/** The onnxruntime-node package folder inside a GPU runtime folder. */
export function gpuOrtPackageDir(dir = gpuRuntimeDir()): string {
  return path.join(dir, 'node_modules', 'onnxruntime-node');
}

/** The folder holding the native binding, libonnxruntime and the provider libraries. */
export function gpuBindingDir(dir = gpuRuntimeDir()): string {
  return path.join(gpuOrtPackageDir(dir), 'bin', 'napi-v6', process.platform, process.arch);
}

/** The manifest of an install in `dir`, or null when there is none (or it is unreadable). */
export function readGpuManifest(dir = gpuRuntimeDir()): GpuManifest | null {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, GPU_MANIFEST_FILE), 'utf8')) as GpuManifest;
    return typeof m.onnxruntimeNode === 'string' && typeof m.providerOrtVersion === 'string' ? m : null;
  } catch {
    return null;
  }
}

/** Why the install in `dir` cannot serve `--ep cuda` (each a sentence), or [] when it can. */
export function gpuInstallProblems(dir = gpuRuntimeDir()): string[] {
  const manifest = readGpuManifest(dir);
  if (!manifest) return [`no GPU runtime is installed in ${dir}`];
  const problems: string[] = [];
  if (manifest.providerOrtVersion !== manifest.onnxruntimeNode) {
    problems.push(
      `the CUDA provider is onnxruntime ${manifest.providerOrtVersion}'s but the binding is ` +
        `${manifest.onnxruntimeNode}: onnxruntime refuses a provider of another version`,
    );
  }
  let binding: string | undefined;
  try {
    binding = (
      JSON.parse(fs.readFileSync(path.join(gpuOrtPackageDir(dir), 'package.json'), 'utf8')) as {
        version?: string;
      }
    ).version;
  } catch {
    problems.push(`onnxruntime-node is missing from ${path.join(dir, 'node_modules')}`);
  }
  if (binding !== undefined && binding !== manifest.onnxruntimeNode) {
    problems.push(`onnxruntime-node in ${dir} is ${binding}, the manifest says ${manifest.onnxruntimeNode}`);
  }
  const bin = gpuBindingDir(dir);
  for (const f of ['onnxruntime_binding.node', ...CUDA_PROVIDER_FILES]) {
    if (!fs.existsSync(path.join(bin, f))) problems.push(`${f} is missing from ${bin}`);
  }
  return problems;
}

/** The one command that (re)installs the GPU runtime, for hints. */
export const GPU_INSTALL_HINT =
  'run `npx rlpkd gpu install` (needs the npm registry, or --from a folder prepared by tools/gpu-check.sh), ' +
  'then `npx rlpkd gpu doctor` to see what else the machine lacks (driver, CUDA 13, cuDNN 9); or run with --ep cpu';

/** What to do when the GPU runtime is installed but the provider does not start. */
export const GPU_DOCTOR_HINT =
  '`npx rlpkd gpu doctor` names each missing piece (NVIDIA driver, CUDA 13 runtime libraries, cuDNN 9) and ' +
  'what to do about it; or run with --ep cpu';

/** What --ep webgpu needs, for hints. */
export const WEBGPU_HINT =
  "onnxruntime's WebGPU provider (Dawn) needs a GPU with a Vulkan driver (on NVIDIA the driver's Vulkan ICD; " +
  '`vulkaninfo --summary` lists adapters); `npx rlpkd gpu doctor` checks it; or run with --ep cuda or --ep cpu';
