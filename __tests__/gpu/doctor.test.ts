/**
 * gpu doctor and the library search behind it, on made-up machines: libraries on $LD_LIBRARY_PATH, in
 * the linker cache, off the path (a CUDA folder nobody added) or missing; each missing piece must come
 * with what to do, and a route is usable only when everything it needs is.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatDoctorReport, gpuDoctor, type GpuDoctorOptions } from '../../src/gpu/doctor';
import { installGpuRuntime } from '../../src/gpu/install';
import { locateLibraries } from '../../src/gpu/shared-libraries';
import { runCli } from '../helpers/run-cli';
import { writeFakeGpuTarballs } from './fake-gpu-tarballs';

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-doctor-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function libs(dir: string, names: string[]): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const n of names) fs.writeFileSync(path.join(dir, n), '');
  return dir;
}

describe('locateLibraries', () => {
  it('prefers LD_LIBRARY_PATH, then the ldconfig cache, then system folders; reports off-path finds', () => {
    const ld = libs(path.join(work, 'ld'), ['libcudart.so.13']);
    const sys = libs(path.join(work, 'sys'), ['libcudart.so.13', 'libcuda.so.1']);
    const off = libs(path.join(work, 'cuda-13.0', 'lib64'), ['libcublas.so.13']);
    const ldconfig =
      "3 libs found in cache `/etc/ld.so.cache'\n" +
      '\tlibcurand.so.10 (libc6,x86-64) => /opt/x/libcurand.so.10\n' +
      '\tlibcurand.so.10 (libc6) => /opt/x32/libcurand.so.10\n';
    const found = locateLibraries(
      ['libcudart.so.13', 'libcuda.so.1', 'libcurand.so.10', 'libcublas.so.13', 'libnope.so.1'],
      {
        ldLibraryPath: [ld],
        ldconfigOutput: ldconfig,
        systemDirs: [sys],
        offPathDirs: [off],
      },
    );
    expect(found).toEqual([
      { name: 'libcudart.so.13', file: path.join(ld, 'libcudart.so.13'), onPath: true },
      { name: 'libcuda.so.1', file: path.join(sys, 'libcuda.so.1'), onPath: true },
      { name: 'libcurand.so.10', file: '/opt/x/libcurand.so.10', onPath: true },
      { name: 'libcublas.so.13', file: path.join(off, 'libcublas.so.13'), onPath: false },
      { name: 'libnope.so.1', file: null, onPath: false },
    ]);
  });
});

describe('gpuDoctor', () => {
  const noProbe: GpuDoctorOptions['probeProvider'] = () => Promise.reject(new Error('must not probe'));

  it('a CPU machine without the GPU runtime: every missing piece with its fix, neither route usable', async () => {
    const r = await gpuDoctor({
      gpuDir: path.join(work, 'none'),
      search: { ldLibraryPath: [], ldconfigOutput: '', systemDirs: [], offPathDirs: [] },
      nvidiaSmi: () => null,
      probe: false,
      probeProvider: noProbe,
    });
    expect(r.cuda).toBe(false);
    expect(r.webgpu).toBe(false);
    const byId = Object.fromEntries(r.checks.map((c) => [c.id, c]));
    expect(Object.keys(byId)).toEqual([
      'platform',
      'gpu-runtime',
      'nvidia-driver',
      'cuda-13-runtime',
      'cudnn-9',
      'vulkan-loader',
    ]);
    for (const c of r.checks.filter((x) => !x.ok)) expect(c.fix).toBeTruthy();
    expect(byId['gpu-runtime'].detail).toBe(`no GPU runtime is installed in ${path.join(work, 'none')}`);
    expect(byId['gpu-runtime'].fix).toMatch(/npx rlpkd gpu install/);
    expect(byId['nvidia-driver'].detail).toBe('libcuda.so.1 not found; nvidia-smi not found or failed');
    expect(byId['cuda-13-runtime'].detail).toBe(
      'not found: libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10',
    );
    expect(byId['cudnn-9'].detail).toBe('not found: libcudnn.so.9');
    const text = formatDoctorReport(r);
    expect(text).toMatch(/^MISSING cudnn-9: not found: libcudnn\.so\.9\n {10}fix: install cuDNN 9/m);
    expect(text).toMatch(/--ep cuda: {3}not usable\n--ep webgpu: not usable\n$/);
  });

  it('a GPU machine: libraries off the path get the LD_LIBRARY_PATH line; all present + probes → usable', async () => {
    const gpuDir = path.join(work, 'gpu');
    writeFakeGpuTarballs(path.join(work, 'parts'));
    await installGpuRuntime({ from: path.join(work, 'parts'), dir: gpuDir });
    const sys = libs(path.join(work, 'gpu-sys'), ['libcuda.so.1', 'libvulkan.so.1']);
    const cuda = libs(path.join(work, 'cuda', 'lib64'), [
      'libcudart.so.13',
      'libcublas.so.13',
      'libcublasLt.so.13',
      'libcurand.so.10',
    ]);
    const cudnn = libs(path.join(work, 'cudnn'), ['libcudnn.so.9']);
    const smi = () => 'NVIDIA H100 80GB HBM3, 580.65.06, 81559 MiB';
    const probes: string[] = [];
    const probeProvider = (ep: 'cuda' | 'webgpu') => {
      probes.push(ep);
      return Promise.resolve(
        ep === 'cuda' ? { ok: true, version: '1.29.0' } : { ok: false, error: 'No supported adapters' },
      );
    };
    const offPath = await gpuDoctor({
      gpuDir,
      search: { ldLibraryPath: [cudnn], ldconfigOutput: '', systemDirs: [sys], offPathDirs: [cuda] },
      nvidiaSmi: smi,
      probeProvider,
    });
    const runtime = offPath.checks.find((c) => c.id === 'cuda-13-runtime')!;
    expect(runtime.ok).toBe(false);
    expect(runtime.fix).toBe(`export LD_LIBRARY_PATH=${cuda}:$LD_LIBRARY_PATH`);
    expect(offPath.cuda).toBe(false);

    const ready = await gpuDoctor({
      gpuDir,
      search: { ldLibraryPath: [cudnn, cuda], ldconfigOutput: '', systemDirs: [sys], offPathDirs: [] },
      nvidiaSmi: smi,
      probeProvider,
    });
    expect(ready.checks.filter((c) => !c.ok).map((c) => c.id)).toEqual(['webgpu-probe']);
    expect(ready.checks.find((c) => c.id === 'provider-version')!.detail).toBe(
      'provider 1.29.0, core 1.29.0',
    );
    expect(ready.checks.find((c) => c.id === 'nvidia-driver')!.detail).toContain(
      'NVIDIA H100 80GB HBM3, 580.65.06',
    );
    expect(ready.cuda).toBe(true);
    expect(ready.webgpu).toBe(false);
    expect(probes).toEqual(['cuda', 'webgpu', 'cuda', 'webgpu']);

    const failing = await gpuDoctor({
      gpuDir,
      search: { ldLibraryPath: [cudnn, cuda], ldconfigOutput: '', systemDirs: [sys], offPathDirs: [] },
      nvidiaSmi: smi,
      probeProvider: () => Promise.resolve({ ok: false, error: 'CUDA driver version is insufficient' }),
    });
    expect(failing.cuda).toBe(false);
    expect(failing.checks.find((c) => c.id === 'cuda-probe')!.detail).toBe(
      'CUDA driver version is insufficient',
    );
  });

  it('`rlpkd gpu doctor --json --no-probe` prints the report; `gpu install --from` an empty folder is one error', async () => {
    const doctor = await runCli('gpu', 'doctor', '--json', '--no-probe', '--dir', path.join(work, 'none'));
    expect(doctor.code).toBe(0);
    const report = JSON.parse(doctor.stdout) as { gpuDir: string; cuda: boolean; checks: { id: string }[] };
    expect(report.gpuDir).toBe(path.join(work, 'none'));
    expect(report.cuda).toBe(false);
    expect(report.checks.map((c) => c.id)).toContain('cudnn-9');
    fs.mkdirSync(path.join(work, 'empty'), { recursive: true });
    const install = await runCli(
      'gpu',
      'install',
      '--from',
      path.join(work, 'empty'),
      '--dir',
      path.join(work, 'x'),
    );
    expect(install.code).toBe(1);
    expect(install.stderr).toMatch(/^error: .*empty lacks onnxruntime-node-1\.29\.0\.tgz/m);
    expect(install.stderr).toMatch(/^ {2}hint: prepare the folder with `tools\/gpu-check\.sh prepare`/m);
    expect(fs.existsSync(path.join(work, 'x'))).toBe(false);
  });
});
