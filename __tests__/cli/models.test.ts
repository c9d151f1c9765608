import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/run-cli';
import { loadModel } from '../../src/onnx';
import { createSession } from '../../src/runtime';

const cli = runCli;

describe('rlpkd models', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-models-cli-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('build writes a validated graph atomically and reports its levels', async () => {
    const out = path.join(dir, 'r34.onnx');
    const r = await cli(
      'models',
      'build',
      '--arch',
      'resnet34-fpn',
      '--out',
      out,
      '--width-mult',
      '0.125',
      '--fpn-channels',
      '16',
      '--height',
      '64',
      '--width',
      '96',
      '--seed',
      '3',
      '--p6',
      '--opset',
      '13',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`wrote ${out} (`);
    expect(r.stdout).toContain('resnet34-fpn width 0.125 (C2..C5 8/16/32/64), FPN 16 channels, input 64x96');
    expect(r.stdout).toContain('p2 16x24/4, p3 8x12/8, p4 4x6/16, p5 2x3/32, p6 1x2/64');
    const m = loadModel(out);
    expect(m.opsetImports[0].version).toBe(13);
    expect(m.graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3', 'p4', 'p5', 'p6']);
    expect(m.metadata['rlpkd.seed']).toBe('3');
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('build --external-data puts the weights in a side file onnxruntime can read', async () => {
    const out = path.join(dir, 'ext.onnx');
    const r = await cli(
      'models',
      'build',
      '--arch',
      'resnet18',
      '--out',
      out,
      '--width-mult',
      '0.25',
      '--external-data',
    );
    expect(r.code).toBe(0);
    expect(fs.existsSync(`${out}.data`)).toBe(true);
    expect(fs.statSync(out).size).toBeLessThan(100_000);
    const m = loadModel(out);
    expect(m.graph.initializers.find((t) => t.name === 'body.conv1.weight')!.dims).toEqual([16, 3, 7, 7]);
    const session = await createSession(out);
    try {
      const y = await session.run({
        images: { data: new Float32Array(3 * 224 * 224).fill(0.5), dims: [1, 3, 224, 224] },
      });
      expect(y.p5.dims).toEqual([1, 256, 7, 7]);
    } finally {
      await session.release();
    }
  });

  it('build rejects a bad architecture or option with one clear error and no file', async () => {
    const out = path.join(dir, 'bad.onnx');
    const bad = await cli('models', 'build', '--arch', 'resnet152-fpn', '--out', out);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(
      "error: unknown architecture 'resnet152-fpn'\n  hint: use one of: resnet18-fpn, resnet34-fpn, resnet50-fpn, resnet101-fpn\n",
    );
    const usage = await cli('models', 'build', '--arch', 'resnet18', '--out', out, '--width-mult', 'big');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("expected a positive number, got 'big'");
    const opset = await cli('models', 'build', '--arch', 'resnet18', '--out', out, '--opset', '11');
    expect(opset.code).toBe(1);
    expect(opset.stderr).toContain('opset 11 is not supported by the model builder');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('list prints the architectures with torchvision’s parameter counts, and --json', async () => {
    const r = await cli('models', 'list');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /resnet50-fpn\s+bottleneck\s+blocks 3-4-6-3\s+C2\.\.C5 256\/512\/1024\/2048\s+26,799,296 parameters/,
    );
    expect(r.stdout).toContain('teacher  onnx-graphs/teacher.onnx');
    const j = await cli('models', 'list', '--json');
    const parsed = JSON.parse(j.stdout) as { architectures: { arch: string; trainableParameters: number }[] };
    expect(parsed.architectures.map((a) => [a.arch, a.trainableParameters])).toEqual([
      ['resnet18-fpn', 13_774_016],
      ['resnet34-fpn', 23_874_752],
      ['resnet50-fpn', 26_799_296],
      ['resnet101-fpn', 45_739_200],
    ]);
  });

  it('demo rebuilds the shipped graphs into a folder', async () => {
    const out = path.join(dir, 'demo');
    const r = await cli('models', 'demo', '--out-dir', out);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['student.onnx', 'teacher.onnx']);
    expect(r.stdout).toContain('teacher, resnet50-fpn width 0.125');
    const shipped = path.join(__dirname, '..', '..', 'onnx-graphs');
    for (const f of ['teacher.onnx', 'student.onnx']) {
      expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(shipped, f)))).toBe(true);
    }
  });
});
