/**
 * Starts an execution provider on a two-input Add in a child process and reports what happened. A
 * child, because a process keeps the first onnxruntime it loads (see ort-module.ts) and a provider that
 * crashes while loading CUDA libraries must not take the caller down with it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GraphBuilder } from '../onnx/graph-builder';
import { saveModel } from '../onnx/model-io';
import { DataType } from '../onnx/types';
import { RlpkdError } from '../errors';
import { GPU_DOCTOR_HINT, gpuOrtPackageDir, gpuRuntimeDir, WEBGPU_HINT } from './gpu-runtime';

/** What a probe found. */
export interface ProviderProbe {
  ok: boolean;
  /** onnxruntime version of the module that ran the probe. */
  version?: string;
  /** onnxruntime's message when the provider did not start or computed a wrong sum. */
  error?: string;
}

// Runs in the child: argv = [module, ep, model]. Fallback to the CPU is disabled, so a session only
// starts when the provider itself takes the node.
const PROBE_SCRIPT = `(() => {
  const [mod, ep, file] = process.argv.slice(1);
  const say = (o) => process.stdout.write(JSON.stringify(o));
  let ort;
  try { ort = require(mod); } catch (e) { say({ ok: false, error: 'cannot load ' + mod + ': ' + e.message }); return; }
  const version = ort.env && ort.env.versions ? ort.env.versions.common : undefined;
  ort.InferenceSession.create(file, {
    executionProviders: [ep === 'cuda' ? { name: 'cuda', deviceId: 0 } : ep],
    extra: { session: { disable_cpu_ep_fallback: '1' } },
  }).then(async (s) => {
    const x = new ort.Tensor('float32', Float32Array.of(1, 2), [2]);
    const z = (await s.run({ x, y: x }))[s.outputNames[0]].data;
    say(z[0] === 2 && z[1] === 4 ? { ok: true, version } : { ok: false, version, error: 'wrong sum ' + Array.from(z) });
  }).catch((e) => say({ ok: false, version, error: e.message }));
})();`;

/**
 * Starts `ep` in a child process: CUDA through the GPU runtime in `gpuDir`, WebGPU through the bundled
 * onnxruntime-node. Never throws; a child that dies or hangs is reported as such.
 */
export async function probeProvider(
  ep: 'cuda' | 'webgpu',
  options: { gpuDir?: string; timeoutMs?: number } = {},
): Promise<ProviderProbe> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-probe-'));
  try {
    const b = new GraphBuilder({ name: 'probe', opset: 17 });
    const x = b.input('x', DataType.FLOAT, [2]);
    const y = b.input('y', DataType.FLOAT, [2]);
    b.output(b.op('Add', [x, y]), DataType.FLOAT, [2]);
    const file = path.join(dir, 'add.onnx');
    saveModel(b.build(), file);
    const mod =
      ep === 'cuda'
        ? gpuOrtPackageDir(options.gpuDir ?? gpuRuntimeDir())
        : path.dirname(require.resolve('onnxruntime-node/package.json'));
    return await new Promise<ProviderProbe>((resolve) => {
      const child = spawn(process.execPath, ['-e', PROBE_SCRIPT, mod, ep, file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        try {
          const r = JSON.parse(out) as ProviderProbe;
          // onnxruntime logs why a provider library did not load (dlopen's words) only to stderr.
          // eslint-disable-next-line no-control-regex
          const dl = /with error: (.+)$/m.exec(err.replace(/\x1b\[[0-9;]*m/g, ''))?.[1]?.trim();
          const error = r.error?.trim();
          resolve(
            r.ok ? r : { ...r, error: dl && error && !error.includes(dl) ? `${error} (${dl})` : error },
          );
        } catch {
          const why = signal ? `was killed (${signal})` : `exited with code ${code}`;
          // The first line that names an error says most; else the last words before exiting.
          const lines = err.split('\n').filter((l) => l.trim() && !/^Node\.js v/.test(l));
          const said = lines.find((l) => /error/i.test(l)) ?? lines.slice(-2).join(' | ');
          resolve({ ok: false, error: `the probe process ${why}: ${said.trim()}` });
        }
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const verified = new Set<string>();

/**
 * Throws one RlpkdError when `ep` cannot start on this machine (checked once per process by a probe),
 * so a run fails before it writes anything instead of at its first GPU session.
 */
export async function ensureProviderUsable(ep: 'cpu' | 'cuda' | 'webgpu'): Promise<void> {
  if (ep === 'cpu' || verified.has(ep)) return;
  const r = await probeProvider(ep);
  if (!r.ok) {
    throw new RlpkdError(`the ${ep === 'cuda' ? 'CUDA' : 'WebGPU'} provider cannot start here: ${r.error}`, {
      hint: ep === 'cuda' ? GPU_DOCTOR_HINT : WEBGPU_HINT,
    });
  }
  verified.add(ep);
}
