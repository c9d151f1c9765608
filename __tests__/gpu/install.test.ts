/**
 * installGpuRuntime from a prepared folder (the offline path; the registry path differs only in
 * `npm pack` fetching the same three tarballs): what lands where, the manifest, version checks, and that
 * a failed install leaves the previous one intact and no staging folder behind.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RlpkdError } from '../../src/errors';
import { embeddedOrtVersions, installGpuRuntime } from '../../src/gpu/install';
import { gpuBindingDir, gpuInstallProblems, readGpuManifest } from '../../src/runtime/gpu-runtime';
import { writeFakeGpuTarballs } from './fake-gpu-tarballs';

const linuxX64 = process.platform === 'linux' && process.arch === 'x64';

(linuxX64 ? describe : describe.skip)('installGpuRuntime --from a folder', () => {
  let work: string;
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-gpu-install-'));
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('places the linux-x64 binding, onnxruntime-common and the two provider libraries, manifest last', async () => {
    const from = path.join(work, 'parts');
    writeFakeGpuTarballs(from);
    const dir = path.join(work, 'gpu');
    const lines: string[] = [];
    const r = await installGpuRuntime({ from, dir, log: (l) => lines.push(l) });
    expect(r.dir).toBe(dir);
    expect(fs.readdirSync(gpuBindingDir(dir)).sort()).toEqual([
      'libonnxruntime.so.1',
      'libonnxruntime_providers_cuda.so',
      'libonnxruntime_providers_shared.so',
      'onnxruntime_binding.node',
    ]);
    // Other platforms' binaries are left out.
    expect(fs.readdirSync(path.join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6'))).toEqual([
      'linux',
    ]);
    expect(
      fs.readdirSync(path.join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux')),
    ).toEqual(['x64']);
    expect(fs.existsSync(path.join(dir, 'node_modules', 'onnxruntime-common', 'package.json'))).toBe(true);
    const m = readGpuManifest(dir)!;
    expect(m).toMatchObject({
      onnxruntimeNode: '1.29.0',
      providerOrtVersion: '1.29.0',
      providerPackage: 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9',
    });
    expect(m.files['libonnxruntime_providers_shared.so']).toBe(6);
    expect(gpuInstallProblems(dir)).toEqual([]);
    expect(r.bytes).toBeGreaterThan(0);
    expect(lines).toEqual([`installed in ${dir}`]);
    expect(fs.readdirSync(work).sort()).toEqual(['gpu', 'parts']);
  });

  it('names missing tarballs; a provider of another onnxruntime version is refused, the old install kept', async () => {
    const dir = path.join(work, 'gpu');
    const before = readGpuManifest(dir)!.installedAt;
    const empty = path.join(work, 'empty');
    fs.mkdirSync(empty);
    await expect(installGpuRuntime({ from: empty, dir })).rejects.toThrow(
      /lacks onnxruntime-node-1\.29\.0\.tgz, onnxruntime-common-1\.29\.0\.tgz, com\.github\.asus4\.onnxruntime\.linux-x64-gpu-0\.4\.9\.tgz/,
    );
    const wrong = path.join(work, 'wrong');
    writeFakeGpuTarballs(wrong, { provider: '1.30.0' });
    const err = (await installGpuRuntime({ from: wrong, dir }).catch((e: unknown) => e)) as RlpkdError;
    expect(err).toBeInstanceOf(RlpkdError);
    expect(err.message).toBe('the CUDA provider names onnxruntime 1.30.0, the binding is 1.29.0');
    const badBinding = path.join(work, 'bad-binding');
    writeFakeGpuTarballs(badBinding, { binding: '1.30.0' });
    await expect(installGpuRuntime({ from: badBinding, dir })).rejects.toThrow(
      /hold onnxruntime-node 1\.30\.0 and onnxruntime-common 1\.29\.0, not 1\.29\.0/,
    );
    expect(readGpuManifest(dir)!.installedAt).toBe(before);
    expect(fs.readdirSync(work).filter((f) => f.includes('staging') || f.includes('.old-'))).toEqual([]);
  });

  it('a reinstall replaces the folder', async () => {
    const dir = path.join(work, 'gpu');
    fs.writeFileSync(path.join(dir, 'stray'), 'x');
    await installGpuRuntime({ from: path.join(work, 'parts'), dir });
    expect(fs.existsSync(path.join(dir, 'stray'))).toBe(false);
    expect(gpuInstallProblems(dir)).toEqual([]);
  });
});

describe('embeddedOrtVersions', () => {
  it('finds NUL-terminated 1.xx.y strings only, across read chunks', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-ortver-'));
    try {
      const file = path.join(dir, 'lib.so');
      // 17 MB: the version straddles the 16 MB chunk boundary; 1.3.5 (one-digit minor) and 21.29.0 are not versions.
      const buf = Buffer.alloc(17 << 20, 0x41);
      buf.write('\u00001.3.5\u000021.29.0\u0000', 100, 'latin1');
      buf.write('\u00001.29.0\u0000', (16 << 20) - 4, 'latin1');
      fs.writeFileSync(file, buf);
      expect(embeddedOrtVersions(file)).toEqual(['1.29.0']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
