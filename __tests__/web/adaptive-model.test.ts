/**
 * The browser runtime's code in Node on onnxruntime-web (wasm): a bundle exported from a tiny deploy-state
 * run with a detection head chooses the levels, computes the features and decodes the detections the
 * Node runtime (onnxruntime-node, the run's own student, policy and head) does; broken bundles fail with
 * one clear error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportPolicy } from '../../src/deploy/export-policy';
import { Rng } from '../../src/util/rng';
import { AdaptiveModel, type AdaptiveResult } from '../../src/web/adaptive-model';
import type { BundleMeta } from '../../src/web/bundle-format';
import { preprocessImage } from '../../src/web/preprocess';
import { agreement, referenceInference, taskAgreement } from '../helpers/adaptive-reference';
import { tempDir } from '../distill/run-fixtures';
import { tinyDeployRun } from '../deploy/tiny-deploy-run';

jest.setTimeout(240000);

const folderReader = (dir: string) => async (file: string) =>
  new Uint8Array(fs.readFileSync(path.join(dir, file)));

/** M seeded RGBA images at the input size, preprocessed. */
function images(meta: BundleMeta, M: number): Float32Array {
  const { height: H, width: W } = meta.input;
  const rng = new Rng(11);
  const out = new Float32Array(M * 3 * H * W);
  for (let m = 0; m < M; m++) {
    const data = Uint8ClampedArray.from({ length: 4 * H * W }, () => Math.floor(rng.next() * 256));
    out.set(preprocessImage({ width: W, height: H, data }, meta.input), m * 3 * H * W);
  }
  return out;
}

describe('AdaptiveModel on onnxruntime-web (Node)', () => {
  const dir = tempDir('web-runtime');
  let runDir = '';
  let bundle = '';

  beforeAll(async () => {
    runDir = await tinyDeployRun(dir, 'deploy', {}, { detectionHead: true });
    bundle = (await exportPolicy({ run: runDir, out: path.join(dir, 'bundle') })).dir;
  });

  it.each([1, 0.5])(
    'chooses the levels and computes the features of the Node runtime (budget %p)',
    async (budget) => {
      const model = await AdaptiveModel.load(folderReader(bundle));
      expect(model.executionProvider).toBe('wasm');
      expect(model.numThreads).toBe(1);
      const M = 6;
      const x = images(model.meta, M);
      const per = x.length / M;
      const results: AdaptiveResult[] = [];
      for (let m = 0; m < M; m++)
        results.push(await model.run(x.subarray(m * per, (m + 1) * per), { budget }));
      await model.release();
      const refs = await referenceInference(runDir, model.meta, x, budget, path.join(dir, 'head.onnx'));
      const a = agreement(results, refs);
      const t = taskAgreement(results, refs);
      process.stdout.write(
        `web runtime (Node, wasm) vs onnxruntime-node, budget ${budget}: ${JSON.stringify(a)}\n` +
          `  detections: ${JSON.stringify(t)}\n`,
      );
      expect(a.disagreements).toBe(0);
      expect(a.sameLevels + a.nearThreshold).toBe(M);
      expect(a.maxRelDiff).toBeLessThanOrEqual(1e-4);
      expect(t.disagreements + t.labelMismatches).toBe(0);
      expect(t.sameCount + t.nearThreshold).toBe(t.images);
      expect(t.detections).toBeGreaterThan(0); // the tiny head does detect something
      expect(t.maxBoxRelDiff).toBeLessThanOrEqual(1e-4);
      expect(t.maxScoreRelDiff).toBeLessThanOrEqual(1e-4);
      expect(t.maxRawRelDiff).toBeLessThanOrEqual(1e-3); // raw logits: three more float32 convs than the features
      for (const r of results) {
        expect(r.levels.length).toBeGreaterThanOrEqual(1); // minLevels
        const parts = r.levels.reduce((n, l) => n + model.meta.levels.find((x) => x.name === l)!.macs, 0);
        expect(r.macs.used).toBe(model.meta.trunk.macs + parts);
        expect(Object.keys(r.times.levels)).toEqual(r.levels);
        // The head ran on exactly the computed levels; its MACs are those parts'.
        expect(r.task!.levels).toEqual(r.levels);
        expect(Object.keys(r.times.head.parts)).toEqual(r.levels);
        const headMacs = model.meta.head!.parts.filter((p) => r.levels.includes(p.level));
        expect(r.task!.macs.used).toBe(headMacs.reduce((n, p) => n + p.macs, 0));
        if (budget < 1) {
          const cost = r.decisions.reduce((n, d, k) => n + (d.selected ? model.meta.policy.costs[k] : 0), 0);
          expect(cost).toBeLessThanOrEqual(budget + 1e-9);
        }
      }
    },
  );

  it('computes a fixed selection without the policy', async () => {
    const model = await AdaptiveModel.load(folderReader(bundle));
    const r = await model.run(images(model.meta, 1), { levels: ['P5', 'P3'] });
    await model.release();
    expect(r.levels).toEqual(['P3', 'P5']);
    expect(r.times.policy).toBe(0);
    // Detections come from the rows of P3 and P5 only: 4·4 + 1·1 locations at 32×32.
    const A = r.task!.raw[model.meta.head!.outputs.centerness].dims[1];
    expect(A).toBe(17);
  });

  it('refuses a bundle with a missing file, a changed file or another onnxruntime-web version', async () => {
    const broken = path.join(dir, 'broken');
    fs.cpSync(bundle, broken, { recursive: true });
    const meta = JSON.parse(fs.readFileSync(path.join(broken, 'meta.json'), 'utf8')) as BundleMeta;
    fs.rmSync(path.join(broken, meta.levels[1].file));
    await expect(AdaptiveModel.load(folderReader(broken))).rejects.toThrow(/level-P3.onnx|ENOENT/);
    fs.writeFileSync(path.join(broken, meta.levels[1].file), 'not onnx');
    await expect(AdaptiveModel.load(folderReader(broken))).rejects.toThrow(
      /bundle file 'level-P3.onnx' does not match meta.json/,
    );
    fs.cpSync(bundle, broken, { recursive: true });
    fs.writeFileSync(
      path.join(broken, 'meta.json'),
      JSON.stringify({ ...meta, versions: { ...meta.versions, onnxruntimeWeb: '1.17.0' } }),
    );
    await expect(AdaptiveModel.load(folderReader(broken))).rejects.toThrow(
      /exported for onnxruntime-web 1.17.0, this runtime uses 1.30/,
    );
    fs.writeFileSync(path.join(broken, 'meta.json'), JSON.stringify({ ...meta, format: 99 }));
    await expect(AdaptiveModel.load(folderReader(broken))).rejects.toThrow(/bundle format 99/);
  });
});
