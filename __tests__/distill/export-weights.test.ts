/**
 * exportWeights and `rlpkd export-weights`: from a model whose zero FPN biases were merged into one
 * initializer the way torch.onnx.export does, and from a run's checkpoint. The expected parameter names
 * are read off the graph before tying (every Conv's weight and bias input), independently of the
 * classification and untying code the export uses.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main';
import { exportWeights } from '../../src/distill/export-weights';
import { runTraining } from '../../src/distill/pipeline';
import { checkpointLabel, writeRunCheckpoint } from '../../src/distill/run-checkpoint';
import { readSafetensors } from '../../src/io/safetensors';
import { createRunDir, RUN_FILES } from '../../src/logging/run-dir';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import { findSharedInitializers, tieIdenticalInitializers } from '../../src/onnx/shared-initializers';
import type { OnnxModel } from '../../src/onnx/types';
import { initialCheckpoint, loadCheckpoint } from '../../src/training/checkpoint';
import { tinyFpn } from './fixtures';
import { tempDir, tinyConfig, writeTinyModels } from './run-fixtures';

/** Conv weight/bias initializers of a graph with no sharing: name → values. */
function convParameters(model: OnnxModel): Map<string, number[]> {
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const out = new Map<string, number[]>();
  for (const n of model.graph.nodes) {
    if (n.opType !== 'Conv') continue;
    for (const name of n.inputs.slice(1)) {
      const t = name ? inits.get(name) : undefined;
      if (t) out.set(name, [...(t.data as Float32Array)]);
    }
  }
  return out;
}

/** A tiny ResNet-FPN with zero FPN biases, the biases then tied as an exporter ties them. */
function exportedLikeTorch(): { tied: OnnxModel; original: OnnxModel } {
  const original = tinyFpn({ fpnBias: 'zero' });
  const tied = tieIdenticalInitializers(original, {
    filter: (t) => t.name.startsWith('fpn.') && t.dims.length === 1,
  });
  return { tied, original };
}

describe('exportWeights', () => {
  it('writes every Conv weight and bias under its own name, merged biases untied, nothing else', () => {
    const { tied, original } = exportedLikeTorch();
    const groups = findSharedInitializers(tied).filter((g) => g.kind === 'parameter');
    expect(groups.length).toBe(1);
    expect(groups[0].aliases.length).toBe(7); // 8 FPN biases stored once
    const dir = tempDir('export-weights');
    const model = path.join(dir, 'tied.onnx');
    saveModel(tied, model);
    const out = path.join(dir, 'w.safetensors');
    const r = exportWeights({ model }, out);
    const file = readSafetensors(out);
    const expected = convParameters(original);
    expect(new Set(file.tensors.map((t) => t.name))).toEqual(new Set(expected.keys()));
    expect(file.tensors.length).toBe(expected.size);
    for (const t of file.tensors) {
      expect(t.dtype).toBe('F32');
      expect([...t.data]).toEqual(expected.get(t.name));
    }
    expect(r.tensors).toBe(expected.size);
    expect(r.untied).toBe(7);
    expect(r.elements).toBe([...expected.values()].reduce((a, v) => a + v.length, 0));
    expect(r.bytes).toBe(4 * r.elements);
    expect(file.metadata).toEqual({ format: 'pt', producer: 'rl-pyramidkd', source: 'tied.onnx' });
  });

  it("reads a run's latest checkpoint (or a named one) and records its label", async () => {
    const dir = tempDir('export-weights-run');
    const run = createRunDir(dir, 'x');
    fs.writeFileSync(run.file(RUN_FILES.config), 'run: {}\n');
    const write = async (globalStep: number, student: OnnxModel, label?: string): Promise<void> => {
      const cursor = { phase: 1, epoch: 0, unit: 0, globalStep };
      await writeRunCheckpoint(
        run,
        {
          state: {
            version: 1,
            label: label ?? checkpointLabel(cursor),
            cursor,
            streams: {},
            phaseSeconds: [0],
            savedAt: 'now',
          },
          student,
          studentTrain: initialCheckpoint(
            { w: { data: Float32Array.of(1), dims: [1] } },
            { type: 'sgd', lr: 0.1 },
          ),
        },
        3,
      );
    };
    const early = tinyFpn({ seed: 5 });
    const final = tinyFpn({ seed: 6 });
    await write(1, early);
    await write(2, final, 'final');
    const out = path.join(dir, 'final.safetensors');
    const r = exportWeights({ run: run.root }, out);
    expect(r.checkpoint).toBe('final');
    const file = readSafetensors(out);
    expect(file.metadata.checkpoint).toBe('final');
    const want = convParameters(final);
    expect(file.tensors.length).toBe(want.size);
    for (const t of file.tensors) expect([...t.data]).toEqual(want.get(t.name));
    const first = exportWeights({ run: run.root, checkpoint: 's00000001-p1-e0-u0' }, out);
    expect(first.checkpoint).toBe('s00000001-p1-e0-u0');
    const back = readSafetensors(out);
    const wantEarly = convParameters(early);
    for (const t of back.tensors) expect([...t.data]).toEqual(wantEarly.get(t.name));
  });
});

describe('exportWeights on a finished training run', () => {
  it("writes the trained student's parameters, as the run's training state holds them", async () => {
    const dir = tempDir('export-weights-train');
    const models = writeTinyModels(dir);
    const r = await runTraining({
      config: tinyConfig(dir, models, {
        distill: { selection: 'all' },
        phases: { pretrain: { epochs: 1 }, joint: { epochs: 1 } },
      }),
      logger: { stream: new Writable({ write: (_c, _e, done) => done() }), progress: 'lines' },
    });
    expect(r.status).toBe('completed');
    const out = path.join(dir, 'student.safetensors');
    const result = exportWeights({ run: r.runDir }, out);
    expect(result.checkpoint).toBe('final');
    const file = readSafetensors(out);
    const initial = convParameters(loadModel(models.student));
    expect(new Set(file.tensors.map((t) => t.name))).toEqual(new Set(initial.keys()));
    // Independent of student.onnx: the engine checkpoint's parameters (adapters, if any, are not exported).
    const trained = loadCheckpoint(
      path.join(r.runDir, 'checkpoints', 'final', 'student.train.onnx'),
    ).parameters;
    let moved = 0;
    for (const t of file.tensors) {
      expect([...t.data]).toEqual([...trained[t.name]!.data]);
      if ([...t.data].some((v, i) => v !== initial.get(t.name)![i])) moved++;
    }
    expect(moved).toBeGreaterThan(file.tensors.length / 2);
  });
});

describe('rlpkd export-weights', () => {
  let out = '';
  let err = '';
  beforeEach(() => {
    out = '';
    err = '';
    jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  });
  afterEach(() => jest.restoreAllMocks());
  const cli = (...args: string[]): Promise<number> => main(['node', 'rlpkd', 'export-weights', ...args]);

  it('exports a model and says what it wrote', async () => {
    const dir = tempDir('export-weights-cli');
    const model = path.join(dir, 'm.onnx');
    saveModel(exportedLikeTorch().tied, model);
    const file = path.join(dir, 'm.safetensors');
    expect(await cli('--model', model, '--out', file)).toBe(0);
    const n = readSafetensors(file).tensors.length;
    expect(out).toMatch(
      new RegExp(
        `^wrote ${n} parameters \\([\\d,]+ values, [\\d,]+ bytes\\) from .*m\\.onnx to .*m\\.safetensors; 7 of them untied`,
      ),
    );
    expect(await cli('--model', model, '--out', file, '--json')).toBe(0);
    expect(JSON.parse(out.slice(out.indexOf('{'))).tensors).toBe(n);
  });

  it('needs exactly one source (usage error, exit 2) and names a missing run (exit 1)', async () => {
    expect(await cli('--out', 'x.safetensors')).toBe(2);
    expect(err).toMatch(/error: give exactly one of --run RUN and --model M\.onnx/);
    expect(await cli('--run', 'a', '--model', 'b', '--out', 'x.safetensors')).toBe(2);
    expect(await cli('--model', 'b.onnx', '--checkpoint', 'final', '--out', 'x.safetensors')).toBe(2);
    err = '';
    expect(await cli('--run', path.join(tempDir('none'), 'missing'), '--out', 'x.safetensors')).toBe(1);
    expect(err).toMatch(/error: run directory '.*missing' does not exist\n {2}hint: /);
  });
});
