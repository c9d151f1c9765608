import {
  RESNET_FPN_ARCHS,
  buildResnetFpn,
  buildResnetFpnWithInfo,
  countResnetFpnParameters,
  parseArch,
  type ResnetFpnArch,
} from '../../src/models';
import { findGraphProblems, modelToBytes, type OnnxModel } from '../../src/onnx';
import {
  PARAMETER_SLOTS,
  findSharedInitializers,
  untieSharedInitializers,
} from '../../src/onnx/shared-initializers';
import { createSession, type HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { referenceForward } from './reference-forward';

/** Conv/Gemm parameter initializers (name → dims), the way training will count them. */
function trainable(model: OnnxModel): Map<string, number[]> {
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t.dims]));
  const out = new Map<string, number[]>();
  for (const n of model.graph.nodes) {
    for (const i of PARAMETER_SLOTS[n.opType] ?? []) {
      const name = n.inputs[i];
      if (name && inits.has(name)) out.set(name, inits.get(name)!);
    }
  }
  return out;
}

function elements(shapes: Iterable<number[]>): number {
  let n = 0;
  for (const d of shapes) n += d.reduce((a, b) => a * b, 1);
  return n;
}

function histogram(model: OnnxModel): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of model.graph.nodes) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return h;
}

function randomImages(batch: number, h: number, w: number, seed: number): HostTensor {
  return { data: new Rng(seed).fillNormal(new Float32Array(batch * 3 * h * w)), dims: [batch, 3, h, w] };
}

async function run(model: OnnxModel, images: HostTensor): Promise<Record<string, HostTensor>> {
  const s = await createSession(model);
  try {
    return await s.run({ images });
  } finally {
    await s.release();
  }
}

/** torchvision's own counts (sum of numel over resnet_fpn_backbone(...).parameters(), torchvision 0.14). */
const TORCHVISION_PARAMETERS: Record<ResnetFpnArch, number> = {
  'resnet18-fpn': 13_774_016,
  'resnet34-fpn': 23_874_752,
  'resnet50-fpn': 26_799_296,
  'resnet101-fpn': 45_739_200,
};

describe('buildResnetFpn', () => {
  it.each(RESNET_FPN_ARCHS.map((a) => [a]))(
    '%s at width 1/16 validates and runs with batch 1 and 2 on a non-square input',
    async (arch) => {
      const H = 72;
      const W = 100;
      const { model, info } = buildResnetFpnWithInfo({
        arch,
        widthMult: 1 / 16,
        fpnChannels: 8,
        height: H,
        width: W,
      });
      expect(findGraphProblems(model)).toEqual([]);
      expect(model.graph.inputs).toEqual([{ name: 'images', dataType: 1, shape: ['batch', 3, H, W] }]);
      expect(model.graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3', 'p4', 'p5']);
      // Strides 4/8/16/32: every stride-2 stage rounds up (72 → 18, 9, 5, 3; 100 → 25, 13, 7, 4).
      const expected = [4, 8, 16, 32].map((s) => [8, Math.ceil(H / s), Math.ceil(W / s)]);
      expect(info.levels.map((l) => [l.stride, l.channels, l.height, l.width])).toEqual(
        expected.map((e, i) => [4 * 2 ** i, ...e]),
      );
      const images = randomImages(2, H, W, 1);
      const two = await run(model, images);
      const one = await run(model, {
        data: (images.data as Float32Array).slice(0, 3 * H * W),
        dims: [1, 3, H, W],
      });
      for (const [i, name] of ['p2', 'p3', 'p4', 'p5'].entries()) {
        expect(two[name].dims).toEqual([2, ...expected[i]]);
        expect(one[name].dims).toEqual([1, ...expected[i]]);
        const n = one[name].data.length;
        const a = one[name].data as Float32Array;
        const b = (two[name].data as Float32Array).subarray(0, n);
        let worst = 0;
        for (let k = 0; k < n; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]) / (1 + Math.abs(a[k])));
        expect(worst).toBeLessThan(1e-4);
        expect(Array.from(a).every(Number.isFinite)).toBe(true);
      }
      expect(elements(trainable(model).values())).toBe(info.trainableParameters);
      expect(info.trainableParameters).toBe(
        countResnetFpnParameters({ arch, widthMult: 1 / 16, fpnChannels: 8 }),
      );
    },
  );

  it('matches a float64 reference forward pass (BasicBlock and Bottleneck, with P6)', async () => {
    for (const [arch, depth] of [
      ['resnet18-fpn', 18],
      ['resnet50-fpn', 50],
    ] as const) {
      const H = 40;
      const W = 52;
      const model = buildResnetFpn({
        arch,
        widthMult: 1 / 16,
        fpnChannels: 6,
        height: H,
        width: W,
        p6: true,
        fpnBias: 'random',
        seed: 3,
      });
      const images = randomImages(1, H, W, 9);
      const got = await run(model, images);
      const ref = referenceForward(
        model,
        depth,
        { c: 3, h: H, w: W, data: Float64Array.from(images.data as Float32Array) },
        true,
      );
      ['p2', 'p3', 'p4', 'p5', 'p6'].forEach((name, i) => {
        expect(got[name].dims).toEqual([1, ref[i].c, ref[i].h, ref[i].w]);
        const g = got[name].data as Float32Array;
        let scale = 0;
        for (const v of ref[i].data) scale = Math.max(scale, Math.abs(v));
        let worst = 0;
        for (let k = 0; k < g.length; k++) worst = Math.max(worst, Math.abs(g[k] - ref[i].data[k]));
        expect(scale).toBeGreaterThan(0);
        expect(worst / scale).toBeLessThan(1e-5);
      });
    }
  });

  it('counts the trainable parameters torchvision counts, for every architecture at full width', () => {
    for (const arch of RESNET_FPN_ARCHS) {
      expect(countResnetFpnParameters({ arch })).toBe(TORCHVISION_PARAMETERS[arch]);
    }
    expect(countResnetFpnParameters({ arch: 'resnet50-fpn' })).toBe(26_799_296);
  });

  it('builds the full-width resnet50-fpn with 26,799,296 trainable elements and torch-exported structure', () => {
    const { model, info } = buildResnetFpnWithInfo({ arch: 'resnet50-fpn', batchNorm: 'identity' });
    const params = trainable(model);
    expect(params.size).toBe(69); // 61 conv weights + 8 FPN biases, as torchvision's parameters()
    expect(elements(params.values())).toBe(26_799_296);
    expect(info.trainableParameters).toBe(26_799_296);
    expect(params.get('body.conv1.weight')).toEqual([64, 3, 7, 7]);
    expect(params.get('body.layer1.0.downsample.0.weight')).toEqual([256, 64, 1, 1]);
    expect(params.get('body.layer4.2.conv3.weight')).toEqual([2048, 512, 1, 1]);
    expect(params.get('fpn.inner_blocks.3.0.weight')).toEqual([256, 2048, 1, 1]);
    expect(params.get('fpn.layer_blocks.0.0.bias')).toEqual([256]);
    // Op histogram of torch 1.13's export of resnet_fpn_backbone('resnet50') at 224x224, opset 17, without
    // its 101 Identity nodes (measured with tools/export_fpn.py; the torch test re-checks it live).
    expect(histogram(model)).toEqual({
      Add: 72,
      Conv: 61,
      Mul: 53,
      Relu: 49,
      Constant: 21,
      Shape: 9,
      Gather: 6,
      Unsqueeze: 6,
      Concat: 6,
      Slice: 3,
      Cast: 3,
      Resize: 3,
      MaxPool: 1,
    });
    const constants = model.graph.initializers.filter((t) => t.name.startsWith('onnx::'));
    expect(constants).toHaveLength(106);
    expect(constants[0]).toMatchObject({ name: 'onnx::Mul_body.bn1', dims: [1, 64, 1, 1] });
    expect(model.graph.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['p2', ['batch', 256, 56, 56]],
      ['p3', ['batch', 256, 28, 28]],
      ['p4', ['batch', 256, 14, 14]],
      ['p5', ['batch', 256, 7, 7]],
    ]);
    const resize = model.graph.nodes.find((n) => n.opType === 'Resize')!;
    expect(resize.name).toBe('/fpn/Resize');
    expect(resize.inputs.slice(1, 3)).toEqual(['', '']);
    expect(resize.attributes).toMatchObject({
      mode: { type: 'string', value: 'nearest' },
      coordinate_transformation_mode: { type: 'string', value: 'asymmetric' },
      nearest_mode: { type: 'string', value: 'floor' },
    });
  });

  it('can tie identical initializers exactly as torch.onnx.export does, and untying restores the graph', () => {
    const opts = {
      arch: 'resnet18-fpn',
      widthMult: 1 / 8,
      fpnChannels: 16,
      batchNorm: 'identity' as const,
      height: 64,
      width: 64,
    };
    const clean = buildResnetFpn(opts);
    const tied = buildResnetFpn({ ...opts, tieIdentical: true });
    const groups = findSharedInitializers(tied);
    const params = groups.filter((g) => g.kind === 'parameter');
    expect(params).toHaveLength(1);
    expect(params[0].initializer).toBe('fpn.inner_blocks.0.0.bias');
    expect(params[0].aliases.sort()).toEqual(
      ['fpn.inner_blocks.1.0.bias', 'fpn.inner_blocks.2.0.bias', 'fpn.inner_blocks.3.0.bias']
        .concat([0, 1, 2, 3].map((i) => `fpn.layer_blocks.${i}.0.bias`))
        .sort(),
    );
    // torch 1.13's resnet18 export has 39 Identity nodes: 7 FPN biases + 32 of the 40 batch-norm constants
    // (20 frozen BNs, 4 distinct channel counts; measured with tools/export_fpn.py).
    expect(histogram(tied).Identity).toBe(39);
    const untied = untieSharedInitializers(tied);
    expect(histogram(untied)).toEqual(histogram(clean));
    const byName = (m: OnnxModel): Map<string, Float32Array> =>
      new Map(m.graph.initializers.map((t) => [t.name, t.data as Float32Array]));
    expect(byName(untied)).toEqual(byName(clean));
    // With random biases (the default batch-norm is random too) nothing is tied.
    expect(
      findSharedInitializers(
        buildResnetFpn({ ...opts, batchNorm: 'random', fpnBias: 'random', tieIdentical: true }),
      ),
    ).toEqual([]);
  });

  it('is deterministic: same options give the same bytes, another seed other weights', () => {
    const opts = { arch: 'resnet18-fpn', widthMult: 1 / 16, fpnChannels: 8, height: 64, width: 64, seed: 4 };
    const a = modelToBytes(buildResnetFpn(opts));
    expect(modelToBytes(buildResnetFpn(opts))).toEqual(a);
    expect(modelToBytes(buildResnetFpn({ ...opts, seed: 5 }))).not.toEqual(a);
    // Each tensor depends on the seed and its name only: resnet18 and resnet34 share body.conv1.weight.
    const w = (arch: string): Float32Array =>
      buildResnetFpn({ ...opts, arch }).graph.initializers.find((t) => t.name === 'body.conv1.weight')!
        .data as Float32Array;
    expect(w('resnet34-fpn')).toEqual(w('resnet18-fpn'));
  });

  it('loads given weights by state_dict key', async () => {
    const opts = { arch: 'resnet34-fpn', widthMult: 1 / 16, fpnChannels: 8, height: 64, width: 64 };
    const src = buildResnetFpn({ ...opts, seed: 10, fpnBias: 'random', batchNorm: 'identity' });
    const byKey = new Map(src.graph.initializers.map((t) => [t.name, t.data as Float32Array]));
    const channels = (key: string): number => byKey.get(`onnx::Mul_${key}`)!.length;
    const weights = (key: string): Float32Array | undefined => {
      if (byKey.has(key)) return byKey.get(key);
      const m = /^(.*)\.(weight|bias|running_mean|running_var)$/.exec(key);
      if (!m || !byKey.has(`onnx::Mul_${m[1]}`)) return undefined;
      const c = channels(m[1]);
      return new Float32Array(c).fill(m[2] === 'weight' || m[2] === 'running_var' ? 1 : 0);
    };
    const copy = buildResnetFpn({ ...opts, seed: 99, weights });
    expect(copy.metadata['rlpkd.init']).toBe('pretrained');
    const images = randomImages(1, 64, 64, 2);
    const [x, y] = [await run(src, images), await run(copy, images)];
    for (const p of ['p2', 'p3', 'p4', 'p5']) expect(y[p].data).toEqual(x[p].data);
    expect(() =>
      buildResnetFpn({ ...opts, weights: (k) => (k === 'body.conv1.weight' ? undefined : weights(k)) }),
    ).toThrow("weights: no tensor 'body.conv1.weight' (expected shape [4, 3, 7, 7])");
  });

  it('emits opset 13 graphs that onnxruntime runs', async () => {
    const model = buildResnetFpn({
      arch: 'resnet18',
      widthMult: 1 / 16,
      fpnChannels: 8,
      height: 32,
      width: 48,
      opset: 13,
      p6: true,
    });
    expect(model.opsetImports).toEqual([{ domain: '', version: 13 }]);
    const out = await run(model, randomImages(1, 32, 48, 0));
    expect(out.p6.dims).toEqual([1, 8, 1, 1]);
    expect(out.p5.dims).toEqual([1, 8, 1, 2]);
  });

  it('rejects bad options with clear messages', () => {
    expect(parseArch('ResNet101_FPN')).toEqual({ arch: 'resnet101-fpn', depth: 101 });
    expect(() => buildResnetFpn({ arch: 'resnet52-fpn' })).toThrow(
      expect.objectContaining({
        message: "unknown architecture 'resnet52-fpn'",
        hint: expect.stringContaining('resnet50-fpn'),
      }),
    );
    expect(() => buildResnetFpn({ arch: 'resnet18-fpn', widthMult: 0 })).toThrow(
      /width multiplier must be a positive number/,
    );
    expect(() => buildResnetFpn({ arch: 'resnet18-fpn', widthMult: 0.001 })).toThrow(/rounds to 0/);
    expect(() => buildResnetFpn({ arch: 'resnet18-fpn', height: 16 })).toThrow(
      'input height must be an integer ≥ 32, got 16',
    );
    expect(() => buildResnetFpn({ arch: 'resnet18-fpn', opset: 12 })).toThrow(
      'opset 12 is not supported by the model builder',
    );
    expect(() => buildResnetFpn({ arch: 'resnet18-fpn', fpnChannels: 2.5 })).toThrow(/FPN channels/);
  });
});
