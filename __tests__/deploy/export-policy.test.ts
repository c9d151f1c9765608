/**
 * export-policy on tiny runs made here: a run trained on the deploy state exports a bundle whose parts,
 * run together on onnxruntime, reproduce the full student; a run trained on the train state is refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportPolicy } from '../../src/deploy/export-policy';
import { createSession, type HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { contentHash } from '../../src/util/content-hash';
import { bundleFiles, bundleMetaProblems } from '../../src/web/bundle-format';
import { tempDir } from '../distill/run-fixtures';
import { tinyDeployRun as tinyRun } from './tiny-deploy-run';

jest.setTimeout(240000);

describe('exportPolicy', () => {
  const dir = tempDir('export-policy');
  let runDir = '';

  beforeAll(async () => {
    runDir = await tinyRun(dir, 'deploy');
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
