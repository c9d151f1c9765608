/**
 * `rlpkd gpu install`: places onnxruntime-node 1.29.0's linux-x64 binding (with its onnxruntime-common)
 * and the CUDA 13 provider libraries of com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 in the GPU
 * runtime folder (see runtime/gpu-runtime.ts). The three npm tarballs come from the registry (`npm
 * pack`, which runs no package scripts, so onnxruntime-node's NuGet download never starts) or from a
 * folder prepared elsewhere (`--from`, for offline machines). Nothing outside that folder changes: the
 * default install stays CPU-only. Built in a staging folder, the manifest written last, then renamed
 * into place, so an interrupted install leaves the previous one (or none) intact.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlpkdError } from '../errors';
import {
  CUDA_PROVIDER_FILES,
  CUDA_PROVIDER_PACKAGE,
  CUDA_PROVIDER_PACKAGE_VERSION,
  GPU_MANIFEST_FILE,
  GPU_ORT_VERSION,
  gpuBindingDir,
  gpuOrtPackageDir,
  gpuRuntimeDir,
  type GpuManifest,
} from '../runtime/gpu-runtime';

/** The npm tarballs the GPU runtime is made of, as `npm pack` names them. */
export const GPU_TARBALLS = {
  binding: { spec: `onnxruntime-node@${GPU_ORT_VERSION}`, file: `onnxruntime-node-${GPU_ORT_VERSION}.tgz` },
  common: {
    spec: `onnxruntime-common@${GPU_ORT_VERSION}`,
    file: `onnxruntime-common-${GPU_ORT_VERSION}.tgz`,
  },
  provider: {
    spec: `${CUDA_PROVIDER_PACKAGE}@${CUDA_PROVIDER_PACKAGE_VERSION}`,
    file: `${CUDA_PROVIDER_PACKAGE}-${CUDA_PROVIDER_PACKAGE_VERSION}.tgz`,
  },
} as const;

/** Where the provider libraries sit inside the provider tarball. */
const PROVIDER_PATH_IN_TARBALL = 'package/Plugins/Linux/x64';

export interface GpuInstallOptions {
  /** Target folder (default gpuRuntimeDir()). */
  dir?: string;
  /** A folder holding the three tarballs (GPU_TARBALLS); without it they are fetched with `npm pack`. */
  from?: string;
  /** The npm executable (default `npm`). */
  npm?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface GpuInstallResult {
  dir: string;
  manifest: GpuManifest;
  /** Bytes the install occupies. */
  bytes: number;
}

function run(cmd: string, args: string[], cwd: string, what: string, hint: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new RlpkdError(`${what}: ${e.message}`, { hint })));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else
        reject(
          new RlpkdError(`${what} (exit code ${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`, {
            hint,
          }),
        );
    });
  });
}

function untar(tarball: string, into: string, members: string[] = [], extra: string[] = []): void {
  fs.mkdirSync(into, { recursive: true });
  const r = spawnSync('tar', ['xzf', tarball, '-C', into, ...extra, ...members], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new RlpkdError(`could not unpack ${tarball}: ${(r.stderr || r.error?.message || '').trim()}`, {
      hint: 'the file may be truncated: fetch it again (or rerun `rlpkd gpu install` without --from)',
    });
  }
}

/**
 * The onnxruntime versions a provider library names (strings like `1.29.0` followed by a NUL): the
 * version it was built for, checked against the binding's because onnxruntime refuses a mismatch.
 */
export function embeddedOrtVersions(file: string): string[] {
  const found = new Set<string>();
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(16 << 20);
    let pos = 0;
    let carry = '';
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) break;
      pos += n;
      const text = carry + chunk.toString('latin1', 0, n);
      for (const m of text.matchAll(/(?<![\d.])1\.\d{2}\.\d{1,2}(?=\0)/g)) found.add(m[0]);
      carry = text.slice(-16);
    }
  } finally {
    fs.closeSync(fd);
  }
  return [...found].sort();
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? folderBytes(p) : fs.statSync(p).size;
  }
  return total;
}

/** Fetches (or takes from `from`) the three tarballs into `into`; returns their paths. */
async function gatherTarballs(options: GpuInstallOptions, into: string, log: (l: string) => void) {
  const all = Object.values(GPU_TARBALLS);
  if (options.from) {
    const missing = all.filter((t) => !fs.existsSync(path.join(options.from!, t.file)));
    if (missing.length) {
      throw new RlpkdError(`${options.from} lacks ${missing.map((t) => t.file).join(', ')}`, {
        hint: 'prepare the folder with `tools/gpu-check.sh prepare` on a machine with the npm registry',
      });
    }
    return { dir: options.from, all };
  }
  fs.mkdirSync(into, { recursive: true });
  log(`fetching ${all.map((t) => t.spec).join(', ')} from the npm registry (about 290 MB)`);
  await run(
    options.npm ?? 'npm',
    ['pack', ...all.map((t) => t.spec), '--pack-destination', into, '--silent'],
    into,
    'npm could not fetch the GPU runtime packages',
    'this needs the npm registry; on an offline machine run `rlpkd gpu install --from DIR` with a folder ' +
      'prepared by `tools/gpu-check.sh prepare`',
  );
  return { dir: into, all };
}

/** Installs the GPU runtime; see the file comment. */
export async function installGpuRuntime(options: GpuInstallOptions = {}): Promise<GpuInstallResult> {
  const log = options.log ?? (() => undefined);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new RlpkdError(
      `the npm CUDA provider exists for linux x64 only, this is ${process.platform} ${process.arch}`,
      {
        hint: 'use --ep cpu (or --ep webgpu where a WebGPU adapter exists)',
      },
    );
  }
  const dir = path.resolve(options.dir ?? gpuRuntimeDir());
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const staging = `${dir}.staging-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  try {
    const tarballs = await gatherTarballs(options, path.join(staging, 'downloads'), log);
    const at = (t: { file: string }) => path.join(tarballs.dir, t.file);
    const platform = 'package/bin/napi-v6';
    // Only linux-x64 binaries of the binding: the others are half its 112 MB.
    untar(
      at(GPU_TARBALLS.binding),
      gpuOrtPackageDir(staging),
      [],
      [
        '--strip-components=1',
        `--exclude=${platform}/win32`,
        `--exclude=${platform}/darwin`,
        `--exclude=${platform}/linux/arm64`,
      ],
    );
    untar(
      at(GPU_TARBALLS.common),
      path.join(staging, 'node_modules', 'onnxruntime-common'),
      [],
      ['--strip-components=1'],
    );
    const providerTmp = path.join(staging, 'provider');
    untar(
      at(GPU_TARBALLS.provider),
      providerTmp,
      CUDA_PROVIDER_FILES.map((f) => `${PROVIDER_PATH_IN_TARBALL}/${f}`),
    );
    const bin = gpuBindingDir(staging);
    const files: Record<string, number> = {};
    for (const f of CUDA_PROVIDER_FILES) {
      fs.renameSync(path.join(providerTmp, PROVIDER_PATH_IN_TARBALL, f), path.join(bin, f));
      files[f] = fs.statSync(path.join(bin, f)).size;
    }
    fs.rmSync(providerTmp, { recursive: true, force: true });
    fs.rmSync(path.join(staging, 'downloads'), { recursive: true, force: true });

    const version = (pkg: string) =>
      (
        JSON.parse(fs.readFileSync(path.join(staging, 'node_modules', pkg, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
    const binding = version('onnxruntime-node');
    const common = version('onnxruntime-common');
    if (binding !== GPU_ORT_VERSION || common !== GPU_ORT_VERSION) {
      throw new RlpkdError(
        `the tarballs hold onnxruntime-node ${binding} and onnxruntime-common ${common}, not ${GPU_ORT_VERSION}`,
        {
          hint: 'prepare the --from folder again with `tools/gpu-check.sh prepare`',
        },
      );
    }
    const versions = embeddedOrtVersions(path.join(bin, CUDA_PROVIDER_FILES[0]));
    const providerOrtVersion = versions.length === 1 ? versions[0] : versions.join(' or ') || 'unknown';
    if (providerOrtVersion !== binding) {
      throw new RlpkdError(
        `the CUDA provider names onnxruntime ${providerOrtVersion}, the binding is ${binding}`,
        {
          hint: 'onnxruntime refuses a provider of another version; report this with the package versions',
        },
      );
    }
    for (const f of fs.readdirSync(bin)) files[f] ??= fs.statSync(path.join(bin, f)).size;
    const manifest: GpuManifest = {
      onnxruntimeNode: binding,
      providerPackage: GPU_TARBALLS.provider.spec,
      providerOrtVersion,
      files,
      installedAt: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(staging, GPU_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    const old = `${dir}.old-${process.pid}`;
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    fs.renameSync(staging, dir);
    fs.rmSync(old, { recursive: true, force: true });
    log(`installed in ${dir}`);
    return { dir, manifest, bytes: folderBytes(dir) };
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}
