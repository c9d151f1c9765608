/**
 * Execution providers never fall back silently: --ep cuda without the GPU runtime, an install missing a
 * piece, or a provider that cannot start, and --ep webgpu without an adapter, are each one RlpkdError
 * with a hint. One onnxruntime per process: asking for the GPU runtime after the bundled one ran is an
 * error too. (On a machine with a WebGPU adapter the webgpu case runs instead and must match the CPU.)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RlpkdError } from '../../src/errors';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { DataType } from '../../src/onnx/types';
import { createSession, cudaAvailable, resolveExecutionProvider, type GraphSession } from '../../src/runtime';
import {
  CUDA_PROVIDER_FILES,
  GPU_MANIFEST_FILE,
  gpuBindingDir,
  gpuInstallProblems,
  gpuOrtPackageDir,
} from '../../src/runtime/gpu-runtime';
import { loadedOrtFlavour, ortModule } from '../../src/runtime/ort-module';

function addModel(): GraphBuilder {
  const b = new GraphBuilder({ name: 'add', opset: 17 });
  const x = b.input('x', DataType.FLOAT, [2]);
  const y = b.input('y', DataType.FLOAT, [2]);
  b.output(b.op('Add', [x, y]), DataType.FLOAT, [2]);
  return b;
}

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<RlpkdError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(RlpkdError);
    return err as RlpkdError;
  }
  throw new Error('expected an RlpkdError, got none');
}

describe('execution providers', () => {
  const saved = process.env.RLPKD_GPU_DIR;
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-ep-'));
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.RLPKD_GPU_DIR;
    else process.env.RLPKD_GPU_DIR = saved;
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('--ep cuda without the GPU runtime: one error naming the folder and `rlpkd gpu install`', async () => {
    process.env.RLPKD_GPU_DIR = path.join(dir, 'none');
    expect(cudaAvailable()).toBe(false);
    expect(resolveExecutionProvider('auto')).toBe('cpu');
    const err = await errorOf(() => resolveExecutionProvider('cuda'));
    expect(err.message).toBe(
      `the CUDA execution provider is not installed: no GPU runtime is installed in ${path.join(dir, 'none')}`,
    );
    expect(err.hint).toMatch(/npx rlpkd gpu install.*npx rlpkd gpu doctor/);
    const viaSession = await errorOf(createSession(addModel().build(), { executionProvider: 'cuda' }));
    expect(viaSession.message).toBe(err.message);
    // Nothing was loaded for it.
    expect(loadedOrtFlavour()).toBeUndefined();
  });

  it('an install with a missing piece or a version mismatch lists each problem', () => {
    const gpu = path.join(dir, 'partial');
    process.env.RLPKD_GPU_DIR = gpu;
    fs.mkdirSync(gpuBindingDir(gpu), { recursive: true });
    fs.writeFileSync(path.join(gpuOrtPackageDir(gpu), 'package.json'), '{"version":"1.29.0"}');
    fs.writeFileSync(path.join(gpuBindingDir(gpu), 'onnxruntime_binding.node'), '');
    fs.writeFileSync(path.join(gpuBindingDir(gpu), CUDA_PROVIDER_FILES[1]), '');
    fs.writeFileSync(
      path.join(gpu, GPU_MANIFEST_FILE),
      JSON.stringify({
        onnxruntimeNode: '1.29.0',
        providerOrtVersion: '1.30.0',
        providerPackage: 'x',
        files: {},
      }),
    );
    expect(gpuInstallProblems(gpu)).toEqual([
      "the CUDA provider is onnxruntime 1.30.0's but the binding is 1.29.0: onnxruntime refuses a provider of another version",
      `${CUDA_PROVIDER_FILES[0]} is missing from ${gpuBindingDir(gpu)}`,
    ]);
    expect(cudaAvailable()).toBe(false);
  });

  it('--ep webgpu: the same results as the CPU where an adapter exists, else one error with a hint', async () => {
    const feeds = {
      x: { data: Float32Array.of(1, 2), dims: [2] },
      y: { data: Float32Array.of(3, 5), dims: [2] },
    };
    let session: GraphSession | undefined;
    try {
      session = await createSession(addModel().build(), { executionProvider: 'webgpu' });
    } catch (err) {
      expect(err).toBeInstanceOf(RlpkdError);
      const e = err as RlpkdError;
      expect(e.message).toMatch(/^onnxruntime could not start the WebGPU provider: .*adapter/i);
      expect(e.hint).toMatch(/Vulkan/);
      console.log(`no WebGPU adapter here: ${e.message}`);
    }
    if (session) {
      expect(session.executionProvider).toBe('webgpu');
      const out = await session.run(feeds);
      expect(Array.from(out[session.outputNames[0]].data as Float32Array)).toEqual([4, 7]);
      await session.release();
    }
    expect(loadedOrtFlavour()).toBe('bundled');
  });

  it('one onnxruntime per process: the GPU runtime is refused once the bundled one is loaded', async () => {
    const cpu = await createSession(addModel().build());
    expect(cpu.executionProvider).toBe('cpu');
    await cpu.release();
    expect(loadedOrtFlavour()).toBe('bundled');
    const err = await errorOf(() => ortModule('gpu'));
    expect(err.message).toMatch(/already runs the bundled onnxruntime/);
    expect(err.hint).toMatch(/--ep cuda/);
  });
});
