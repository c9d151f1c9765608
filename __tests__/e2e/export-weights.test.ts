/**
 * Acceptance (issue 12, weights back to PyTorch): on a torchvision ResNet-50-FPN exported with
 * tools/export_fpn.py, `rlpkd export-weights` writes exactly the model's trainable parameters under
 * torchvision's names (the fresh all-zero FPN biases, which torch.onnx.export stores once, each under its
 * own name). After a few training steps of that graph, the exported file loaded with
 * tools/load_distilled.py into the torchvision model the graph came from (its randomized frozen
 * batch-norm statistics stay that model's) reproduces the trained ONNX graph's P2..P5 within 1e-4
 * relative L2. Skips, saying why, without a Python that imports torch, torchvision and onnx.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { readNpy } from '../../src/io/npy';
import { readSafetensors } from '../../src/io/safetensors';
import { createSession, type HostTensor } from '../../src/runtime';
import { findTorchPython } from '../../src/tools/python';
import { generateArtifacts, TrainingSession } from '../../src/training';
import { createRng } from '../../src/util';
import { optionalReference, TORCH_INSTALL_HINT } from '../helpers/optional-reference';

const ROOT = path.join(__dirname, '..', '..');
const TOOLS = path.join(ROOT, 'tools');
const LEVELS = ['p2', 'p3', 'p4', 'p5'];
const SIZE = 64;
const BOUND = 1e-4;
const python = optionalReference('the export-weights round trip', findTorchPython(), TORCH_INSTALL_HINT);

/**
 * A torchvision ResNet-50-FPN (seeded) with randomized frozen batch-norm statistics; FPN biases stay the
 * fresh zeros. Saves base.pth, the trainable parameter names and shapes, and the input x.npy.
 */
const MAKE_BASE = `
import json, os, sys, numpy as np, torch
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
out, size = sys.argv[1], int(sys.argv[2])
torch.manual_seed(11)
m = resnet_fpn_backbone(backbone_name='resnet50', weights=None, trainable_layers=5)
g = torch.Generator().manual_seed(12)
with torch.no_grad():
    for k, v in m.state_dict().items():
        if k.endswith('running_var'): v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        elif k.endswith('running_mean'): v.copy_(torch.randn(v.shape, generator=g) * 0.1)
        elif k.startswith('body.') and k.endswith('.bias'): v.copy_(torch.randn(v.shape, generator=g) * 0.1)
        elif k.startswith('body.') and k.endswith('.weight') and v.dim() == 1: v.copy_(1 + torch.randn(v.shape, generator=g) * 0.1)
torch.save(m.state_dict(), os.path.join(out, 'base.pth'))
json.dump([[n, list(p.shape)] for n, p in m.named_parameters() if p.requires_grad], open(os.path.join(out, 'params.json'), 'w'))
np.save(os.path.join(out, 'x.npy'), torch.randn(1, 3, size, size, generator=g).numpy())
`;

/**
 * Loads base.pth, overlays a .safetensors file with tools/load_distilled.py, runs the backbone on x.npy:
 * <tag>.<level>.npy for the loaded model and base.<level>.npy for the base; the load report as JSON.
 */
const LOAD_AND_RUN = `
import json, os, sys, numpy as np, torch
sys.path.insert(0, sys.argv[1])
import export_fpn
from load_distilled import read_safetensors, load_distilled
work, weights, tag = sys.argv[2], sys.argv[3], sys.argv[4]
torch.set_num_threads(2)
def backbone():
    m = export_fpn.build_backbone(torch, 'resnet50')
    export_fpn.apply_weights(m, torch.load(os.path.join(work, 'base.pth')), 'base.pth')
    m.fpn.extra_blocks = None
    return m.eval()
x = torch.from_numpy(np.load(os.path.join(work, 'x.npy')))
base = backbone()
tensors, metadata = read_safetensors(weights)
model = backbone()
report = load_distilled(model, tensors)
state, ref = model.state_dict(), base.state_dict()
report['buffers_equal_base'] = all(torch.equal(state[k], ref[k]) for k in report['buffers_kept'])
report['metadata'] = metadata
with torch.no_grad():
    for name, m in (('base', base), (tag, model)):
        for level, y in zip(['p2', 'p3', 'p4', 'p5'], m(x).values()):
            np.save(os.path.join(work, f'{name}.{level}.npy'), y.numpy())
print(json.dumps(report))
`;

interface LoadReport {
  filled: string[];
  parameters_not_filled: string[];
  buffers_kept: string[];
  buffers_equal_base: boolean;
  metadata: Record<string, string>;
}

function py(args: string[], what: string): string {
  const r = spawnSync(python!, args, { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

async function exportWeightsCli(model: string, out: string): Promise<void> {
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    expect(await main(['node', 'rlpkd', 'export-weights', '--model', model, '--out', out])).toBe(0);
  } finally {
    spy.mockRestore();
  }
}

(python ? describe : describe.skip)('export-weights round trip with torchvision ResNet-50-FPN', () => {
  let work: string;
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-export-weights-'));
    py(['-c', MAKE_BASE, work, String(SIZE)], 'building the torchvision model');
    py(
      [
        path.join(TOOLS, 'export_fpn.py'),
        '--arch',
        'resnet50',
        '--weights',
        path.join(work, 'base.pth'),
        '--height',
        String(SIZE),
        '--width',
        String(SIZE),
        '--out',
        path.join(work, 'model.onnx'),
        '--quiet',
      ],
      'tools/export_fpn.py',
    );
  });
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("writes exactly the model's trainable parameters under torchvision's names", async () => {
    const out = path.join(work, 'exported.safetensors');
    await exportWeightsCli(path.join(work, 'model.onnx'), out);
    const expected = JSON.parse(fs.readFileSync(path.join(work, 'params.json'), 'utf8')) as [
      string,
      number[],
    ][];
    const file = readSafetensors(out);
    const got = new Map(file.tensors.map((t) => [t.name, t.shape]));
    expect([...got.keys()].sort()).toEqual(expected.map(([n]) => n).sort());
    for (const [name, shape] of expected) expect(got.get(name)).toEqual(shape);
    // The values are the model's own: loading them changes nothing, and every parameter is filled.
    const report = JSON.parse(
      py(['-c', LOAD_AND_RUN, TOOLS, work, out, 'same'], 'tools/load_distilled.py'),
    ) as LoadReport;
    expect(report.filled.length).toBe(expected.length);
    expect(report.parameters_not_filled).toEqual([]);
    for (const level of LEVELS) {
      const a = readNpy(path.join(work, `same.${level}.npy`)).data as Float32Array;
      const b = readNpy(path.join(work, `base.${level}.npy`)).data as Float32Array;
      expect(relL2(a, b)).toBe(0);
    }
  });

  it("after training steps, load_distilled.py reproduces the trained graph's P2..P5 within 1e-4", async () => {
    const model = path.join(work, 'model.onnx');
    const artifacts = generateArtifacts(model, {
      loss: { type: 'distillation', levels: LEVELS.map((student) => ({ student })) },
      optimizer: { type: 'adamw', lr: 1e-3, weightDecay: 1e-2 },
      outDir: path.join(work, 'artifacts'),
    });
    const session = await TrainingSession.create({ artifacts: artifacts.dir! });
    const x = readNpy(path.join(work, 'x.npy'));
    const images: HostTensor = { data: x.data as Float32Array, dims: x.shape };
    const rng = createRng('export-weights-targets');
    const strides = [4, 8, 16, 32];
    const targets = Object.fromEntries(
      LEVELS.map((l, i) => {
        const s = SIZE / strides[i];
        const data = Float32Array.from({ length: 256 * s * s }, () => rng.uniform(-1, 1));
        return [`teacher.${l}`, { data, dims: [1, 256, s, s] }];
      }),
    );
    const losses: number[] = [];
    for (let step = 0; step < 3; step++) {
      const r = await session.fusedStep({
        images,
        ...targets,
        'distill.mask': { data: new Float32Array(4).fill(1), dims: [1, 4] },
        'distill.weights': { data: new Float32Array(4).fill(0.25), dims: [4] },
      });
      losses.push((r.outputs['distill.loss'].data as Float32Array)[0]);
    }
    const trained = path.join(work, 'trained.onnx');
    await session.exportModelForInference(trained);
    await session.release();
    const onnxOut = await (await createSession(trained)).run({ images });

    const out = path.join(work, 'trained.safetensors');
    await exportWeightsCli(trained, out);
    const report = JSON.parse(
      py(['-c', LOAD_AND_RUN, TOOLS, work, out, 'trained'], 'tools/load_distilled.py'),
    ) as LoadReport;
    const expected = JSON.parse(fs.readFileSync(path.join(work, 'params.json'), 'utf8')) as unknown[];
    expect(report.filled.length).toBe(expected.length);
    expect(report.parameters_not_filled).toEqual([]);
    expect(report.buffers_kept.length).toBeGreaterThan(0);
    expect(report.buffers_equal_base).toBe(true);
    expect(report.metadata.source).toBe('trained.onnx');
    const errors = LEVELS.map((level) => {
      const torchOut = readNpy(path.join(work, `trained.${level}.npy`)).data as Float32Array;
      const base = readNpy(path.join(work, `base.${level}.npy`)).data as Float32Array;
      const ours = onnxOut[level].data as Float32Array;
      return { level, loaded: relL2(torchOut, ours), untrained: relL2(base, ours) };
    });
    console.log(
      `losses ${losses.map((l) => l.toPrecision(5)).join(' → ')}; relative L2, torchvision + loaded weights ` +
        `vs trained ONNX: ${errors.map((e) => `${e.level} ${e.loaded.toExponential(2)}`).join(', ')}; ` +
        `untrained torchvision vs trained ONNX: ${errors.map((e) => `${e.level} ${e.untrained.toExponential(2)}`).join(', ')}`,
    );
    for (const e of errors) {
      expect(e.loaded).toBeLessThan(BOUND);
      // The training moved the outputs far more than the bound: the check can fail.
      expect(e.untrained).toBeGreaterThan(100 * BOUND);
    }
  });
});
