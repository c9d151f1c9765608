/**
 * `rlpkd grad` on a tiny graph: the .npy files it writes equal computeGradients, whose gradients are
 * checked against central finite differences of the same loss on the float64 reference interpreter.
 * The graph mimics a torch export: a bias read through an Identity alias (tied), names with '/' and ':'.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/run-cli';
import { gradientFileName, parseAssignments } from '../../src/cli/commands/grad';
import { readNpy, writeNpy } from '../../src/io/npy';
import { DataType, GraphBuilder, floatTensor, saveModel, type OnnxModel } from '../../src/onnx';
import type { HostTensor } from '../../src/runtime';
import { computeGradients } from '../../src/training/gradients';
import { createRng } from '../../src/util';
import { compareArrays, finiteDifferenceGradients, referenceLoss } from '../helpers/grad-check';
import { runReference } from '../helpers/reference';

const N = 2;
const rng = createRng('cli-grad');
const rand = (n: number, scale = 1): number[] => Array.from({ length: n }, () => rng.uniform(-1, 1) * scale);
const W1 = rand(3 * 2 * 9, 0.5);
const B = rand(3, 0.5);
const W2 = rand(3 * 3, 0.5);
const SCALE = [1.5];

/**
 * images [N,2,5,6] → Conv 3×3 ('stem/conv:weight', 'stem.bias') → Relu → ×scale → 'feat.a' = Conv 1×1
 * ('head.weight', bias 'head.bias' = Identity('stem.bias')); 'pooled' = GlobalAveragePool(relu).
 * `untied` stores head.bias as its own initializer instead (what untying must produce).
 */
function tinyModel(untied = false): OnnxModel {
  const b = new GraphBuilder({ name: 'tiny', opset: 17 });
  b.input('images', DataType.FLOAT, ['batch', 2, 5, 6]);
  b.initializer(floatTensor('stem/conv:weight', [3, 2, 3, 3], W1), { exactName: true });
  b.initializer(floatTensor('stem.bias', [3], B), { exactName: true });
  b.initializer(floatTensor('head.weight', [3, 3, 1, 1], W2), { exactName: true });
  b.initializer(floatTensor('scale', [1], SCALE), { exactName: true });
  if (untied) b.initializer(floatTensor('head.bias', [3], B), { exactName: true });
  else b.node('Identity', ['stem.bias'], {}, { outputs: ['head.bias'] });
  const c = b.op('Conv', ['images', 'stem/conv:weight', 'stem.bias'], {
    kernel_shape: [3, 3],
    pads: [1, 1, 1, 1],
  });
  const r = b.op('Relu', [c]);
  const s = b.op('Mul', [r, 'scale']);
  b.node('Conv', [s, 'head.weight', 'head.bias'], { kernel_shape: [1, 1] }, { outputs: ['feat.a'] });
  b.node('GlobalAveragePool', [r], {}, { outputs: ['pooled'] });
  b.output('feat.a', DataType.FLOAT, ['batch', 3, 5, 6]);
  b.output('pooled', DataType.FLOAT, ['batch', 3, 1, 1]);
  return b.build();
}

/** The loss Σ_o mean((o − t_o)²) appended by hand, for the finite-difference reference. */
function lossModel(model: OnnxModel): OnnxModel {
  const b = GraphBuilder.fromModel(model);
  const terms = ['feat.a', 'pooled'].map((o) => {
    b.input(`t.${o}`, DataType.FLOAT);
    const d = b.op('Sub', [o, `t.${o}`]);
    return b.op('ReduceMean', [b.op('Mul', [d, d])], { keepdims: 0 });
  });
  const loss = b.op('Add', terms, {}, { outputs: ['loss'] });
  b.outputs.length = 0;
  b.output(loss, DataType.FLOAT, []);
  return b.build();
}

const images: HostTensor = { data: Float32Array.from(rand(N * 2 * 5 * 6)), dims: [N, 2, 5, 6] };
const outputs = runReference(tinyModel(true), { images });
const target = (name: string): HostTensor => {
  const y = outputs.get(name)!;
  return { data: Float32Array.from(y.data, (v) => v + rng.uniform(-1, 1)), dims: [...y.dims] };
};
const targets = { 'feat.a': target('feat.a'), pooled: target('pooled') };
const feeds = { images, 't.feat.a': targets['feat.a'], 't.pooled': targets.pooled };

const cli = (args: string[]): ReturnType<typeof runCli> => runCli('grad', ...args);

describe('rlpkd grad', () => {
  let dir: string;
  let modelFile: string;
  let args: string[];
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-grad-'));
    modelFile = path.join(dir, 'tiny.onnx');
    saveModel(tinyModel(), modelFile);
    writeNpy(path.join(dir, 'images.npy'), images);
    writeNpy(path.join(dir, 'feat.npy'), targets['feat.a']);
    writeNpy(path.join(dir, 'pooled.npy'), targets.pooled);
    args = [
      ...['--model', modelFile, '--input', `images=${path.join(dir, 'images.npy')}`],
      ...['--target', `feat.a=${path.join(dir, 'feat.npy')}`, `pooled=${path.join(dir, 'pooled.npy')}`],
    ];
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('computeGradients matches central finite differences (untied: one gradient per consumer)', async () => {
    const r = await computeGradients(tinyModel(), { inputs: { images }, targets });
    expect([...r.gradients.keys()].sort()).toEqual([
      'head.bias',
      'head.weight',
      'stem.bias',
      'stem/conv:weight',
    ]);
    expect(r.untied).toEqual({ 'head.bias': 'stem.bias' });
    const ref = lossModel(tinyModel(true));
    const fd = finiteDifferenceGradients(ref, 'loss', [...r.gradients.keys()], feeds);
    for (const [name, g] of r.gradients) {
      const c = compareArrays(g.data as Float32Array, fd[name]);
      expect(c.refNorm).toBeGreaterThan(1e-3);
      expect(c.relL2).toBeLessThan(1e-4);
    }
    expect(r.loss).toBeCloseTo(referenceLoss(ref, 'loss', feeds), 5);
    expect(r.loss).toBeCloseTo(r.perOutputLoss['feat.a'] + r.perOutputLoss.pooled, 5);
  });

  it('writes <parameter>.npy, index.json and loss.json equal to computeGradients', async () => {
    const out = path.join(dir, 'out');
    const { code, stdout, stderr } = await cli([...args, '--out', out]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/wrote 4 parameter gradients \(69 values\)/);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')) as Record<string, string>;
    expect(index['head.weight']).toBe('head.weight.npy');
    expect(index['stem.bias']).toBe('stem.bias.npy');
    expect(index['stem/conv:weight']).toMatch(/^stem_conv_weight-[0-9a-f]{8}\.npy$/);
    const lib = await computeGradients(tinyModel(), { inputs: { images }, targets });
    for (const [name, g] of lib.gradients) {
      const a = readNpy(path.join(out, index[name]));
      expect(a.dtype).toBe('<f4');
      expect(a.shape).toEqual(g.dims);
      expect(Array.from(a.data as Float32Array)).toEqual(Array.from(g.data as Float32Array));
    }
    const loss = JSON.parse(fs.readFileSync(path.join(out, 'loss.json'), 'utf8'));
    expect(loss.loss).toBeCloseTo(lib.loss, 6);
    expect(Object.keys(loss.outputs).sort()).toEqual(['feat.a', 'pooled']);
    expect(loss.parameters).toBe(4);
    expect(loss.model).toBe(path.resolve(modelFile));
    expect(loss.inputs).toEqual({ images: path.join(dir, 'images.npy') });
    expect(fs.readdirSync(out).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('--no-untie gives the tied bias one gradient (the sum of its uses) and removes stale files', async () => {
    const out = path.join(dir, 'out');
    await cli([...args, '--out', out]);
    expect(fs.existsSync(path.join(out, 'head.bias.npy'))).toBe(true);
    const { code } = await cli([...args, '--out', out, '--no-untie']);
    expect(code).toBe(0);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')) as Record<string, string>;
    expect(Object.keys(index).sort()).toEqual(['head.weight', 'stem.bias', 'stem/conv:weight']);
    expect(fs.existsSync(path.join(out, 'head.bias.npy'))).toBe(false);
    const fd = finiteDifferenceGradients(
      lossModel(tinyModel(true)),
      'loss',
      ['stem.bias', 'head.bias'],
      feeds,
    );
    const summed = fd['stem.bias'].map((v, i) => v + fd['head.bias'][i]);
    const got = readNpy(path.join(out, 'stem.bias.npy')).data as Float32Array;
    expect(compareArrays(got, summed).relL2).toBeLessThan(1e-4);
  });

  it('a target for only one output differentiates that term alone', async () => {
    const r = await computeGradients(tinyModel(), {
      inputs: { images },
      targets: { pooled: targets.pooled },
    });
    expect(Object.keys(r.perOutputLoss)).toEqual(['pooled']);
    // pooled does not depend on the head: zero gradients, still written with the parameter's shape.
    expect(Array.from(r.gradients.get('head.weight')!.data as Float32Array).every((v) => v === 0)).toBe(true);
    expect(r.gradients.get('head.weight')!.dims).toEqual([3, 3, 1, 1]);
    const b = GraphBuilder.fromModel(tinyModel(true));
    b.input('t', DataType.FLOAT);
    const d = b.op('Sub', ['pooled', 't']);
    b.op('ReduceMean', [b.op('Mul', [d, d])], { keepdims: 0 }, { outputs: ['loss'] });
    b.outputs.length = 0;
    b.output('loss', DataType.FLOAT, []);
    const fd = finiteDifferenceGradients(b.build(), 'loss', ['stem/conv:weight'], {
      images,
      t: targets.pooled,
    });
    const g = r.gradients.get('stem/conv:weight')!.data as Float32Array;
    expect(compareArrays(g, fd['stem/conv:weight']).relL2).toBeLessThan(1e-4);
  });

  it('names the graph inputs and outputs when a name is wrong, and checks shapes and dtypes', async () => {
    const out = path.join(dir, 'bad');
    let r = await cli([...args.map((a) => a.replace('images=', 'image=')), '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: 'image' is not an input of graph 'tiny' (inputs: 'images')");
    r = await cli([...args.map((a) => a.replace('pooled=', 'p5=')), '--out', out]);
    expect(r.stderr).toContain("'p5' is not an output of graph 'tiny' (outputs: 'feat.a', 'pooled')");
    r = await cli([
      ...args.filter((a, i) => !(a.startsWith('images=') || args[i + 1]?.startsWith('images='))),
      '--out',
      out,
    ]);
    expect(r.stderr).toContain("no value given for graph input(s) 'images'");
    writeNpy(path.join(dir, 'wrong.npy'), { data: new Float32Array(3 * 5 * 6), dims: [1, 3, 5, 6] });
    r = await cli([
      ...args.map((a) => a.replace(path.join(dir, 'feat.npy'), path.join(dir, 'wrong.npy'))),
      '--out',
      out,
    ]);
    expect(r.stderr).toMatch(/target 'feat.a' has dims \[1, 3, 5, 6\] but output 'feat.a' is \[2, 3, 5, 6\]/);
    writeNpy(path.join(dir, 'f64.npy'), { data: new Float64Array(N * 2 * 5 * 6), dims: [N, 2, 5, 6] });
    r = await cli([
      ...args.map((a) => a.replace(path.join(dir, 'images.npy'), path.join(dir, 'f64.npy'))),
      '--out',
      out,
    ]);
    expect(r.stderr).toContain("input 'images' must be float32, got float64");
    expect(r.stderr).toContain('astype(numpy.float32)');
    r = await cli([...args, '--out', out, '--loss', 'l1']);
    expect(r.code).toBe(2);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('grad CLI helpers', () => {
  it('parses NAME=FILE at the first =', () => {
    expect([...parseAssignments(['a=x.npy', 'b.c=d=e.npy'], '--input')]).toEqual([
      ['a', 'x.npy'],
      ['b.c', 'd=e.npy'],
    ]);
    expect(() => parseAssignments(['a.npy'], '--input')).toThrow(/'a.npy' is not NAME=FILE.npy/);
    expect(() => parseAssignments(['a=1', 'a=2'], '--target')).toThrow(/names 'a' twice/);
  });

  it('keeps safe names and makes others safe and distinct', () => {
    expect(gradientFileName('fpn.inner_blocks.0.0.bias')).toBe('fpn.inner_blocks.0.0.bias.npy');
    const a = gradientFileName('a/b');
    const b = gradientFileName('a:b');
    expect(a).toMatch(/^a_b-[0-9a-f]{8}\.npy$/);
    expect(b).toMatch(/^a_b-[0-9a-f]{8}\.npy$/);
    expect(a).not.toBe(b);
    expect(gradientFileName('..')).toMatch(/^_\.-[0-9a-f]{8}\.npy$/);
    expect(gradientFileName('x'.repeat(300)).length).toBeLessThan(200);
  });
});
