/**
 * The browser runtime's code in Node on onnxruntime-web (wasm): a bundle exported from a tiny deploy-state
 * run with a detection head chooses the levels, computes the features and decodes the detections the
 * Node runtime (onnxruntime-node, the run's own student, policy and head) does; broken bundles fail with
 * one clear error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportPolicy } from '../../src/deploy/export-policy';
import { buildClassificationHead, headLevelsOf, topClasses } from '../../src/heads';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import type { OnnxModel } from '../../src/onnx/types';
import { createSession, type HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { AdaptiveModel, type AdaptiveResult } from '../../src/web/adaptive-model';
import type { BundleMeta } from '../../src/web/bundle-format';
import { preprocessImage } from '../../src/web/preprocess';
import { agreement, referenceInference, taskAgreement } from '../helpers/adaptive-reference';
import { tempDir } from '../distill/run-fixtures';
import { tinyDeployRun, writeTinySegmentationHead } from '../deploy/tiny-deploy-run';

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

  /** onnxruntime-node on `model` with the given feeds. */
  async function nodeRun(
    model: OnnxModel,
    feeds: Record<string, HostTensor>,
  ): Promise<Record<string, HostTensor>> {
    const session = await createSession(model);
    const out = await session.run(feeds);
    await session.release();
    return out;
  }

  /** Largest |x − ref| / max(|ref|, 1% of max |ref|). */
  function relDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
    let floor = 0;
    for (let i = 0; i < want.length; i++) floor = Math.max(floor, 0.01 * Math.abs(want[i]));
    let m = 0;
    for (let i = 0; i < want.length; i++)
      m = Math.max(m, Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), floor, 1e-30));
    return m;
  }

  it('segmentation (skipped levels fed to the merge as zeros) and classification (coarsest level) heads', async () => {
    const meta0 = JSON.parse(fs.readFileSync(path.join(bundle, 'meta.json'), 'utf8')) as BundleMeta;
    const student = loadModel(path.join(runDir, 'checkpoints', meta0.source.checkpoint, 'student.onnx'));
    const size = { height: 32, width: 32 };
    const levels = headLevelsOf(student, size);
    const x = images(meta0, 1);
    const pyramid = await nodeRun(student, { [meta0.input.name]: { data: x, dims: [1, 3, 32, 32] } });

    // Segmentation: the reference is the head graph on the student's levels (onnxruntime-node), the
    // skipped levels' branches replaced by zeros inside that one graph.
    const { head: seg, file: segFile } = writeTinySegmentationHead(dir, student, 4);
    const segBundle = (await exportPolicy({ run: runDir, out: path.join(dir, 'bundle-seg'), head: segFile }))
      .dir;
    const model = await AdaptiveModel.load(folderReader(segBundle));
    const head = model.meta.head!;
    for (const keep of [
      ['P2', 'P3', 'P4', 'P5'],
      ['P4', 'P5'],
    ]) {
      const r = await model.run(x, { levels: keep });
      const b = GraphBuilder.fromModel(seg.model);
      for (const p of head.parts.filter((q) => !keep.includes(q.level))) {
        for (const t of Object.values(p.outputs)) {
          const zero = b.op('ConstantOfShape', [b.constInt64(p.dims[t], [p.dims[t].length], 'zero_shape')]);
          for (const n of b.nodes)
            if (n.opType === 'Add') n.inputs = n.inputs.map((i) => (i === t ? zero : i));
        }
      }
      const want = (await nodeRun(b.build(), pyramid)).seg_logits;
      const got = r.task!.raw.seg_logits;
      expect(got.dims).toEqual([...want.dims]);
      const d = relDiff(got.data, want.data as Float32Array);
      process.stdout.write(`segmentation head on ${keep.join('+')}: raw max rel diff ${d}\n`);
      expect(d).toBeLessThanOrEqual(1e-4);
      const out = r.task!.output!;
      if (out.task !== 'segmentation') throw new Error('expected a label map');
      expect([out.height, out.width]).toEqual([32, 32]);
      expect(r.times.head.merge).toBeGreaterThan(0);
      expect(r.task!.macs.used).toBe(
        head.merge!.macs + head.parts.filter((p) => keep.includes(p.level)).reduce((n, p) => n + p.macs, 0),
      );
    }
    await model.release();

    // Classification reads P5 only: no output without it, else the top classes of its logits.
    const cls = buildClassificationHead({ levels, numClasses: 4, imageHeight: 32, imageWidth: 32, seed: 5 });
    for (const t of cls.model.graph.initializers)
      if (t.data instanceof Float32Array) t.data = t.data.map((v) => v * 100);
    const clsFile = path.join(dir, 'cls-head.onnx');
    saveModel(cls.model, clsFile);
    const clsBundle = (await exportPolicy({ run: runDir, out: path.join(dir, 'bundle-cls'), head: clsFile }))
      .dir;
    const cm = await AdaptiveModel.load(folderReader(clsBundle));
    expect(cm.meta.head!.parts.map((p) => p.level)).toEqual(['P5']);
    const without = await cm.run(x, { levels: ['P2', 'P3'] });
    expect(without.task!.output).toBeNull();
    expect(without.task!.skipped).toMatch(/reads P5, which the policy skipped/);
    const withTop = await cm.run(x, { levels: ['P5'] });
    await cm.release();
    const ref = (await nodeRun(cls.model, { [levels[3].name]: pyramid[levels[3].name] })).logits;
    const want = topClasses(ref.data as Float32Array, 4);
    const out = withTop.task!.output!;
    if (out.task !== 'classification') throw new Error('expected classes');
    expect(out.classes.map((c) => c.label)).toEqual(want.map((c) => c.label));
    out.classes.forEach((c, i) =>
      expect(Math.abs(c.score - want[i].score) / want[i].score).toBeLessThanOrEqual(1e-4),
    );
  });
});
