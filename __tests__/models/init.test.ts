import { FROZEN_BN_EPS, ParameterInit, foldBatchNorm } from '../../src/models/init';
import { RlpkdError } from '../../src/errors';

function moments(xs: Float32Array): { mean: number; std: number; min: number; max: number } {
  let m = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of xs) {
    m += x;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  m /= xs.length;
  let v = 0;
  for (const x of xs) v += (x - m) ** 2;
  return { mean: m, std: Math.sqrt(v / (xs.length - 1)), min, max };
}

describe('ParameterInit', () => {
  it('draws backbone conv weights from N(0, 2 / fan_out) (kaiming_normal_, fan_out, relu)', () => {
    const w = new ParameterInit({ seed: 1 }).backboneConvWeight('body.layer1.0.conv2.weight', [64, 64, 3, 3]);
    const { mean, std } = moments(w);
    const expected = Math.sqrt(2 / (64 * 9)); // 0.0589
    expect(Math.abs(mean)).toBeLessThan(0.002); // se 0.0003
    expect(Math.abs(std / expected - 1)).toBeLessThan(0.02); // se of std ≈ 0.4%
  });

  it('draws FPN weights from U(±sqrt(3/fan_in)) (kaiming_uniform_, a=1) with zero or random biases', () => {
    const init = new ParameterInit({ seed: 2 });
    const w = init.fpnConvWeight('fpn.layer_blocks.0.0.weight', [32, 32, 3, 3]);
    const bound = Math.sqrt(3 / (32 * 9));
    const m = moments(w);
    expect(m.min).toBeGreaterThanOrEqual(-bound);
    expect(m.max).toBeLessThan(bound);
    expect(Math.abs(m.std / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.03);
    expect(Array.from(init.fpnConvBias('fpn.layer_blocks.0.0.bias', 32, 288))).toEqual(new Array(32).fill(0));

    const rnd = new ParameterInit({ seed: 2, fpnBias: 'random' });
    const b1 = rnd.fpnConvBias('fpn.layer_blocks.0.0.bias', 32, 288);
    const b2 = rnd.fpnConvBias('fpn.layer_blocks.1.0.bias', 32, 288);
    expect(Math.max(...b1.map(Math.abs))).toBeLessThan(1 / Math.sqrt(288));
    expect(new Set(b1).size).toBe(32);
    expect(b1).not.toEqual(b2);
  });

  it('makes each tensor depend only on the seed and its name', () => {
    const a = new ParameterInit({ seed: 5 });
    const b = new ParameterInit({ seed: 5 });
    b.backboneConvWeight('body.conv1.weight', [8, 3, 7, 7]); // a different draw order
    expect(b.backboneConvWeight('x.weight', [4, 4, 1, 1])).toEqual(
      a.backboneConvWeight('x.weight', [4, 4, 1, 1]),
    );
    expect(new ParameterInit({ seed: 6 }).backboneConvWeight('x.weight', [4, 4, 1, 1])).not.toEqual(
      a.backboneConvWeight('x.weight', [4, 4, 1, 1]),
    );
  });

  it('folds frozen batch-norm like FrozenBatchNorm2d', () => {
    const identity = new ParameterInit({ batchNorm: 'identity' }).frozenBatchNorm('body.bn1', 3);
    // torchvision's fresh model exports 0.999995 = 1 / sqrt(1 + 1e-5) and a zero shift.
    expect(Array.from(identity.scale)).toEqual(
      new Array(3).fill(Math.fround(1 / Math.sqrt(1 + FROZEN_BN_EPS))),
    );
    expect(Array.from(identity.shift)).toEqual([0, 0, 0]);
    const f = foldBatchNorm([2, 0.5], [1, -1], [0.5, 2], [3, 0.25]);
    expect(f.scale[0]).toBeCloseTo(2 / Math.sqrt(3 + 1e-5), 6);
    expect(f.shift[0]).toBeCloseTo(1 - 0.5 * (2 / Math.sqrt(3 + 1e-5)), 6);
    expect(f.scale[1]).toBeCloseTo(0.5 / Math.sqrt(0.25 + 1e-5), 6);
    expect(f.shift[1]).toBeCloseTo(-1 - 2 * (0.5 / Math.sqrt(0.25 + 1e-5)), 6);
    const random = new ParameterInit({ seed: 3 }).frozenBatchNorm('body.layer1.0.bn1', 256);
    const s = moments(random.scale);
    expect(s.min).toBeGreaterThan(0.3);
    expect(s.max).toBeLessThan(2.5);
    expect(Math.abs(s.mean - 1.05)).toBeLessThan(0.1); // E[w / sqrt(v)] with v ~ U(0.5, 1.5) ≈ 1.04
  });

  it('takes pretrained tensors by state_dict key and names what is missing or mis-sized', () => {
    const store: Record<string, Float32Array> = {
      'm.weight': Float32Array.from([1, 2, 3, 4]),
      'bn.weight': Float32Array.from([1, 1]),
      'bn.bias': Float32Array.from([0, 1]),
      'bn.running_mean': Float32Array.from([0, 0]),
      'bn.running_var': Float32Array.from([1, 4]),
    };
    const init = new ParameterInit({ weights: (k) => store[k] });
    expect(Array.from(init.backboneConvWeight('m.weight', [4, 1, 1, 1]))).toEqual([1, 2, 3, 4]);
    const bn = init.frozenBatchNorm('bn', 2);
    expect(bn.scale[1]).toBeCloseTo(0.5, 5);
    expect(bn.shift[1]).toBeCloseTo(1, 6);
    expect(() => init.fpnConvBias('fpn.x.bias', 2, 4)).toThrow(
      "weights: no tensor 'fpn.x.bias' (expected shape [2])",
    );
    expect(() => init.backboneConvWeight('m.weight', [2, 1, 1, 1])).toThrow(RlpkdError);
    expect(() => init.backboneConvWeight('m.weight', [2, 1, 1, 1])).toThrow(
      /has 4 values, the model needs \[2, 1, 1, 1\] = 2/,
    );
  });
});
