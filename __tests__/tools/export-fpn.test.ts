/**
 * tools/export_fpn.py against the builder. Needs Python with torch, torchvision and onnx (Debian:
 * /usr/bin/python3); skips with a printed reason otherwise. The argument checks need only a Python.
 * RLPKD_SLOW=1 adds numeric comparisons for resnet34 and resnet101.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inspectModel } from '../../src/analysis';
import { buildResnetFpn, buildResnetFpnWithInfo, type ResnetFpnArch } from '../../src/models';
import { loadModel, type OnnxModel } from '../../src/onnx';
import {
  PARAMETER_SLOTS,
  findSharedInitializers,
  untieSharedInitializersDetailed,
} from '../../src/onnx/shared-initializers';
import { createSession, type HostTensor } from '../../src/runtime';
import { findTorchPython } from '../../src/tools/python';
import { optionalReference, TORCH_INSTALL_HINT } from '../helpers/optional-reference';
import { Rng } from '../../src/util/rng';

const ROOT = path.join(__dirname, '..', '..');
const TOOL = path.join(ROOT, 'tools', 'export_fpn.py');
const torchPython = optionalReference(
  'torchvision export comparisons',
  findTorchPython(),
  TORCH_INSTALL_HINT,
);
const anyPython = torchPython ?? (spawnSync('python3', ['--version']).status === 0 ? 'python3' : null);
const slow = process.env.RLPKD_SLOW === '1';
// PyTorch exports take seconds each, more on a loaded machine.
jest.setTimeout(300_000);

const withTorch = torchPython ? describe : describe.skip;
const withPython = anyPython ? describe : describe.skip;

function exportFpn(
  args: string[],
  python = torchPython!,
): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(python, [TOOL, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function histogram(model: OnnxModel, skip: string[] = []): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of model.graph.nodes) if (!skip.includes(n.opType)) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return h;
}

/** Conv/Gemm/MatMul parameter initializers, name → dims. */
function parameters(model: OnnxModel): Map<string, number[]> {
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t.dims]));
  const out = new Map<string, number[]>();
  for (const n of model.graph.nodes) {
    for (const i of PARAMETER_SLOTS[n.opType] ?? []) {
      if (n.inputs[i] && inits.has(n.inputs[i])) out.set(n.inputs[i], inits.get(n.inputs[i])!);
    }
  }
  return out;
}

/** Reads a little-endian float32 C-order .npy file. */
function readNpy(file: string): { shape: number[]; data: Float32Array } {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${file}: expected little-endian float32 in C order, header ${header}`);
  }
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const body = buf.subarray(start + headerLen);
  if (os.endianness() !== 'LE') throw new Error('readNpy: this test assumes a little-endian host');
  const data = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  return { shape, data };
}

/** torchvision backbone with randomized frozen-BN statistics and FPN biases: state_dict → .pth and .npy files. */
const MAKE_WEIGHTS = `
import sys, os, torch, numpy as np
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
arch, out = sys.argv[1], sys.argv[2]
torch.manual_seed(123)
m = resnet_fpn_backbone(backbone_name=arch, weights=None, trainable_layers=5)
g = torch.Generator().manual_seed(7)
sd = m.state_dict()
for k, v in sd.items():
    if k.endswith('running_var'):
        v.copy_(torch.rand(v.shape, generator=g) + 0.5)
    elif k.endswith('running_mean') or (k.startswith('body.') and k.endswith('bias')):
        v.copy_(torch.randn(v.shape, generator=g) * 0.1)
    elif k.startswith('body.') and ('bn' in k or 'downsample.1' in k):
        v.copy_(1 + torch.randn(v.shape, generator=g) * 0.1)
    elif k.startswith('fpn.') and k.endswith('bias'):
        v.copy_(torch.randn(v.shape, generator=g) * 0.05)
torch.save(sd, os.path.join(out, 'weights.pth'))
os.makedirs(os.path.join(out, 'npy'), exist_ok=True)
for k, v in sd.items():
    np.save(os.path.join(out, 'npy', k + '.npy'), v.detach().float().numpy())
print(len(sd))
`;

/** A seeded torchvision MobileNetV3-Small classifier: classifier.pth and its first conv weight as .npy. */
const MOBILENET_CLASSIFIER = `
import sys, os, torch, numpy as np, torchvision
out = sys.argv[1]
torch.manual_seed(11)
sd = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
torch.save(sd, os.path.join(out, 'classifier.pth'))
np.save(os.path.join(out, 'features.0.0.weight.npy'), sd['features.0.0.weight'].numpy())
`;

/**
 * A MobileNetV3-FPN export: the expected activation/pool op counts, at least 11 depthwise convolutions
 * (weight [C, 1, k, k], group C), levels p2..p5 at strides 4..32, and no op the gradient engine lacks.
 */
function checkMobilenetExport(model: OnnxModel, ops: Record<string, number>): void {
  const h = histogram(model);
  expect(h).toMatchObject(ops);
  if (!ops.HardSwish) expect(h.HardSwish).toBeUndefined();
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t.dims]));
  const depthwise = model.graph.nodes.filter(
    (n) => n.opType === 'Conv' && inits.get(n.inputs[1])?.[1] === 1 && n.attributes.group?.value !== 1,
  );
  expect(depthwise.length).toBeGreaterThanOrEqual(11);
  const report = inspectModel(model, { height: 64, width: 96 });
  expect(report.levels.map((l) => [l.output, l.name, l.stride, l.channels])).toEqual(
    ['p2', 'p3', 'p4', 'p5'].map((p, k) => [p, `P${k + 2}`, 4 * 2 ** k, 256]),
  );
  expect(report.unsupportedOps).toEqual([]);
}

async function runBoth(
  a: OnnxModel | string,
  b: OnnxModel,
  images: HostTensor,
): Promise<[Record<string, HostTensor>, Record<string, HostTensor>]> {
  const sa = await createSession(a);
  const sb = await createSession(b);
  try {
    return [await sa.run({ images }), await sb.run({ images })];
  } finally {
    await sa.release();
    await sb.release();
  }
}

withTorch('tools/export_fpn.py with torchvision', () => {
  let dir: string;
  const weightDirs = new Map<string, string>();
  /** A work folder holding weights.pth and npy/ for a torchvision arch, made once per arch. */
  const weightsFor = (tv: string): string => {
    let work = weightDirs.get(tv);
    if (!work) {
      work = fs.mkdtempSync(path.join(dir, `${tv}-`));
      const made = spawnSync(torchPython!, ['-c', MAKE_WEIGHTS, tv, work], {
        encoding: 'utf8',
        timeout: 300_000,
      });
      if (made.status !== 0) throw new Error(`making ${tv} weights failed: ${made.stderr}`);
      weightDirs.set(tv, work);
    }
    return work;
  };
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-export-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('exports resnet50-fpn at 224x224 with the structure the builder emits', async () => {
    const file = path.join(dir, 'r50.onnx');
    const r = exportFpn(['--arch', 'resnet50', '--out', file, '--quiet']);
    expect(r).toMatchObject({ status: 0 }); // prints stderr on failure
    const exported = loadModel(file);
    expect(exported.graph.inputs.map((v) => [v.name, v.shape])).toEqual([['images', ['batch', 3, 224, 224]]]);
    expect(exported.graph.outputs.map((o) => [o.name, o.shape?.[0], o.shape?.[1]])).toEqual(
      ['p2', 'p3', 'p4', 'p5'].map((n) => [n, 'batch', 256]),
    );

    // The trap: the 8 zero FPN biases are one initializer read through 7 Identity nodes.
    const shared = findSharedInitializers(exported);
    const tied = shared.filter((g) => g.kind === 'parameter');
    expect(tied.map((g) => [g.initializer, g.uses.length])).toEqual([['fpn.inner_blocks.0.0.bias', 8]]);
    const { model: untied, copies } = untieSharedInitializersDetailed(exported);
    expect(
      copies
        .filter((c) => c.name.startsWith('fpn.'))
        .map((c) => c.name)
        .sort(),
    ).toEqual(
      ['fpn.inner_blocks.1.0.bias', 'fpn.inner_blocks.2.0.bias', 'fpn.inner_blocks.3.0.bias']
        .concat([0, 1, 2, 3].map((i) => `fpn.layer_blocks.${i}.0.bias`))
        .sort(),
    );
    expect(histogram(untied).Identity).toBeUndefined();

    const { model: built, info } = buildResnetFpnWithInfo({ arch: 'resnet50-fpn', height: 224, width: 224 });
    const skip = ['Identity', 'Constant'];
    expect(histogram(built, skip)).toEqual(histogram(exported, skip));
    const seq = (m: OnnxModel): string[] =>
      m.graph.nodes.filter((n) => !skip.includes(n.opType)).map((n) => n.opType);
    expect(seq(built)).toEqual(seq(exported));
    const [pb, pe] = [parameters(built), parameters(untied)];
    expect([...pb.keys()].sort()).toEqual([...pe.keys()].sort());
    expect(new Map([...pb].sort())).toEqual(new Map([...pe].sort()));
    let n = 0;
    for (const d of pe.values()) n += d.reduce((a, b) => a * b, 1);
    expect(n).toBe(26_799_296);
    expect(info.trainableParameters).toBe(26_799_296);
    // Tied the way the exporter ties (fresh-model batch-norm, zero biases), even the Identity count matches.
    const builtTied = buildResnetFpn({ arch: 'resnet50-fpn', batchNorm: 'identity', tieIdentical: true });
    expect(histogram(builtTied)).toEqual(histogram(exported));
  });

  // BasicBlock by default; Bottleneck numerics (resnet50/101, ~100 MB of weights each) with RLPKD_SLOW=1.
  // The float64 reference test in __tests__/models checks Bottleneck semantics without PyTorch.
  const numeric: [ResnetFpnArch, number, number, boolean][] = [
    ['resnet18-fpn', 96, 128, true],
    ...(slow
      ? ([
          ['resnet50-fpn', 64, 80, false],
          ['resnet34-fpn', 72, 100, true],
          ['resnet101-fpn', 64, 64, false],
        ] as [ResnetFpnArch, number, number, boolean][])
      : []),
  ];
  it.each(numeric)(
    '%s built from the same state_dict gives the export’s outputs (%ix%i, p6 %s)',
    async (arch, height, width, p6) => {
      const tv = arch.replace('-fpn', '');
      const work = weightsFor(tv);
      const file = path.join(work, 'export.onnx');
      const args = ['--arch', tv, '--weights', path.join(work, 'weights.pth'), '--out', file];
      args.push('--height', String(height), '--width', String(width), '--batch', '2', '--quiet');
      if (p6) args.push('--p6');
      const r = exportFpn(args);
      expect(r).toMatchObject({ status: 0 });
      const npy = path.join(work, 'npy');
      const weights = (key: string): Float32Array | undefined => {
        const f = path.join(npy, `${key}.npy`);
        return fs.existsSync(f) ? readNpy(f).data : undefined;
      };
      const built = buildResnetFpn({ arch, height, width, p6, weights });
      const images: HostTensor = {
        data: new Rng(17).fillNormal(new Float32Array(2 * 3 * height * width)),
        dims: [2, 3, height, width],
      };
      const [want, got] = await runBoth(file, built, images);
      const names = p6 ? ['p2', 'p3', 'p4', 'p5', 'p6'] : ['p2', 'p3', 'p4', 'p5'];
      for (const name of names) {
        expect(got[name].dims).toEqual(want[name].dims);
        const a = want[name].data as Float32Array;
        const b = got[name].data as Float32Array;
        let scale = 0;
        let worst = 0;
        for (let i = 0; i < a.length; i++) {
          scale = Math.max(scale, Math.abs(a[i]));
          worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        expect(scale).toBeGreaterThan(1e-3);
        expect(worst / scale).toBeLessThan(1e-4);
      }
    },
  );

  it.each([
    ['mobilenet_v3_large', 17, { HardSwish: 20, HardSigmoid: 8, GlobalAveragePool: 8 }],
    ['mobilenet_v3_large', 13, { HardSigmoid: 28, GlobalAveragePool: 8 }],
  ] as const)(
    'exports %s (opset %i) as p2..p5 at strides 4..32, every op differentiable',
    (arch, opset, ops) => {
      const file = path.join(dir, `${arch}-${opset}.onnx`);
      const r = exportFpn(['--arch', arch, '--opset', String(opset), '--out', file, '--quiet']);
      expect(r).toMatchObject({ status: 0 });
      checkMobilenetExport(loadModel(file), ops);
    },
  );

  it('loads a MobileNetV3-Small classifier state_dict (features.*) into the FPN body', () => {
    const work = fs.mkdtempSync(path.join(dir, 'mnv3-classifier-'));
    const made = spawnSync(torchPython!, ['-c', MOBILENET_CLASSIFIER, work], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (made.status !== 0) throw new Error(`making the classifier weights failed: ${made.stderr}`);
    const file = path.join(work, 'export.onnx');
    const weights = path.join(work, 'classifier.pth');
    const r = exportFpn(['--arch', 'mobilenet_v3_small', '--weights', weights, '--out', file]);
    expect(r).toMatchObject({ status: 0 });
    expect(r.stdout).toContain('MobileNet classifier (FPN left at its initialization)');
    const model = loadModel(file);
    checkMobilenetExport(model, { HardSwish: 18, HardSigmoid: 9, GlobalAveragePool: 9 });
    const stem = model.graph.initializers.find((t) => t.name === 'body.0.0.weight')!;
    expect(Array.from(stem.data as Float32Array)).toEqual(
      Array.from(readNpy(path.join(work, 'features.0.0.weight.npy')).data),
    );
  });

  it('rejects weights of another architecture, naming the mismatch', () => {
    const work = weightsFor('resnet18');
    const r = exportFpn([
      '--arch',
      'resnet34',
      '--weights',
      path.join(work, 'weights.pth'),
      '--out',
      path.join(work, 'x.onnx'),
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^error: weights file '.*weights\.pth' does not fit this architecture: \d+ missing \(e\.g\. body\.layer1\.2\./,
    );
    expect(r.stderr).toContain('hint: check --arch');
    expect(fs.existsSync(path.join(work, 'x.onnx'))).toBe(false);
  });
});

withPython('tools/export_fpn.py argument checks', () => {
  it.each([
    [
      ['--arch', 'resnet52', '--out', 'x.onnx'],
      "error: unknown --arch 'resnet52'",
      'hint: use one of: resnet18, resnet34, resnet50, resnet101',
    ],
    [
      ['--arch', 'resnet50', '--weights', '/nonexistent/w.pth', '--out', 'x.onnx'],
      "error: weights file '/nonexistent/w.pth' does not exist",
      'hint: check the path',
    ],
    [
      ['--arch', 'resnet50', '--opset', '18', '--out', 'x.onnx'],
      'error: --opset 18 is not supported',
      'hint: use 13..17',
    ],
    [
      ['--arch', 'resnet50', '--height', '16', '--out', 'x.onnx'],
      'error: --height 16 is too small',
      'hint: ResNet-FPN needs at least 32 pixels',
    ],
    [
      ['--arch', 'resnet50', '--out', '/nonexistent/dir/x.onnx'],
      "error: output folder '/nonexistent/dir' does not exist",
      'hint: create it first',
    ],
  ])('%j fails with one clear message', (args, message, hint) => {
    const r = exportFpn(args, anyPython!);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain(hint);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1);
  });
});
