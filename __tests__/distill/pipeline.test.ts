import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { createStudentDistiller } from '../../src/distill/create-distiller';
import { runTraining } from '../../src/distill/pipeline';
import { createSelectionEnv } from '../../src/distill/selection-env';
import { prepareDistillation } from '../../src/distill/setup';
import { silentLog } from '../../src/logging/logger';
import { readMetrics } from '../../src/logging/metrics';
import { readEventFile } from '../../src/logging/tfevents';
import { arrayImageSource } from '../../src/rl/distillation-env';
import { levelDistanceReference } from '../helpers/level-distance-reference';
import { createSession } from '../../src/runtime';
import type { ImageBatch } from '../../src/rl/distiller';
import { tempDir, tinyConfig, writeTinyModels } from './run-fixtures';

/**
 * The held-out all-level loss (mean over images of Σ_l mean((S_l − T_l)²)) measured apart from the run:
 * plain inference of a student ONNX and the teacher on the held-out images, distances in float64.
 */
async function separateHeldOutLoss(
  setup: Awaited<ReturnType<typeof prepareDistillation>>,
  studentFile: string,
  teacherFile: string,
): Promise<{ loss: number; levels: number[] }> {
  const [s, t] = await Promise.all([createSession(studentFile), createSession(teacherFile)]);
  const images = setup.heldOut.images;
  const [so, to] = [await s.run({ images }), await t.run({ images })];
  await Promise.all([s.release(), t.release()]);
  const M = images.dims[0];
  const levels = setup.pairs.map((p) => {
    const sf = so[p.student.output];
    const d = levelDistanceReference(
      'mse',
      sf.data as Float32Array,
      to[p.teacher.output].data as Float32Array,
      sf.dims as [number, number, number, number],
    );
    return d.reduce((a, b) => a + b, 0) / M;
  });
  return { loss: levels.reduce((a, b) => a + b, 0), levels };
}

jest.setTimeout(180000);

const quiet = () => new Writable({ write: (_c, _e, done) => done() });

describe('prepareDistillation', () => {
  const dir = tempDir('setup');
  const models = writeTinyModels(dir);

  it('derives levels, costs, the trainable set, GradNorm W and the selection from the config', async () => {
    const s = await prepareDistillation(tinyConfig(dir, models, { distill: { selection: ['p3', 'P5'] } }), {
      log: silentLog,
    });
    expect(s.levelNames).toEqual(['P2', 'P3', 'P4', 'P5']);
    expect(s.costs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(s.costs[0]).toBeGreaterThan(s.costs[3]);
    expect(s.selection).toEqual({ levels: ['P3', 'P5'] });
    expect(s.sharedParameter).toMatchObject({ name: 'fpn.inner_blocks.3.0.weight', how: 'auto' });
    expect(s.dims).toEqual({ stateDim: 2 * 8 + 4 * 8 + 1 + 4 + 1, maxSteps: 4, numLevels: 4 });
    expect(s.heldOut.images.dims).toEqual([8, 3, 32, 32]);
    expect(s.decisionOrder).toEqual(['P2', 'P3', 'P4', 'P5']);
    // Sessions load the teacher from its file: the setup keeps only its structure.
    expect(s.teacher.weightsDropped).toBe(true);
    const coarse = await prepareDistillation(
      tinyConfig(dir, models, {
        rl: { environment: { level_order: 'coarse_to_fine' } },
        models: { levels: ['P3', 'P4', 'P5'] },
      }),
      { log: silentLog },
    );
    expect(coarse.decisionOrder).toEqual(['P5', 'P4', 'P3']);
    expect(coarse.costs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('the selection environment trains and measures with the configured distance, as the trainer does', async () => {
    const setup = await prepareDistillation(
      tinyConfig(dir, models, { distill: { loss: 'cwd', cwd_tau: 2 } }),
      {
        log: silentLog,
      },
    );
    const distiller = await createStudentDistiller(setup, silentLog);
    const batches: ImageBatch[] = [];
    const source = arrayImageSource(setup.heldOut.images, 3);
    const env = createSelectionEnv(setup, distiller, {
      images: { next: async (n: number) => batches[batches.push(await source.next(n)) - 1] },
      seed: 'distance',
      numEnvs: 2,
    });
    await env.reset();
    const perStep = env.actionMode === 'sequential' ? 1 : env.numLevels;
    let last;
    for (let t = 0; t < env.numLevels / perStep; t++)
      last = await env.step(new Uint8Array(2 * perStep).fill(1));
    const e = (await distiller.evaluate(batches[0])).distances;
    const L = env.numLevels;
    for (let n = 0; n < 2; n++) {
      const want = Array.from(e.subarray(n * L, (n + 1) * L)).reduce((a, b) => a + b, 0);
      expect(Math.abs(last!.infos[n].episode!.lossBefore / want - 1)).toBeLessThan(1e-5);
    }
    await Promise.all([env.close(), distiller.release()]);
  });

  it('rejects a selection naming a level that is not distilled', async () => {
    await expect(
      prepareDistillation(tinyConfig(dir, models, { distill: { selection: ['P7'] } }), { log: silentLog }),
    ).rejects.toThrow(/distill.selection names 'P7', which is not a distilled level/);
  });
});

describe('runTraining with fixed selections (uniform KD and a NAS-style subset share the code path)', () => {
  it.each([
    ['all', ['P2', 'P3', 'P4', 'P5']],
    [
      ['P3', 'P5'],
      ['P3', 'P5'],
    ],
  ] as const)(
    'selection %j: phases 2 and 4 skip, phase 3 uses GradNorm on the selected levels',
    async (selection, levels) => {
      const dir = tempDir('fixed');
      const models = writeTinyModels(dir);
      const r = await runTraining({
        config: tinyConfig(dir, models, { distill: { selection } }),
        logger: { stream: quiet(), progress: 'lines' },
      });
      expect(r.status).toBe('completed');
      const s = r.summary!;
      expect(s.selection.source).toBe('fixed');
      expect(s.selection.histogram).toEqual([{ subset: levels.join('+'), images: 8, share: 1 }]);
      expect(s.lossAfter).toBeLessThan(s.lossBefore);
      expect(s.phaseSeconds[1]).toBe(0);
      expect(s.phaseSeconds[3]).toBe(0);
      // Unselected levels have no loss in training; GradNorm moved only the selected levels' weights.
      const metrics = readMetrics(path.join(r.runDir, 'metrics.jsonl'));
      const p1 = metrics.find((m) => m.phase === 1 && m['distill/loss'] !== undefined)!;
      for (const n of ['P2', 'P3', 'P4', 'P5']) {
        if (!levels.includes(n as never)) expect(p1[`distill/level_loss/${n}`]).toBe(0);
        else expect(p1[`distill/level_loss/${n}`]).toBeGreaterThan(0);
      }
      expect(s.gradnormWeights!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      const tb = path.join(r.runDir, 'tensorboard');
      const events = fs.readdirSync(tb).flatMap((f) => readEventFile(path.join(tb, f)));
      expect(events.some((e) => e.summary?.value.some((v) => v.tag === 'gradnorm/weight/P3'))).toBe(true);
      expect(fs.existsSync(path.join(r.runDir, 'checkpoints', 'final', 'policy.onnx'))).toBe(false);
      expect(r.summaryText).toMatch(/fixed selection/);
      expect(fs.existsSync(path.join(r.runDir, 'eval.json'))).toBe(true);
      // The summary's held-out figures against a separate evaluation of the initial and final students.
      const setup = await prepareDistillation(tinyConfig(dir, models), { ep: 'cpu', log: silentLog });
      const before = await separateHeldOutLoss(setup, models.student, models.teacher);
      const after = await separateHeldOutLoss(
        setup,
        path.join(r.runDir, 'checkpoints', 'final', 'student.onnx'),
        models.teacher,
      );
      const near = (a: number, b: number) => expect(Math.abs(a / b - 1)).toBeLessThan(1e-5);
      near(s.lossBefore, before.loss);
      near(s.lossAfter, after.loss);
      before.levels.forEach((v, l) => near(s.levelLossBefore[l], v));
      after.levels.forEach((v, l) => near(s.levelLossAfter[l], v));
    },
  );

  it('evaluate: false ends with the summary and the final checkpoint, without the held-out evaluation', async () => {
    const dir = tempDir('noeval');
    const models = writeTinyModels(dir);
    const r = await runTraining({
      config: tinyConfig(dir, models, { distill: { selection: ['P4'] } }),
      evaluate: false,
      logger: { stream: quiet(), progress: 'lines' },
    });
    expect(r.status).toBe('completed');
    expect(r.summary!.selection.histogram).toEqual([{ subset: 'P4', images: 8, share: 1 }]);
    expect(r.summaryText).toMatch(/fixed selection/);
    expect(fs.existsSync(path.join(r.runDir, 'checkpoints', 'final', 'student.onnx'))).toBe(true);
    expect(fs.existsSync(path.join(r.runDir, 'eval.json'))).toBe(false);
  });
});
