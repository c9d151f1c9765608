/**
 * `rlpkd gpu doctor`: what the CUDA and WebGPU routes need on this machine, each piece found or missing
 * with what to do. The provider's own needs come from its ELF header (libcublasLt.so.13,
 * libcublas.so.13, libcurand.so.10, libcudart.so.13, libcuda.so.1) plus cuDNN 9, which it opens at run
 * time; the last word is a probe that starts the provider on a two-input Add.
 */
import { spawnSync } from 'node:child_process';
import { gpuInstallProblems, gpuRuntimeDir, GPU_ORT_VERSION, readGpuManifest } from '../runtime/gpu-runtime';
import { probeProvider, type ProviderProbe } from '../runtime/provider-probe';
import { locateLibraries, type LibraryLocation, type LibrarySearch } from './shared-libraries';

/** One thing checked. */
export interface DoctorCheck {
  id: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** What to do when not ok. */
  fix?: string;
}

/** The whole report: per route whether it is usable, and every check. */
export interface GpuDoctorReport {
  gpuDir: string;
  cuda: boolean;
  webgpu: boolean;
  checks: DoctorCheck[];
}

export interface GpuDoctorOptions {
  /** GPU runtime folder (default gpuRuntimeDir()). */
  gpuDir?: string;
  /** Start the providers in a child process (default true). */
  probe?: boolean;
  /** Where to look for libraries (default: this machine's library path). */
  search?: LibrarySearch;
  /** `nvidia-smi`'s GPU line, or null without one (default: runs it). */
  nvidiaSmi?: () => string | null;
  /** Replaces the provider probe (tests). */
  probeProvider?: (ep: 'cuda' | 'webgpu') => Promise<ProviderProbe>;
}

const CUDA_LIBRARIES = ['libcudart.so.13', 'libcublas.so.13', 'libcublasLt.so.13', 'libcurand.so.10'];
const CUDNN_LIBRARIES = ['libcudnn.so.9'];
/** Debian's chromium package ships SwiftShader, a Vulkan driver on the CPU that Dawn accepts. */
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

function runNvidiaSmi(): string | null {
  const r = spawnSync(
    'nvidia-smi',
    ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  return r.status === 0 ? r.stdout.trim().split('\n').join('; ') : null;
}

/** A check over a group of libraries: all on the path, or what is off the path or missing, and the fix. */
function libraryCheck(id: string, libs: LibraryLocation[], install: string): DoctorCheck {
  const missing = libs.filter((l) => !l.file).map((l) => l.name);
  const offPath = libs.filter((l) => l.file && !l.onPath);
  if (!missing.length && !offPath.length) {
    return { id, ok: true, detail: libs.map((l) => l.file).join(', ') };
  }
  const parts: string[] = [];
  if (missing.length) parts.push(`not found: ${missing.join(', ')}`);
  if (offPath.length) parts.push(`not on the library path: ${offPath.map((l) => l.file).join(', ')}`);
  const dirs = [...new Set(offPath.map((l) => l.file!.slice(0, l.file!.lastIndexOf('/'))))];
  const fixes: string[] = [];
  if (missing.length) fixes.push(install);
  if (dirs.length) fixes.push(`export LD_LIBRARY_PATH=${dirs.join(':')}:$LD_LIBRARY_PATH`);
  return { id, ok: false, detail: parts.join('; '), fix: fixes.join('; then ') };
}

/** Checks the machine for the CUDA and WebGPU routes. */
export async function gpuDoctor(options: GpuDoctorOptions = {}): Promise<GpuDoctorReport> {
  const gpuDir = options.gpuDir ?? gpuRuntimeDir();
  const probe = options.probe ?? true;
  const checks: DoctorCheck[] = [];
  const platformOk = process.platform === 'linux' && process.arch === 'x64';
  checks.push({
    id: 'platform',
    ok: platformOk,
    detail: `${process.platform} ${process.arch}, Node.js ${process.version}`,
    ...(platformOk ? {} : { fix: 'the npm CUDA provider exists for linux x64 only; use --ep cpu here' }),
  });

  const problems = gpuInstallProblems(gpuDir);
  const manifest = readGpuManifest(gpuDir);
  checks.push({
    id: 'gpu-runtime',
    ok: problems.length === 0,
    detail: problems.length
      ? problems.join('; ')
      : `onnxruntime-node ${manifest!.onnxruntimeNode} with ${manifest!.providerPackage}'s CUDA provider in ${gpuDir}`,
    ...(problems.length ? { fix: 'run `npx rlpkd gpu install` (or `--from DIR` offline)' } : {}),
  });
  if (manifest) {
    const same = manifest.providerOrtVersion === manifest.onnxruntimeNode;
    checks.push({
      id: 'provider-version',
      ok: same,
      detail: `provider ${manifest.providerOrtVersion}, core ${manifest.onnxruntimeNode}`,
      ...(same
        ? {}
        : {
            fix: `reinstall: \`npx rlpkd gpu install\` pairs the provider with onnxruntime ${GPU_ORT_VERSION}`,
          }),
    });
  }

  const [driverLib] = locateLibraries(['libcuda.so.1'], options.search);
  const smi = (options.nvidiaSmi ?? runNvidiaSmi)();
  const driverOk = driverLib.onPath && smi !== null;
  checks.push({
    id: 'nvidia-driver',
    ok: driverOk,
    detail: [
      driverLib.file
        ? `${driverLib.file}${driverLib.onPath ? '' : ' (not on the library path)'}`
        : 'libcuda.so.1 not found',
      smi ?? 'nvidia-smi not found or failed',
    ].join('; '),
    ...(driverOk
      ? {}
      : {
          fix: 'install the NVIDIA driver (it brings libcuda.so.1 and nvidia-smi) on a machine with an NVIDIA GPU',
        }),
  });
  checks.push(
    libraryCheck(
      'cuda-13-runtime',
      locateLibraries(CUDA_LIBRARIES, options.search),
      "install CUDA 13's cudart, cuBLAS and cuRAND (the CUDA 13 toolkit or NVIDIA's runtime packages) " +
        'and put their folder on LD_LIBRARY_PATH',
    ),
  );
  checks.push(
    libraryCheck(
      'cudnn-9',
      locateLibraries(CUDNN_LIBRARIES, options.search),
      'install cuDNN 9 built for CUDA 13 and put its folder on LD_LIBRARY_PATH',
    ),
  );

  const probeFn = options.probeProvider ?? ((ep: 'cuda' | 'webgpu') => probeProvider(ep, { gpuDir }));
  if (probe && problems.length === 0) {
    const r = await probeFn('cuda');
    checks.push({
      id: 'cuda-probe',
      ok: r.ok,
      detail: r.ok ? `a session on the CUDA provider ran (onnxruntime ${r.version})` : (r.error ?? 'failed'),
      ...(r.ok
        ? {}
        : { fix: 'fix the items above; the message says which library the provider could not open' }),
    });
  }
  const [vulkan] = locateLibraries(['libvulkan.so.1'], options.search);
  checks.push({
    id: 'vulkan-loader',
    ok: vulkan.onPath,
    detail: vulkan.file ?? 'libvulkan.so.1 not found',
    ...(vulkan.onPath
      ? {}
      : {
          fix: "for --ep webgpu: install the Vulkan loader (Debian: libvulkan1) and the GPU driver's Vulkan ICD",
        }),
  });
  if (probe) {
    const r = await probeFn('webgpu');
    checks.push({
      id: 'webgpu-probe',
      ok: r.ok,
      detail: r.ok
        ? `a session on the WebGPU provider ran (onnxruntime ${r.version})`
        : (r.error ?? 'failed'),
      ...(r.ok
        ? {}
        : {
            fix:
              "for --ep webgpu: a GPU whose driver offers Vulkan to Dawn (NVIDIA: the driver's Vulkan ICD); " +
              // Mesa's lavapipe 22.3 (Debian 12) lacks features Dawn requires; SwiftShader has them.
              `without a GPU, for checks at CPU speed only: VK_ICD_FILENAMES=${SWIFTSHADER_ICD} (Chromium's SwiftShader)`,
          }),
    });
  }
  const byId = new Map(checks.map((c) => [c.id, c.ok]));
  const cudaIds = [
    'platform',
    'gpu-runtime',
    'provider-version',
    'nvidia-driver',
    'cuda-13-runtime',
    'cudnn-9',
  ];
  return {
    gpuDir,
    cuda:
      cudaIds.every((id) => byId.get(id) !== false) &&
      byId.get('cuda-probe') !== false &&
      (!probe || byId.has('cuda-probe')),
    webgpu: byId.get('webgpu-probe') === true,
    checks,
  };
}

/** The report as the CLI prints it: one line per check, the fix under each failed one. */
export function formatDoctorReport(r: GpuDoctorReport): string {
  const lines = r.checks.map(
    (c) => `${c.ok ? 'ok     ' : 'MISSING'} ${c.id}: ${c.detail}${c.fix ? `\n          fix: ${c.fix}` : ''}`,
  );
  lines.push(
    '',
    `--ep cuda:   ${r.cuda ? 'usable' : 'not usable'}`,
    `--ep webgpu: ${r.webgpu ? 'usable' : 'not usable'}`,
  );
  return `${lines.join('\n')}\n`;
}
