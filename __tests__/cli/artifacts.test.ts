/**
 * `rlpkd artifacts`: what it writes and prints (built vs cache hit, files, parameter counts), and how the
 * flags map onto generateArtifacts' options, checked on the manifest it writes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { classifyParameters } from '../../src/analysis/parameters';
import { runCli } from '../helpers/run-cli';
import { lossSpecFromOptions, optimizerFromOptions } from '../../src/cli/commands/artifacts';
import { saveModel } from '../../src/onnx';
import { loadArtifacts, type ArtifactManifest } from '../../src/training/artifacts';
import { tinyPyramid } from '../training/tiny-pyramid';

const cli = (args: string[]): ReturnType<typeof runCli> => runCli('artifacts', ...args);

describe('rlpkd artifacts', () => {
  const model = tinyPyramid({ seed: 3, width: 4 });
  let dir: string;
  let modelFile: string;
  const manifest = (d: string): ArtifactManifest =>
    JSON.parse(fs.readFileSync(path.join(d, 'manifest.json'), 'utf8')) as ArtifactManifest;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-artifacts-'));
    modelFile = path.join(dir, 'tiny.onnx');
    saveModel(model, modelFile);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('builds the artifacts, lists the files and counts, then reports a cache hit', async () => {
    const out = path.join(dir, 'a');
    const first = await cli(['--model', modelFile, '--out', out]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^built: training artifacts of .*tiny\.onnx in .*\/a \(hash [0-9a-f]{12}/);
    for (const f of [
      'training_model.onnx',
      'eval_model.onnx',
      'optimizer_model.onnx',
      'fused_step_model.onnx',
    ]) {
      expect(first.stdout).toContain(f);
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    }
    const expected = classifyParameters(model).trainable;
    const values = expected.reduce((s, e) => s + e.elements, 0);
    expect(first.stdout).toContain(
      `parameters: ${expected.length} tensors, ${values.toLocaleString('en-US')} values`,
    );
    expect(first.stdout).toContain('loss: distillation');
    expect(first.stdout).toContain('optimizer: adamw lr 0.001 weight decay 0.01');
    expect(first.stdout).toContain('teacher.p2 [batch, 8, 16, 16]');
    const m = manifest(out);
    expect(m.parameters.map((p) => p.name)).toEqual(expected.map((e) => e.name));
    expect(loadArtifacts(out).manifest.hash).toBe(m.hash);

    const second = await cli(['--model', modelFile, '--out', out]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^cache hit: /);
    expect(manifest(out).hash).toBe(m.hash);
  });

  it('maps loss, optimizer and parameter flags onto the artifacts; --json prints one object', async () => {
    const out = path.join(dir, 'b');
    const r = await cli([
      ...['--model', modelFile, '--out', out, '--loss', 'mse', '--outputs', 'p3'],
      ...[
        '--optimizer',
        'sgd',
        '--lr',
        '0.1',
        '--momentum',
        '0.9',
        '--frozen',
        'body.*',
        '--no-fused',
        '--json',
      ],
    ]);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as { cached: boolean; parameters: number; files: { file: string }[] };
    expect(report.cached).toBe(false);
    const m = manifest(out);
    expect(m.optimizer).toMatchObject({ type: 'sgd', lr: 0.1, momentum: 0.9 });
    expect(m.parameters.map((p) => p.name).every((n) => n.startsWith('fpn.'))).toBe(true);
    expect(report.parameters).toBe(m.parameters.length);
    expect(m.inputs.map((v) => v.name)).toEqual(['x', 'p3.target']);
    expect(m.files.fused).toBeUndefined();
    expect(report.files.map((f) => f.file)).not.toContain('fused_step_model.onnx');
  });

  it('reports bad flags as errors', async () => {
    const out = path.join(dir, 'c');
    let r = await cli(['--model', modelFile, '--out', out, '--momentum', '0.9']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--momentum applies to --optimizer sgd only');
    r = await cli(['--model', modelFile, '--out', out, '--frozen', 'nothing.*']);
    expect(r.stderr).toContain("parameter pattern 'nothing.*' matches no initializer");
    r = await cli(['--model', modelFile, '--out', out, '--loss', 'hinge']);
    expect(r.code).toBe(2);
    r = await cli(['--model', modelFile, '--out', out, '--loss', 'mse', '--outputs', 'p9']);
    expect(r.stderr).toContain("'p9' is not an output of graph");
  });

  it('builds loss and optimizer configurations from flags', () => {
    const modelOutputs = ['p2', 'p3'];
    expect(lossSpecFromOptions('distill', { modelOutputs })).toEqual({
      type: 'distillation',
      levels: [{ student: 'p2' }, { student: 'p3' }],
    });
    expect(lossSpecFromOptions('smooth-l1', { modelOutputs, beta: 0.5, outputs: ['p2'] })).toEqual({
      type: 'smoothL1',
      outputs: ['p2'],
      beta: 0.5,
    });
    expect(lossSpecFromOptions('cross-entropy', { modelOutputs, outputs: ['logits'] })).toEqual({
      type: 'crossEntropy',
      logits: 'logits',
    });
    expect(() => lossSpecFromOptions('cross-entropy', { modelOutputs, outputs: ['a', 'b'] })).toThrow(
      /one --outputs/,
    );
    expect(optimizerFromOptions({ optimizer: 'adamw', lr: 0.01, weightDecay: 0 })).toEqual({
      type: 'adamw',
      lr: 0.01,
      weightDecay: 0,
    });
  });
});
