/**
 * A run with the task loss, the labels-only baseline and the task yardstick, end to end on tiny graphs:
 * what it logs, the checkpoint files it writes, and that a run stopped mid phase 1 and in phase 3 and
 * resumed ends with the same students (distilled and labels-only) and policy, bit for bit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { runTraining, type TrainResult } from '../../src/distill/pipeline';
import { CHECKPOINT_FILES } from '../../src/distill/run-checkpoint';
import { TASK_CHECKPOINT_FILES } from '../../src/distill/task-checkpoint-files';
import { FCOS_OUTPUTS } from '../../src/heads/fcos-head';
import { loadModel } from '../../src/onnx/model-io';
import { initializers, tempDir, tinyConfig, writeTinyModels } from './run-fixtures';
import { writeTinyHead } from './task-fixtures';

jest.setTimeout(300000);

/** Runs training with a log that aborts the run when a line matches `trigger`. */
async function train(
  options: Parameters<typeof runTraining>[0],
  trigger: RegExp | null,
): Promise<TrainResult> {
  const controller = new AbortController();
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (trigger && trigger.test(chunk.toString())) controller.abort();
      done();
    },
  });
  return runTraining({ ...options, signal: controller.signal, logger: { stream, progress: 'lines' } });
}

describe('a run with the task loss', () => {
  it('trains both students, writes the task checkpoint files, and resumes exactly', async () => {
    const dir = tempDir('taskloss-run');
    const models = writeTinyModels(dir);
    const { file } = writeTinyHead(dir, models.teacher);
    const config = (name: string) =>
      tinyConfig(dir, models, {
        run: { name },
        models: { teacher_head: file },
        distill: {
          task_loss_weight: 0.5,
          labels_only_baseline: true,
          feature_cache: { dir: path.join(dir, `cache-${name}`) },
        },
        rl: { reward: { yardstick: 'task' } },
        phases: {
          pretrain: { epochs: 1 },
          policy: { epochs: 1 },
          joint: { epochs: 1 },
          meta: { enabled: false },
        },
      });
    const full = await train({ config: config('full') }, null);
    expect(full.status).toBe('completed');
    const t = full.summary!.taskLoss!;
    expect([t.before, t.after, t.labelsOnlyAfter].every((x) => Number.isFinite(x))).toBe(true);
    const final = (run: string, f: string) => path.join(run, 'checkpoints', 'final', f);
    for (const f of Object.values(TASK_CHECKPOINT_FILES))
      expect(fs.existsSync(final(full.runDir, f))).toBe(true);
    // Inference forms: image in; the task models output the head's outputs, the baseline student its pyramid.
    const io = (f: string) => {
      const g = loadModel(final(full.runDir, f)).graph;
      return [g.inputs.map((i) => i.name), g.outputs.map((o) => o.name)];
    };
    const fcos = Object.values(FCOS_OUTPUTS);
    expect(io(TASK_CHECKPOINT_FILES.studentTaskModel)).toEqual([['images'], fcos]);
    expect(io(TASK_CHECKPOINT_FILES.labelsOnlyTaskModel)).toEqual([['images'], fcos]);
    expect(io(TASK_CHECKPOINT_FILES.labelsOnlyStudent)).toEqual(io(CHECKPOINT_FILES.student));
    const rows = fs
      .readFileSync(path.join(full.runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const key of ['task/loss', 'labels_only/task_loss', 'heldout/pretrain/labels_only_task_loss'])
      expect(rows.some((row) => typeof row[key] === 'number')).toBe(true);

    // Stopped after the first phase-1 step and after the first joint iteration, then resumed each time.
    let r = await train({ config: config('chain') }, /held-out all-level distillation loss before training/);
    expect(r.status).toBe('interrupted');
    r = await train({ resume: r.runDir }, /GradNorm measures gradient norms/);
    expect(r.status).toBe('interrupted');
    expect(path.basename(r.checkpoint)).toMatch(/-p3-e0-u1$/);
    r = await train({ resume: r.runDir }, null);
    expect(r.status).toBe('completed');
    for (const f of [
      CHECKPOINT_FILES.studentTrain,
      TASK_CHECKPOINT_FILES.labelsOnlyTrain,
      CHECKPOINT_FILES.policy,
    ]) {
      const a = initializers(final(full.runDir, f));
      const b = initializers(final(r.runDir, f));
      expect(Object.keys(b)).toEqual(Object.keys(a));
      for (const k of Object.keys(a)) expect(b[k]).toEqual(a[k]);
    }
    expect(r.summary!.taskLoss).toEqual(full.summary!.taskLoss);
  });
});
