import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { computeCostModel } from '../../src/analysis/cost-model';
import { runTraining } from '../../src/distill/pipeline';
import { evaluateRun } from '../../src/distill/evaluate-run';
import { prepareDistillation } from '../../src/distill/setup';
import { describeTaskModel, scoreTaskModel } from '../../src/distill/score-task-model';
import { TASK_CHECKPOINT_FILES } from '../../src/distill/task-checkpoint-files';
import { evaluateCheckpoint } from '../../src/eval/checkpoint-evaluation';
import { evaluationTables, tablesAsText } from '../../src/eval/evaluation-report';
import { composeTaskModel } from '../../src/heads/compose-task-model';
import { buildFcosHead } from '../../src/heads/fcos-head';
import { headLevelsOf } from '../../src/heads/head-levels';
import { silentLog } from '../../src/logging/logger';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import { createSession } from '../../src/runtime';
import { tempDir, tinyConfig, writeTinyModels } from '../distill/run-fixtures';

jest.setTimeout(240000);

const quiet = () => new Writable({ write: (_c, _e, done) => done() });
const size = { height: 32, width: 32 };

/** Per-level MSE and mean per-image cosine of a student file against the teacher, in plain float64. */
async function fidelityReference(
  studentFile: string,
  teacherFile: string,
  images: { data: Float32Array; dims: number[] },
  levels: string[],
): Promise<{ mse: number[]; cosine: number[] }> {
  const [s, t] = [await createSession(studentFile), await createSession(teacherFile)];
  const [so, to] = [await s.run({ images }), await t.run({ images })];
  await Promise.all([s.release(), t.release()]);
  const M = images.dims[0]!;
  const mse: number[] = [];
  const cosine: number[] = [];
  for (const l of levels) {
    const a = so[l]!.data as Float32Array;
    const b = to[l]!.data as Float32Array;
    const per = a.length / M;
    let sq = 0;
    let cos = 0;
    for (let i = 0; i < M; i++) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let j = i * per; j < (i + 1) * per; j++) {
        sq += (a[j]! - b[j]!) ** 2;
        dot += a[j]! * b[j]!;
        na += a[j]! ** 2;
        nb += b[j]! ** 2;
      }
      cos += dot / Math.sqrt(na * nb);
    }
    mse.push(sq / a.length);
    cosine.push(cos / M);
  }
  return { mse, cosine };
}

describe('the checkpoint evaluation of a run (rlpkd train, rlpkd eval)', () => {
  const dir = tempDir('evaluation');
  const models = writeTinyModels(dir);
  const headFile = path.join(dir, 'teacher-head.onnx');
  const head = buildFcosHead({
    levels: headLevelsOf(loadModel(models.teacher), size),
    numClasses: 3,
    imageHeight: 32,
    imageWidth: 32,
    seed: 4,
  });
  saveModel(head.model, headFile);
  const overrides = {
    distill: { selection: 'all' },
    models: { teacher_head: headFile },
    eval: { probe: { steps: 3, batch_size: 4 } },
  };
  let runDir = '';

  it('train ends with eval.json and eval.md: fidelity, task, probe, policy and cost sections', async () => {
    const r = await runTraining({
      config: tinyConfig(dir, models, overrides),
      logger: { stream: quiet(), progress: 'lines' },
    });
    runDir = r.runDir;
    expect(r.status).toBe('completed');
    const json = JSON.parse(fs.readFileSync(path.join(runDir, 'eval.json'), 'utf8'));
    const md = fs.readFileSync(path.join(runDir, 'eval.md'), 'utf8');
    // Written atomically: no temporary file is left beside them.
    expect(fs.readdirSync(runDir).filter((f) => /tmp/.test(f))).toEqual([]);
    expect(md).toMatch(/^# Evaluation of /);
    expect(md).toMatch(/## fidelity to the teacher per level/);
    expect(r.summaryText).toMatch(/task metric through the teacher's head/);

    expect(json.task).toEqual({
      kind: 'detection',
      metric: 'AP',
      teacher: expect.any(Number),
      studentBefore: expect.any(Number),
      studentAfter: expect.any(Number),
    });
    // The previous summary fields are still there.
    expect(json.lossAfter).toBeLessThan(json.lossBefore);
    expect(json.checkpoint.final).toBe(true);

    // Fidelity against plain float64 from separate sessions of the files.
    const setup = await prepareDistillation(tinyConfig(dir, models, overrides), {
      ep: 'cpu',
      log: silentLog,
    });
    const outputs = setup.pairs.map((p) => p.student.output);
    for (const [name, file] of [
      ['studentBefore', models.student],
      ['studentAfter', path.join(runDir, 'checkpoints', 'final', 'student.onnx')],
    ] as const) {
      const ref = await fidelityReference(file, models.teacher, setup.heldOut.images, outputs);
      const got = json.fidelity.backbones[name];
      ref.mse.forEach((v, l) => expect(Math.abs(got.mse[l] / v - 1)).toBeLessThan(1e-5));
      ref.cosine.forEach((v, l) => expect(Math.abs(got.cosine[l] - v)).toBeLessThan(1e-6));
    }
    expect(json.fidelity.backbones.studentAfter.mse[0]).not.toBe(
      json.fidelity.backbones.studentBefore.mse[0],
    );

    // The teacher's head on the teacher: the same score as that task model scored on its own.
    const teacherModel = loadModel(models.teacher);
    const composed = composeTaskModel(teacherModel, head);
    const direct = await scoreTaskModel(
      composed,
      describeTaskModel(composed, teacherModel, { size }),
      setup.splits.val,
      {
        preprocess: setup.preprocess,
        batchSize: 4,
      },
    );
    expect(json.task.teacher).toBe(direct.value);
    expect(json.teacherHead.scores.teacher.values).toEqual(direct.values);

    // Probe: one per backbone under the configured budget.
    expect(json.probe).toMatchObject({ task: 'detection', steps: 3, batchSize: 4 });
    for (const n of ['teacher', 'studentBefore', 'studentAfter']) {
      expect(json.probe.scores[n]).toMatchObject({ task: 'detection', metric: 'AP', images: 8 });
    }
    expect(json.ownHead.skipped).toMatch(/task_loss_weight/);

    // Fixed selection of every level: the finest level is P2 for every image, so no correlation.
    expect(json.policy.correlation).toMatchObject({ method: 'spearman', value: null });
    expect(json.policy.correlation.reason).toMatch(/same finest selected level/);
    expect(json.policy.byBin.reduce((a: number, b: { images: number }) => a + b.images, 0)).toBe(8);

    // Cost: the cost model's totals; every level selected costs the whole student.
    expect(json.cost.teacherMacs).toBe(computeCostModel(teacherModel, size).totalMacs);
    expect(json.cost.studentMacs).toBe(computeCostModel(loadModel(models.student), size).totalMacs);
    expect(json.cost.selectedShare).toBe(1);
  });

  it('eval --json gives the same object, a labels-only baseline and own heads when the checkpoint has them', async () => {
    const final = path.join(runDir, 'checkpoints', 'final');
    fs.copyFileSync(
      path.join(final, 'student.onnx'),
      path.join(final, TASK_CHECKPOINT_FILES.labelsOnlyStudent),
    );
    const own = composeTaskModel(loadModel(path.join(final, 'student.onnx')), head);
    saveModel(own, path.join(final, TASK_CHECKPOINT_FILES.studentTaskModel));
    const r = await evaluateRun({ run: runDir });
    const j = r.json as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(j.task.labelsOnly).toBe(j.task.studentAfter);
    expect(j.fidelity.backbones.labelsOnly).toEqual(j.fidelity.backbones.studentAfter);
    // The student's own head here is the teacher's head on the distilled student: the same score.
    expect(j.ownHead.studentAfter.value).toBe(j.task.studentAfter);
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'eval.json'), 'utf8')).task).toEqual(j.task);
    expect(r.text).toMatch(/labels-only/);
    // The probe on the distilled student only (an ablation branch's evaluation): the same score, no others.
    const only = await evaluateRun({ run: runDir, probeBackbones: ['studentAfter'] });
    const probe = (only.json as Record<string, any>).probe; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(Object.keys(probe.scores)).toEqual(['studentAfter']);
    expect(probe.scores.studentAfter).toEqual(j.probe.scores.studentAfter);
  });

  it.each([
    [false, 'eval.probe.enabled is false'],
    [
      true,
      'models.teacher_head is not set (`rlpkd teach` writes a head.onnx): the probe trains a head of its kind',
    ],
  ])('says why a section is skipped (probe enabled: %s)', async (enabled, probeReason) => {
    const config = tinyConfig(dir, models, { distill: { selection: 'all' }, eval: { probe: { enabled } } });
    const setup = await prepareDistillation(config, { ep: 'cpu', log: silentLog });
    const M = setup.heldOut.hashes.length;
    const e = await evaluateCheckpoint({
      setup,
      checkpointDir: path.join(runDir, 'checkpoints', 'final'),
      selection: {
        selections: Array.from({ length: M }, (_, i) => (i % 2 ? ['P5'] : ['P4', 'P5'])),
        histogram: [],
        meanUsedCost: 0,
        source: 'fixed',
      },
      log: silentLog,
    });
    expect(e.task).toBeNull();
    expect(e.teacherHead).toEqual({ skipped: expect.stringMatching(/models.teacher_head is not set/) });
    expect(e.probe).toEqual({ skipped: probeReason });
    expect(e.cost.selectedShare).toBeGreaterThan(0);
    expect(e.cost.selectedShare).toBeLessThan(1);
    const text = tablesAsText(evaluationTables(e, setup.levelNames));
    expect(text).toContain(`skipped: ${probeReason}`);
  });
});
