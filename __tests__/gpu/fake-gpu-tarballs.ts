/**
 * Tiny stand-ins for the three npm tarballs of the GPU runtime, laid out as the real ones are
 * (package/..., the provider under package/Plugins/Linux/x64/), so installGpuRuntime can be tested
 * offline in milliseconds. The provider stand-in names its onnxruntime version the way the real
 * library does: the version string followed by a NUL byte, among other strings.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GPU_TARBALLS } from '../../src/gpu/install';

function tarball(root: string, file: string, files: Record<string, string | Buffer>): void {
  const src = fs.mkdtempSync(path.join(root, '.src-'));
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    fs.writeFileSync(path.join(src, name), content);
  }
  const r = spawnSync('tar', ['czf', path.join(root, file), '-C', src, 'package']);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  fs.rmSync(src, { recursive: true, force: true });
}

/** Writes the three tarballs into `dir`; `providerVersion` is what the fake provider names. */
export function writeFakeGpuTarballs(
  dir: string,
  versions: { binding?: string; common?: string; provider?: string } = {},
): void {
  fs.mkdirSync(dir, { recursive: true });
  const bin = 'package/bin/napi-v6';
  tarball(dir, GPU_TARBALLS.binding.file, {
    'package/package.json': JSON.stringify({
      name: 'onnxruntime-node',
      version: versions.binding ?? '1.29.0',
    }),
    [`${bin}/linux/x64/onnxruntime_binding.node`]: 'binding',
    [`${bin}/linux/x64/libonnxruntime.so.1`]: 'core',
    [`${bin}/linux/arm64/onnxruntime_binding.node`]: 'arm',
    [`${bin}/win32/x64/onnxruntime_binding.node`]: 'win',
    [`${bin}/darwin/arm64/onnxruntime_binding.node`]: 'mac',
  });
  tarball(dir, GPU_TARBALLS.common.file, {
    'package/package.json': JSON.stringify({
      name: 'onnxruntime-common',
      version: versions.common ?? '1.29.0',
    }),
  });
  const provider = Buffer.from(
    `ELF\0cuda 13.0\0 1.3.5\0${versions.provider ?? '1.29.0'}\0libcublasLt.so.13\0`,
    'latin1',
  );
  tarball(dir, GPU_TARBALLS.provider.file, {
    'package/package.json': JSON.stringify({ name: 'com.github.asus4.onnxruntime.linux-x64-gpu' }),
    'package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so': provider,
    'package/Plugins/Linux/x64/libonnxruntime_providers_shared.so': 'shared',
    'package/Plugins/Linux/x64/libonnxruntime_providers_tensorrt.so': 'not wanted',
  });
}
