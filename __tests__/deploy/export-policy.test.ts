/**
 * export-policy on tiny runs made here: a run trained on the deploy state exports a bundle whose parts,
 * run together on onnxruntime, reproduce the full student, and its task head's parts (the run's
 * models.teacher_head, or --head) the composed task model; a run trained on the train state is refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportPolicy } from '../../src/deploy/export-policy';
import {
  buildClassificationHead,
  buildSegmentationHead,
  composeTaskModel,
  headLevelsOf,
} from '../../src/heads';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import { createSession, type HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { contentHash } from '../../src/util/content-hash';
import { bundleFiles, bundleMetaProblems, type BundleMeta } from '../../src/web/bundle-format';
import { tempDir } from '../distill/run-fixtures';
import { tinyDeployRun as tinyRun, writeTinySegmentationHead } from './tiny-deploy-run';

jest.setTimeout(240000);

describe('exportPolicy', () => {
  const dir = tempDir('export-policy');
  let runDir = '';

  beforeAll(async () => {
    runDir = await tinyRun(dir, 'deploy', {}, { detectionHead: true });
  });

  /**
   * Largest |difference| between the bundle's trunk → level parts → head parts (→ merge) and the composed
   * task model (the checkpoint's student + `headFile`) on two seeded images.
   */
  async function headPartsVsComposed(out: string, m: BundleMeta, headFile: string): Promise<number> {
    const head = m.head!;
    const ckpt = path.join(runDir, 'checkpoints', m.source.checkpoint);
    const bare = { task: head.task, levels: [], outputs: {}, numClasses: 0, imageHeight: 32, imageWidth: 32 };
    const task = composeTaskModel(loadModel(path.join(ckpt, 'student.onnx')), {
      ...bare,
      model: loadModel(headFile),
    });
    const image: HostTensor = {
      data: new Rng(6).fillNormal(new Float32Array(2 * 3 * m.input.height * m.input.width)),
      dims: [2, 3, m.input.height, m.input.width],
    };
    const run = async (file: string, feeds: Record<string, HostTensor>) => {
      const s = await createSession(path.join(out, file));
      const r = await s.run(feeds);
      await s.release();
      return r;
    };
    const boundary = await run(m.trunk.file, { [m.input.name]: image });
    const got: Record<string, HostTensor> = {};
    for (const p of head.parts) {
      const l = m.levels.find((x) => x.name === p.level)!;
      const feeds = Object.fromEntries(l.inputs.map((i) => [i, boundary[i] ?? image]));
      const feature = (await run(l.file, feeds))[l.output];
      Object.assign(got, await run(p.file, { [p.input]: feature }));
    }
    const full = await createSession(task);
    const want = await full.run({ [m.input.name]: image });
    await full.release();
    let maxDiff = 0;
    const compare = (g: HostTensor, w: HostTensor) => {
      expect(g.dims).toEqual(w.dims);
      for (let i = 0; i < w.data.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs(Number(g.data[i]) - Number(w.data[i])));
    };
    if (head.merge) {
      const merged = await run(head.merge.file, got);
      for (const o of Object.values(head.outputs)) compare(merged[o], want[o]);
    } else {
      // Per output, the levels' rows concatenated (finest first) per image.
      for (const o of Object.values(head.outputs)) {
        const blocks = head.parts.map((p) => got[p.outputs[o]]);
        const rows = blocks.map((b) => b.data.length / 2);
        const cat = new Float32Array(want[o].data.length);
        let k = 0;
        for (let n = 0; n < 2; n++)
          blocks.forEach((b, i) => {
            cat.set((b.data as Float32Array).subarray(n * rows[i], (n + 1) * rows[i]), k);
            k += rows[i];
          });
        compare({ data: cat, dims: want[o].dims }, want[o]);
      }
    }
    return maxDiff;
  }

  it("writes the run's detection head (models.teacher_head) per level; with the parts it reproduces student + head within 1e-5", async () => {
    const out = path.join(dir, 'bundle-head');
    const r = await exportPolicy({ run: runDir, out });
    const h = r.meta.head!;
    expect(h).toMatchObject({ task: 'detection', numClasses: 3, source: 'teacher-head', combine: 'concat' });
    expect(h.merge).toBeNull();
    expect(h.parts.map((p) => p.level)).toEqual(['P2', 'P3', 'P4', 'P5']);
    expect(h.parts.map((p) => p.file)).toEqual([
      'head-P2.onnx',
      'head-P3.onnx',
      'head-P4.onnx',
      'head-P5.onnx',
    ]);
    expect(h.decode).toEqual({
      scoreThreshold: 0.05,
      preNmsTopK: 1000,
      nmsIou: 0.6,
      maxDetections: 100,
      topK: 5,
    });
    expect(r.meta.classNames).toEqual(['circle', 'square', 'triangle']);
    // MACs: the shared head's convs on each level (2+2 tower convs, cls 3, box 4, centerness 1; 3×3, C=8).
    for (const p of h.parts) {
      const C = r.meta.levels.find((l) => l.name === p.level)!.shape[0];
      expect(p.macs).toBe(p.height * p.width * 9 * C * (4 * C + 3 + 4 + 1));
    }
    for (const f of bundleFiles(r.meta)) {
      expect(fs.readFileSync(path.join(out, f.file)).byteLength).toBe(f.bytes);
    }
    const diff = await headPartsVsComposed(out, r.meta, path.join(dir, 'head.onnx'));
    process.stdout.write(
      `export-policy: detection head parts vs student + head: max |diff| ${diff}, bundle ${r.totalBytes} bytes\n`,
    );
    expect(diff).toBeLessThanOrEqual(1e-5);
  });

  it('--head: a Semantic-FPN head on the student, split into level branches and head-merge.onnx', async () => {
    const { file } = writeTinySegmentationHead(dir, loadModel(path.join(dir, 'student.onnx')), 2);
    const out = path.join(dir, 'bundle-seg');
    const r = await exportPolicy({ run: runDir, out, head: file });
    const h = r.meta.head!;
    expect(h).toMatchObject({ task: 'segmentation', numClasses: 3, source: 'file', combine: 'merge' });
    expect(h.merge!.file).toBe('head-merge.onnx');
    expect(h.merge!.inputs.sort()).toEqual(h.parts.flatMap((p) => Object.keys(p.outputs)).sort());
    const diff = await headPartsVsComposed(out, r.meta, file);
    process.stdout.write(
      `export-policy: segmentation head parts + merge vs student + head: max |diff| ${diff}\n`,
    );
    expect(diff).toBeLessThanOrEqual(1e-5);
    await expect(exportPolicy({ run: runDir, out, head: path.join(dir, 'nope.onnx') })).rejects.toThrow(
      /--head '.*nope.onnx' does not exist/,
    );
  });

  it('refuses a head that reads another level or other channels than the student has', async () => {
    const student = loadModel(path.join(dir, 'student.onnx'));
    const [p5] = headLevelsOf(student, { height: 32, width: 32 }).slice(3);
    const write = (name: string, level: typeof p5): string => {
      const h = buildClassificationHead({ levels: [level], numClasses: 2, imageHeight: 32, imageWidth: 32 });
      const file = path.join(dir, name);
      saveModel(h.model, file);
      return file;
    };
    const out = path.join(dir, 'bundle-refused');
    await expect(
      exportPolicy({ run: runDir, out, head: write('odd.onnx', { ...p5, name: 'p9' }) }),
    ).rejects.toThrow(/the head reads 'p9', which is neither a pyramid level of the student/);
    const err = (await exportPolicy({
      run: runDir,
      out,
      head: write('wide.onnx', { ...p5, channels: 16 }),
    }).catch((e: unknown) => e)) as { message: string; hint: string };
    expect(err.message).toMatch(/reads 16 channels from 'p5', the student's level P5 has 8/);
    expect(err.hint).toMatch(/task_loss_weight/);
  });

  it("a task-loss checkpoint's student-task-model.onnx: its head is cut off the student at the levels", async () => {
    const first = await exportPolicy({ run: runDir, out: path.join(dir, 'probe') });
    const ckpt = path.join(runDir, 'checkpoints', first.meta.source.checkpoint);
    const student = loadModel(path.join(ckpt, 'student.onnx'));
    const levels = headLevelsOf(student, { height: 32, width: 32 }).slice(2);
    const seg = buildSegmentationHead({ levels, numClasses: 2, imageHeight: 32, imageWidth: 32, width: 4 });
    const own = path.join(ckpt, 'student-task-model.onnx');
    saveModel(composeTaskModel(student, seg), own);
    const headFile = path.join(dir, 'own-head.onnx');
    saveModel(seg.model, headFile);
    try {
      const out = path.join(dir, 'bundle-own');
      const r = await exportPolicy({ run: runDir, out });
      expect(r.meta.head).toMatchObject({
        task: 'segmentation',
        source: 'student-task-model',
        numClasses: 2,
      });
      expect(r.meta.head!.parts.map((p) => p.level)).toEqual(['P4', 'P5']);
      expect(await headPartsVsComposed(out, r.meta, headFile)).toBeLessThanOrEqual(1e-5);
    } finally {
      fs.rmSync(own);
    }
  });

  it('writes a bundle whose trunk and level parts reproduce the full student within 1e-5', async () => {
    const out = path.join(dir, 'bundle');
    const r = await exportPolicy({ run: runDir, out });
    const m = r.meta;
    expect(bundleMetaProblems(m)).toEqual([]);
    expect(m.levels.map((l) => l.name)).toEqual(['P2', 'P3', 'P4', 'P5']);
    expect(m.policy.decisionOrder).toEqual(['P2', 'P3', 'P4', 'P5']);
    expect(m.policy.trainingBudget).toEqual({ min: 1, max: 1 }); // the tiny config's rl.environment.budget
    // Deploy state: 2·C_coarsest + Σ C_sources + L + 1, no loss feature.
    const C = m.state.sources.map((s) => s.channels);
    expect(m.state.dim).toBe(2 * C[C.length - 1] + C.reduce((a, b) => a + b, 0) + 4 + 1);
    expect(m.state.sources.every((s) => m.trunk.outputs.includes(s.name))).toBe(true);
    // Cost model: trunk + parts = total; savings are each part's share.
    expect(m.trunk.macs + m.levels.reduce((n, l) => n + l.macs, 0)).toBe(m.totalMacs);
    for (const l of m.levels) expect(l.saving).toBeCloseTo(l.macs / m.totalMacs, 12);
    // Hashes and sizes are those of the files.
    for (const f of bundleFiles(m)) {
      const bytes = fs.readFileSync(path.join(out, f.file));
      expect(bytes.byteLength).toBe(f.bytes);
      expect(contentHash([bytes])).toBe(f.sha256);
    }

    const student = await createSession(
      path.join(runDir, 'checkpoints', m.source.checkpoint, 'student.onnx'),
    );
    const trunk = await createSession(path.join(out, m.trunk.file));
    const image: HostTensor = {
      data: new Rng(5).fillNormal(new Float32Array(2 * 3 * m.input.height * m.input.width)),
      dims: [2, 3, m.input.height, m.input.width],
    };
    const full = await student.run({ [m.input.name]: image });
    const boundary = await trunk.run({ [m.input.name]: image });
    let maxDiff = 0;
    for (const l of m.levels) {
      const part = await createSession(path.join(out, l.file));
      const feeds = Object.fromEntries(l.inputs.map((i) => [i, boundary[i] ?? image]));
      const got = (await part.run(feeds))[l.output];
      await part.release();
      const want = full[l.output];
      expect(got.dims).toEqual(want.dims);
      expect(want.dims.slice(1)).toEqual(l.shape);
      const g = got.data as Float32Array;
      const w = want.data as Float32Array;
      for (let i = 0; i < w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(g[i] - w[i]));
    }
    await Promise.all([student.release(), trunk.release()]);
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
  });

  it('replaces an earlier bundle and refuses a folder that is not one', async () => {
    const out = path.join(dir, 'again');
    await exportPolicy({ run: runDir, out });
    await exportPolicy({ run: runDir, out });
    expect(fs.readdirSync(path.dirname(out)).filter((f) => f.startsWith('again.tmp'))).toEqual([]);
    const other = path.join(dir, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
    await expect(exportPolicy({ run: runDir, out: other })).rejects.toThrow(/is not a policy bundle/);
  });

  it("refuses a policy trained on the 'train' state, naming the switch", async () => {
    const trainRun = await tinyRun(tempDir('export-policy-train'), 'train');
    const err = await exportPolicy({ run: trainRun, out: path.join(dir, 'refused') }).catch((e) => e);
    expect(err.message).toMatch(/trained on the 'train' state, whose loss feature needs the teacher/);
    expect(err.hint).toMatch(/rl.policy.state: deploy/);
    expect(fs.existsSync(path.join(dir, 'refused'))).toBe(false);
  });
});
