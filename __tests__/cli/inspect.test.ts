/**
 * `rlpkd inspect`, run in-process through main(). The ResNet-50-FPN acceptance check runs when a Python with
 * torch, torchvision and onnx is available (tools/export_fpn.py), and is skipped with a printed reason otherwise.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/run-cli';
import { DataType, GraphBuilder, floatTensor, modelToBytes, saveModel } from '../../src/onnx';
import { findTorchPython } from '../../src/tools/python';
import { optionalReference, TORCH_INSTALL_HINT } from '../helpers/optional-reference';
import { TINY_FPN_MACS, TINY_FPN_TRAINABLE, seeded, tinyFpn } from '../analysis/tiny-fpn';

const rlpkd = runCli;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-inspect-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('rlpkd inspect', () => {
  it('--json prints one object with inputs, outputs, opset, ops, parameters, levels and unsupported ops', async () => {
    const file = path.join(dir, 'tiny.onnx');
    saveModel(tinyFpn(), file);
    const r = await rlpkd('inspect', file, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const key of [
      'inputs',
      'outputs',
      'opset',
      'ops',
      'trainableParameters',
      'levels',
      'unsupportedOps',
    ]) {
      expect(report).toHaveProperty(key);
    }
    expect(report.opset).toBe(13);
    expect(report.trainableParameters).toBe(TINY_FPN_TRAINABLE);
    expect((report.ops as Record<string, number>).Conv).toBe(6);
    expect(report.levels).toEqual([
      {
        name: 'P2',
        output: 'p2',
        stride: 4,
        channels: 4,
        height: 16,
        width: 16,
        macs: TINY_FPN_MACS.P2,
        costShare: TINY_FPN_MACS.P2 / TINY_FPN_MACS.total,
        distillCost: expect.any(Number),
      },
      {
        name: 'P3',
        output: 'p3',
        stride: 8,
        channels: 4,
        height: 8,
        width: 8,
        macs: TINY_FPN_MACS.P3,
        costShare: TINY_FPN_MACS.P3 / TINY_FPN_MACS.total,
        distillCost: expect.any(Number),
      },
    ]);
    expect(Array.isArray(report.unsupportedOps)).toBe(true);
  });

  it('prints aligned tables with thousands separators, and "none" for empty sections', async () => {
    const file = path.join(dir, 'tiny-text.onnx');
    saveModel(tinyFpn(), file);
    const r = await rlpkd('inspect', file);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    const header = lines.find((l) => l.includes('exclusive MACs'))!;
    const p2 = lines.find((l) => l.trimStart().startsWith('P2 '))!;
    const p3 = lines.find((l) => l.trimStart().startsWith('P3 '))!;
    // Right-aligned numbers end in the same column as their header.
    const end = header.indexOf('exclusive MACs') + 'exclusive MACs'.length;
    expect(p2.slice(0, end).endsWith('26,624')).toBe(true);
    expect(p3.slice(0, end).endsWith('9,216')).toBe(true);
    expect(r.stdout).toMatch(/pyramid levels at 64×64/);
    expect(r.stdout).toMatch(/trainable\s+1,890 elements in 14 tensors/);
    expect(r.stdout).toMatch(/total\s+168,960\s+100\.0%/);
    expect(r.stdout).toMatch(/shared initializers.*\n {2}none\n/);
    expect(r.stdout).toMatch(/unsupported ops .*\n/);
  });

  it('needs --height/--width for a graph with a dynamic input size, and uses them when given', async () => {
    const file = path.join(dir, 'dynamic.onnx');
    saveModel(tinyFpn({ input: ['batch', 3, 'height', 'width'] }), file);
    const bad = await rlpkd('inspect', file);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^error: graph input 'images' has a dynamic size \[batch, 3, height, width\]/);
    expect(bad.stderr).toMatch(/hint: .*--height 224 --width 224/);
    const ok = await rlpkd('inspect', file, '--json', '--height', '128', '--width', '128');
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as { totalMacs: number; inputSize: unknown };
    expect(report.inputSize).toEqual({ height: 128, width: 128 });
    expect(report.totalMacs).toBe(4 * TINY_FPN_MACS.total);
  });

  it('rejects a non-numeric --height as a usage error', async () => {
    const file = path.join(dir, 'tiny-usage.onnx');
    saveModel(tinyFpn(), file);
    const r = await rlpkd('inspect', file, '--height', 'big');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--height.*expected a positive integer, got 'big'/);
  });

  it('gives one clear error and exit 1 for a missing, a non-ONNX and a truncated file', async () => {
    const missing = await rlpkd('inspect', path.join(dir, 'nope.onnx'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: ONNX model '.*nope\.onnx' does not exist\n/);

    const text = path.join(dir, 'notes.onnx');
    fs.writeFileSync(text, 'this is not a protobuf model\n'.repeat(20));
    const notOnnx = await rlpkd('inspect', text);
    expect(notOnnx.code).toBe(1);
    expect(notOnnx.stderr.split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1);
    expect(notOnnx.stderr).toMatch(/notes\.onnx/);

    const truncated = path.join(dir, 'truncated.onnx');
    const bytes = modelToBytes(tinyFpn());
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const cut = await rlpkd('inspect', truncated);
    expect(cut.code).toBe(1);
    expect(cut.stderr.split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1);
    expect(cut.stderr).toMatch(/truncated\.onnx/);
    for (const r of [missing, notOnnx, cut]) {
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toMatch(/looks like a bug/);
    }
  });

  it('says so when a graph has no pyramid outputs', async () => {
    const b = new GraphBuilder({ name: 'classifier' });
    const x = b.input('x', DataType.FLOAT, [1, 3, 8, 8]);
    const pooled = b.op('Flatten', [b.op('GlobalAveragePool', [x])]);
    b.output(b.op('Gemm', [pooled, b.initializer(floatTensor('fc.weight', [3, 2], seeded(6)))]));
    const file = path.join(dir, 'classifier.onnx');
    saveModel(b.build(), file);
    const r = await rlpkd('inspect', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: graph 'classifier' has no detectable pyramid outputs/);
  });
});

const python = optionalReference(
  'the ResNet-50-FPN inspect acceptance test (MACs from torch hooks)',
  findTorchPython(),
  TORCH_INSTALL_HINT,
);
const torchIt = python ? it : it.skip;

/** [name, stride, channels] of a torchvision FPN export's p2..p5. */
const FPN_LEVELS = [
  ['P2', 4, 256],
  ['P3', 8, 256],
  ['P4', 16, 256],
  ['P5', 32, 256],
];

/** The fields of `rlpkd inspect --json` these tests read. */
interface InspectJson {
  levels: { name: string; stride: number; channels: number; macs: number; costShare: number }[];
  trainableParameters: number;
  trainableParametersAsStored: number;
  totalMacs: number;
  sharedInitializers: { kind: string; readAs: string[] }[];
  unsupportedOps: unknown[];
}

/** Exports `arch` at 224×224 with tools/export_fpn.py, prints `rlpkd inspect` of it, returns its --json. */
async function exportAndInspect(arch: string): Promise<InspectJson> {
  const file = path.join(dir, `${arch}-fpn.onnx`);
  const exporter = path.join(__dirname, '..', '..', 'tools', 'export_fpn.py');
  const exp = spawnSync(python!, [exporter, '--arch', arch, '--out', file, '--quiet'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  expect(exp.stderr.split('\n').filter((l) => l.startsWith('error'))).toEqual([]);
  expect(exp.status).toBe(0);
  const r = await rlpkd('inspect', file, '--json');
  expect(r.stderr).toBe('');
  const text = await rlpkd('inspect', file);
  console.log(`rlpkd inspect ${path.basename(file)}:\n${text.stdout}`);
  return JSON.parse(r.stdout) as InspectJson;
}

/** Conv MACs per 224×224 image of an arch, from PyTorch forward hooks (TORCH_CONV_MACS). */
function torchConvMacs(arch: string): number {
  const hooks = spawnSync(python!, ['-c', TORCH_CONV_MACS, arch], { encoding: 'utf8', timeout: 300_000 });
  expect(hooks.stderr.split('\n').filter((l) => /Error/.test(l))).toEqual([]);
  expect(hooks.status).toBe(0);
  return Number(hooks.stdout.trim());
}

describe('rlpkd inspect on torchvision ResNet-50-FPN and MobileNetV3-Large-FPN exports (needs PyTorch)', () => {
  torchIt(
    'reports 4 levels at strides 4/8/16/32 with 256 channels, 26,799,296 trainable elements, P2 costliest',
    async () => {
      const report = await exportAndInspect('resnet50');
      expect(report.levels.map((l) => [l.name, l.stride, l.channels])).toEqual(FPN_LEVELS);
      // 23,454,912 conv weights + 3,344,384 FPN weights and biases, after untying the deduplicated biases.
      expect(report.trainableParameters).toBe(26_799_296);
      expect(report.trainableParametersAsStored).toBe(26_799_296 - 7 * 256);
      const tiedBias = report.sharedInitializers.find((s) => s.kind === 'parameter');
      expect(tiedBias?.readAs).toHaveLength(8);
      // Exclusive MACs by hand: P2 = lateral 1×1 (56²·256·256) + output 3×3 (56²·256·256·9); the other
      // levels' laterals feed the top-down path to finer levels, so only their 3×3 output conv is exclusive.
      const shares = report.levels.map((l) => l.costShare);
      expect(report.levels.map((l) => l.macs)).toEqual([
        56 * 56 * 256 * 256 * 10,
        28 * 28 * 256 * 256 * 9,
        14 * 14 * 256 * 256 * 9,
        7 * 7 * 256 * 256 * 9,
      ]);
      expect(Math.max(...shares)).toBe(shares[0]);
      // Total conv MACs, counted independently by PyTorch forward hooks on the same architecture.
      expect(report.totalMacs).toBe(torchConvMacs('resnet50'));
    },
    600_000,
  );

  torchIt(
    'MobileNetV3-Large-FPN: depthwise MACs as PyTorch hooks count them, P2..P5, no op without a gradient',
    async () => {
      const report = await exportAndInspect('mobilenet_v3_large');
      expect(report.levels.map((l) => [l.name, l.stride, l.channels])).toEqual(FPN_LEVELS);
      // By hand: P2's lateral 1×1 reads the 24-channel stride-4 map (56²·256·24) and its 3×3 output conv
      // is its own; the coarser laterals feed the top-down path, so only their 3×3 output convs are exclusive.
      expect(report.levels.map((l) => l.macs)).toEqual([
        56 * 56 * 256 * (24 + 256 * 9),
        28 * 28 * 256 * 256 * 9,
        14 * 14 * 256 * 256 * 9,
        7 * 7 * 256 * 256 * 9,
      ]);
      expect(report.totalMacs).toBe(torchConvMacs('mobilenet_v3_large'));
      expect(report.unsupportedOps).toEqual([]);
    },
    600_000,
  );
});

/**
 * Sums Conv2d MACs (output elements × Cin/groups × kh × kw) with forward hooks on the torchvision backbone
 * tools/export_fpn.py builds for the arch in argv[1] (resnet_fpn_backbone / mobilenet_backbone), at 224×224.
 */
const TORCH_CONV_MACS = `
import os, sys, torch
sys.path.insert(0, ${JSON.stringify(path.join(__dirname, '..', '..', 'tools'))})
import export_fpn
m = export_fpn.build_backbone(torch, sys.argv[1])
total = [0]
def hook(mod, inp, out):
    total[0] += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
for mod in m.modules():
    if isinstance(mod, torch.nn.Conv2d):
        mod.register_forward_hook(hook)
with torch.no_grad():
    m.eval()(torch.zeros(1, 3, 224, 224))
print(total[0])
`;
