import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildResnetFpn } from '../../src/models/resnet-fpn';
import { saveModel } from '../../src/onnx/model-io';
import { createSession } from '../../src/runtime';
import { frozenGraphFile, optimizeInChild, optimizedModelFile } from '../../src/runtime/optimized-model';
import { createRng } from '../../src/util/rng';
import { relativeL2 } from '../helpers/tensor-compare';

describe('optimizedModelFile', () => {
  let dir: string;
  let model: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-optimized-'));
    model = path.join(dir, 'teacher.onnx');
    saveModel(
      buildResnetFpn({ arch: 'resnet18-fpn', widthMult: 0.25, fpnChannels: 16, height: 64, width: 64 }),
      model,
      {
        externalDataThreshold: 1024,
      },
    );
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('saves onnxruntime’s optimized form once; loaded at basic it computes what the original does', async () => {
    const cacheDir = path.join(dir, 'cache');
    const file = await optimizedModelFile(model, { cacheDir });
    expect(fs.existsSync(file)).toBe(true);
    expect(fs.existsSync(`${file}.data`)).toBe(true);
    // Only the finished entry is left: no temporary folders.
    expect(fs.readdirSync(cacheDir)).toHaveLength(1);
    const mtime = fs.statSync(file).mtimeMs;
    expect(await optimizedModelFile(model, { cacheDir })).toBe(file);
    expect(fs.statSync(file).mtimeMs).toBe(mtime);

    const rng = createRng('optimized-model');
    const images = {
      data: Float32Array.from({ length: 2 * 3 * 64 * 64 }, () => rng.normal()),
      dims: [2, 3, 64, 64],
    };
    const original = await createSession(model, { graphOptimizationLevel: 'disabled' });
    const optimized = await createSession(file, { graphOptimizationLevel: 'basic' });
    expect([...optimized.inputNames]).toEqual([...original.inputNames]);
    expect([...optimized.outputNames]).toEqual([...original.outputNames]);
    const a = await original.run({ [original.inputNames[0]]: images });
    const b = await optimized.run({ [optimized.inputNames[0]]: images });
    for (const name of original.outputNames) {
      expect(relativeL2(b[name].data as Float32Array, a[name].data as Float32Array)).toBeLessThan(1e-5);
    }
    await original.release();
    await optimized.release();
  });

  it('optimizes in a child process (the parent never holds both weight copies); a bad model is its error', async () => {
    const out = path.join(dir, 'child-optimized.onnx');
    await optimizeInChild(model, {
      graphOptimizationLevel: 'all',
      optimizedModelFilePath: out,
      logSeverityLevel: 3,
    });
    expect(fs.statSync(out).size).toBeGreaterThan(0);
    const junk = path.join(dir, 'junk.onnx');
    fs.writeFileSync(junk, 'not a model');
    await expect(optimizeInChild(junk, { graphOptimizationLevel: 'all' })).rejects.toThrow(/.+/);
  });

  it('makes a new entry when the model file changes', async () => {
    const cacheDir = path.join(dir, 'cache2');
    const first = await optimizedModelFile(model, { cacheDir });
    const copy = path.join(dir, 'copy.onnx');
    fs.copyFileSync(model, copy);
    fs.copyFileSync(`${model}.data`, `${copy}.data`);
    const second = await optimizedModelFile(copy, { cacheDir });
    expect(second).not.toBe(first);
  });

  it('names a missing model; frozenGraphFile keeps the file itself for CUDA', async () => {
    await expect(optimizedModelFile(path.join(dir, 'nope.onnx'), { cacheDir: dir })).rejects.toThrow(
      /ONNX model '.*nope\.onnx' does not exist/,
    );
    expect(await frozenGraphFile(model, 'cuda', { cacheDir: dir })).toEqual({
      file: model,
      graphOptimizationLevel: 'all',
    });
    const cpu = await frozenGraphFile(model, 'cpu', { cacheDir: path.join(dir, 'cache') });
    expect(cpu.graphOptimizationLevel).toBe('basic');
  });
});
