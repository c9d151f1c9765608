/**
 * Gradients on onnxruntime's WebGPU provider against the CPU provider, on a tiny conv/max-pool net.
 * Optional: skips with a printed reason where no WebGPU adapter is found (on a machine without a GPU the
 * test environment offers Chromium's SwiftShader, see jest/software-vulkan.js). The max-pool's gradient
 * needs MaxPool's Indices output, which the WebGPU kernel cannot produce: that node goes to the CPU, so
 * without $RLPKD_ALLOW_CPU_FALLBACK the session is refused at creation instead of failing mid-run.
 */
import { RlpkdError } from '../../src/errors';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { floatTensor } from '../../src/onnx/tensor-data';
import { DataType, type OnnxModel } from '../../src/onnx/types';
import { ALLOW_CPU_FALLBACK_ENV, createSession, type HostTensor } from '../../src/runtime';
import { webgpuCpuNodeNames } from '../../src/runtime/webgpu-cpu-nodes';
import { computeGradients } from '../../src/training/gradients';
import { Rng } from '../../src/util/rng';
import { relativeL2 } from '../helpers/tensor-compare';

function values(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.uniform(-1, 1));
}

/** x [2, 2, 6, 6] → Conv 3×3 (4 ch) → Relu → MaxPool 2×2 → Conv 1×1 (3 ch) → y [2, 3, 3, 3]. */
function tinyNet(): OnnxModel {
  const rng = new Rng(16);
  const b = new GraphBuilder({ name: 'webgpu_grad', opset: 17 });
  const x = b.input('x', DataType.FLOAT, [2, 2, 6, 6]);
  const w1 = b.initializer(floatTensor('c1.weight', [4, 2, 3, 3], values(rng, 72)), { exactName: true });
  const b1 = b.initializer(floatTensor('c1.bias', [4], values(rng, 4)), { exactName: true });
  const w2 = b.initializer(floatTensor('c2.weight', [3, 4, 1, 1], values(rng, 12)), { exactName: true });
  const b2 = b.initializer(floatTensor('c2.bias', [3], values(rng, 3)), { exactName: true });
  const c1 = b.op('Conv', [x, w1, b1], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'c1' });
  const pooled = b.op(
    'MaxPool',
    [b.op('Relu', [c1])],
    { kernel_shape: [2, 2], strides: [2, 2] },
    { name: 'pool' },
  );
  b.output(
    b.op('Conv', [pooled, w2, b2], { kernel_shape: [1, 1] }, { name: 'c2' }),
    DataType.FLOAT,
    [2, 3, 3, 3],
  );
  return b.build();
}

function feeds(): { inputs: Record<string, HostTensor>; targets: Record<string, HostTensor> } {
  const rng = new Rng(61);
  return {
    inputs: { x: { data: Float32Array.from(values(rng, 144)), dims: [2, 2, 6, 6] } },
    targets: {
      [tinyNet().graph.outputs[0].name]: { data: Float32Array.from(values(rng, 54)), dims: [2, 3, 3, 3] },
    },
  };
}

/** Whether a WebGPU session starts here; the reason when it does not. */
async function webgpuAdapter(): Promise<string | undefined> {
  const b = new GraphBuilder({ name: 'probe', opset: 17 });
  const x = b.input('x', DataType.FLOAT, [2]);
  b.output(b.op('Relu', [x]), DataType.FLOAT, [2]);
  try {
    await (await createSession(b.build(), { executionProvider: 'webgpu' })).release();
    return undefined;
  } catch (err) {
    if (err instanceof RlpkdError && /WebGPU provider/.test(err.message)) return err.message;
    throw err;
  }
}

describe('WebGPU gradients', () => {
  const saved = process.env[ALLOW_CPU_FALLBACK_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[ALLOW_CPU_FALLBACK_ENV];
    else process.env[ALLOW_CPU_FALLBACK_ENV] = saved;
  });

  it('names the MaxPool nodes whose Indices output is used, and only those', () => {
    const b = new GraphBuilder({ name: 'pools', opset: 17 });
    const x = b.input('x', DataType.FLOAT, [1, 1, 4, 4]);
    const plain = b.op('MaxPool', [x], { kernel_shape: [2, 2] }, { name: 'plain' });
    const [, idx] = b.node('MaxPool', [x], { kernel_shape: [2, 2] }, { name: 'indexed', outputs: 2 });
    b.output(plain, DataType.FLOAT, [1, 1, 3, 3]);
    b.output(idx, DataType.INT64, [1, 1, 3, 3]);
    expect(webgpuCpuNodeNames(b.build())).toEqual(['indexed']);
    expect(webgpuCpuNodeNames(tinyNet())).toEqual([]);
  });

  it('match the CPU provider (relative L2 per parameter); a CPU node is refused without fallback', async () => {
    const why = await webgpuAdapter();
    if (why) {
      console.log(`skipped: no WebGPU adapter here (${why})`);
      return;
    }
    const model = tinyNet();
    const { inputs, targets } = feeds();
    delete process.env[ALLOW_CPU_FALLBACK_ENV];
    await expect(computeGradients(model, { inputs, targets, executionProvider: 'webgpu' })).rejects.toThrow(
      /would run some nodes of this graph on the CPU, not on webgpu/,
    );
    process.env[ALLOW_CPU_FALLBACK_ENV] = '1';
    const gpu = await computeGradients(model, { inputs, targets, executionProvider: 'webgpu' });
    const cpu = await computeGradients(model, { inputs, targets, executionProvider: 'cpu' });
    expect(gpu.executionProvider).toBe('webgpu');
    expect(Math.abs(gpu.loss - cpu.loss)).toBeLessThan(1e-5 * cpu.loss);
    expect([...gpu.gradients.keys()]).toEqual(['c1.weight', 'c1.bias', 'c2.weight', 'c2.bias']);
    for (const [name, g] of cpu.gradients) {
      const ref = g.data as Float32Array;
      expect(ref.some((v) => v !== 0)).toBe(true);
      expect(relativeL2(gpu.gradients.get(name)!.data as Float32Array, ref)).toBeLessThan(1e-5);
    }
  });
});
