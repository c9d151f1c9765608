import { RlpkdError } from '../../src/errors';
import { DataType, GraphBuilder, floatTensor } from '../../src/onnx';
import { findPyramidLevels, imageInput, levelName, resolveInputSize } from '../../src/analysis';
import { createSession, hostFloat } from '../../src/runtime';
import { seeded, tinyFpn } from './tiny-fpn';

describe('levelName', () => {
  it('names stride 2^k as Pk', () => {
    expect([4, 8, 16, 32, 64].map(levelName)).toEqual(['P2', 'P3', 'P4', 'P5', 'P6']);
    expect(levelName(1)).toBe('P0');
  });

  it('rejects strides that are not powers of two', () => {
    expect(() => levelName(12)).toThrow('pyramid stride 12 is not a power of two');
  });
});

describe('findPyramidLevels', () => {
  it('finds the rank-4 float outputs of a tiny FPN, finest first, and skips the rank-2 head', async () => {
    const model = tinyFpn();
    const levels = findPyramidLevels(model, { height: 64, width: 64 });
    expect(levels).toEqual([
      { name: 'P2', output: 'p2', stride: 4, channels: 4, height: 16, width: 16 },
      { name: 'P3', output: 'p3', stride: 8, channels: 4, height: 8, width: 8 },
    ]);
    // The graph really produces those shapes.
    const session = await createSession(model);
    const out = await session.run({ images: hostFloat([2, 3, 64, 64], seeded(2 * 3 * 64 * 64)) });
    await session.release();
    expect(out.p2.dims).toEqual([2, 4, 16, 16]);
    expect(out.p3.dims).toEqual([2, 4, 8, 8]);
  });

  it('rounds strides to the nearest power of two for odd input sizes (63×61 → 16×16 and 8×8)', () => {
    const model = tinyFpn({ input: ['batch', 3, 'height', 'width'] });
    const levels = findPyramidLevels(model, { height: 63, width: 61 });
    expect(levels.map((l) => [l.name, l.stride, l.height, l.width])).toEqual([
      ['P2', 4, 16, 16],
      ['P3', 8, 8, 8],
    ]);
  });

  it('orders by stride and names a max-pooled extra level (P4 from p3)', () => {
    const levels = findPyramidLevels(tinyFpn({ pooledLevel: true }), { height: 64, width: 64 });
    expect(levels.map((l) => `${l.name}:${l.output}:${l.stride}`)).toEqual([
      'P2:p2:4',
      'P3:p3:8',
      'P4:p4:16',
    ]);
  });

  it('gives a clear error when a graph has no pyramid outputs', () => {
    const b = new GraphBuilder({ name: 'classifier' });
    const x = b.input('x', DataType.FLOAT, [1, 3, 8, 8]);
    const pooled = b.op('Flatten', [b.op('GlobalAveragePool', [x])]);
    b.output(b.op('Gemm', [pooled, b.initializer(floatTensor('fc.weight', [3, 2], seeded(6)))]));
    let err: unknown;
    try {
      findPyramidLevels(b.build(), { height: 8, width: 8 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RlpkdError);
    expect((err as RlpkdError).message).toMatch(
      /graph 'classifier' has no detectable pyramid outputs at 8×8: expected rank-4 float outputs N×C×H×W; found Gemm_out \[1, 2\]/,
    );
    expect((err as RlpkdError).hint).toMatch(/pyramid levels/);
  });
});

describe('input size', () => {
  it('takes the static input shape, or the requested size, and says to pass --height/--width otherwise', () => {
    expect(resolveInputSize(tinyFpn())).toEqual({ height: 64, width: 64 });
    expect(resolveInputSize(tinyFpn(), { height: 96 })).toEqual({ height: 96, width: 64 });
    const dynamic = tinyFpn({ input: ['batch', 3, 'h', 'w'] });
    expect(() => resolveInputSize(dynamic)).toThrow(/has a dynamic size \[batch, 3, h, w\]/);
    try {
      resolveInputSize(dynamic);
    } catch (e) {
      expect((e as RlpkdError).hint).toMatch(/--height 224 --width 224/);
    }
    expect(resolveInputSize(dynamic, { height: 40, width: 48 })).toEqual({ height: 40, width: 48 });
  });

  it('needs a rank-4 float image input', () => {
    const b = new GraphBuilder({ name: 'vec' });
    b.output(b.op('Relu', [b.input('v', DataType.FLOAT, [1, 16])]));
    expect(() => imageInput(b.build())).toThrow(
      "graph 'vec' has no image input (a rank-4 float input N×C×H×W); inputs: v [1, 16]",
    );
  });
});
