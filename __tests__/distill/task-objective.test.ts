/**
 * Distillation with the task loss on tiny graphs: the one-graph objective against the two losses built as
 * separate graphs (value and gradient), the labels-only baseline against a run with distillation weight 0,
 * the task yardstick against the frozen head's loss computed image by image, and the config errors.
 */
import * as path from 'node:path';
import { classifyParameters } from '../../src/analysis/parameters';
import { configFromObject } from '../../src/config/load-config';
import type { BoxAnnotation } from '../../src/data/types';
import { LabelsOnlyBaseline } from '../../src/distill/labels-only-baseline';
import { addStudentAdapters, matchLevels, type LevelPair } from '../../src/distill/level-matching';
import { prepareDistillation } from '../../src/distill/setup';
import { distillerArtifacts, StudentDistiller } from '../../src/distill/student-distiller';
import { composeStudentHead, loadTeacherHead, type RunHead } from '../../src/distill/student-head';
import { OBJECTIVE_IO, objectiveWeightFeeds } from '../../src/distill/task-objective';
import { TaskYardstick } from '../../src/distill/task-yardstick';
import { appendHeadLoss, HEAD_LOSS_NAMES } from '../../src/heads/head-loss';
import { saveModel } from '../../src/onnx/model-io';
import type { OnnxModel } from '../../src/onnx/types';
import { createSession, type HostTensor } from '../../src/runtime';
import { targetFeeds } from '../../src/teach/task-feeds';
import { generateArtifacts } from '../../src/training/artifacts';
import type { OptimizerConfig } from '../../src/training/optimizers';
import { TrainingSession } from '../../src/training/training-session';
import { Rng } from '../../src/util/rng';
import { relativeL2 } from '../helpers/tensor-compare';
import { tinyFpn } from './fixtures';
import { tempDir, tinyConfigObject, merge, writeTinyModels } from './run-fixtures';
import { tinyHead, writeTinyHead } from './task-fixtures';

jest.setTimeout(120000);

const SIZE = { height: 32, width: 32 };
const N = 3;
const L = 4;

/** Images plus a few labelled boxes per image (model-input pixels). */
function labelledBatch(seed: number): {
  images: HostTensor & { data: Float32Array };
  boxes: BoxAnnotation[][];
} {
  const rng = new Rng(seed);
  const images = {
    data: Float32Array.from({ length: N * 3 * 32 * 32 }, () => rng.normal()),
    dims: [N, 3, 32, 32],
  };
  const boxes = Array.from({ length: N }, () =>
    Array.from({ length: 1 + rng.int(2) }, () => {
      const w = 4 + rng.int(20);
      const h = 4 + rng.int(20);
      const x = rng.int(32 - w);
      const y = rng.int(32 - h);
      const label = rng.int(3);
      return {
        bbox: [x, y, w, h] as [number, number, number, number],
        categoryId: label + 1,
        label,
        iscrowd: false,
        area: w * h,
      };
    }),
  );
  return { images, boxes };
}

/** Teacher, adapted student, level pairs, the teacher's head read back from a file, the student with its head. */
function graphs(teacherChannels: number) {
  const dir = tempDir('task-objective');
  const teacher = tinyFpn({ arch: 'resnet34-fpn', seed: 1, fpnChannels: teacherChannels });
  const c = classifyParameters(tinyFpn({ seed: 2 }));
  const { model: student, pairs } = addStudentAdapters(c.model, matchLevels(teacher, c.model, SIZE), 1);
  const trainable = [
    ...c.trainable.map((e) => e.name),
    ...pairs.flatMap((p) => (p.adapter ? [p.adapter.weight, p.adapter.bias] : [])),
  ];
  const head = tinyHead(teacher, 3, 9);
  const file = path.join(dir, 'head.onnx');
  saveModel(head.model, file);
  const run = loadTeacherHead(file, teacher, pairs, SIZE);
  const withHead = composeStudentHead(student, run);
  return { teacher, student, pairs, trainable, run, withHead };
}

async function teacherFeeds(teacher: OnnxModel, pairs: readonly LevelPair[], images: HostTensor) {
  const s = await createSession(teacher);
  const out = await s.run(
    { images },
    pairs.map((p) => p.teacher.output),
  );
  await s.release();
  return Object.fromEntries(pairs.map((p) => [`teacher.${p.name}`, out[p.teacher.output]]));
}

const scalar = (out: Record<string, HostTensor>, name: string) => (out[name].data as Float32Array)[0];

describe('the task objective', () => {
  it.each([
    ['same widths', 8],
    ['a 1×1 adapter per level (teacher 16 channels, student 8)', 16],
  ])('equals a·(distillation graph) + b·(task graph), loss and gradient (%s)', async (_what, channels) => {
    const { teacher, student, pairs, trainable, withHead } = graphs(channels);
    const optimizer: OptimizerConfig = { type: 'sgd', lr: 1e-3 };
    const batch = labelledBatch(3);
    const rng = new Rng(4);
    const mask = Float32Array.from({ length: N * L }, () => (rng.uniform(0, 1) < 0.6 ? 1 : 0));
    const weights = Float32Array.of(0.1, 0.2, 0.3, 0.4);
    const distillFeeds = {
      images: batch.images,
      ...(await teacherFeeds(teacher, pairs, batch.images)),
      'distill.mask': { data: mask, dims: [N, L] },
      'distill.weights': { data: weights, dims: [L] },
    };
    const targets = targetFeeds(withHead.head, batch);
    const [a, b] = [0.7, 1.3];
    const headParams = withHead.parameters;

    const combined = await TrainingSession.create({
      artifacts: distillerArtifacts({
        student: withHead.model,
        imageInput: 'images',
        pairs,
        loss: 'mse',
        trainable: [...trainable, ...headParams],
        optimizer,
        head: withHead.head,
      }),
    });
    const out = await combined.trainStep({
      ...distillFeeds,
      ...targets,
      ...objectiveWeightFeeds({ distill: a, task: b }),
    });
    const g = await combined.getGradients();

    // Separate graph 1: the distillation model alone (no head).
    const distill = await TrainingSession.create({
      artifacts: distillerArtifacts({
        student,
        imageInput: 'images',
        pairs,
        loss: 'mse',
        trainable,
        optimizer,
      }),
    });
    const L1 = scalar(await distill.trainStep(distillFeeds), 'distill.loss');
    const g1 = await distill.getGradients();
    // Separate graph 2: the student with its head and the head loss (no distillation).
    const task = appendHeadLoss(withHead.model, withHead.head);
    const taskSession = await TrainingSession.create({
      artifacts: generateArtifacts(task.model, {
        loss: task.loss,
        optimizer,
        trainable: [...trainable, ...headParams],
        untieSharedInitializers: false,
      }),
    });
    const L2 = scalar(
      await taskSession.trainStep({ images: batch.images, ...targets }),
      HEAD_LOSS_NAMES.loss,
    );
    const g2 = await taskSession.getGradients();

    expect(scalar(out, 'distill.loss')).toBeCloseTo(L1, 5);
    expect(scalar(out, HEAD_LOSS_NAMES.loss)).toBeCloseTo(L2, 5);
    const total = scalar(out, OBJECTIVE_IO.loss);
    expect(Math.abs(total - (a * L1 + b * L2)) / Math.abs(a * L1 + b * L2)).toBeLessThan(1e-6);
    expect(Object.keys(g).sort()).toEqual([...trainable, ...headParams].sort());
    let worst = 0;
    for (const name of Object.keys(g)) {
      const ref = new Float32Array(g[name].data.length);
      const d1 = g1[name]?.data as Float32Array | undefined; // head parameters: no distillation gradient
      const d2 = g2[name].data as Float32Array;
      for (let i = 0; i < ref.length; i++) ref[i] = a * (d1 ? d1[i] : 0) + b * d2[i];
      worst = Math.max(worst, relativeL2(g[name].data as Float32Array, ref));
    }
    expect(worst).toBeLessThan(1e-5);
    await Promise.all([combined.release(), distill.release(), taskSession.release()]);
  });
});

async function distiller(
  g: ReturnType<typeof graphs>,
  extra: Partial<Parameters<typeof StudentDistiller.create>[0]>,
): Promise<StudentDistiller> {
  return StudentDistiller.create({
    teacher: g.teacher,
    student: g.withHead.model,
    imageInput: 'images',
    teacherImageInput: 'images',
    pairs: g.pairs,
    loss: 'mse',
    trainable: [...g.trainable, ...g.withHead.parameters],
    optimizer: { type: 'adamw', lr: 1e-3, weightDecay: 1e-2 },
    head: g.withHead.head,
    ...extra,
  });
}

describe('the labels-only baseline', () => {
  it('is bit for bit a student trained on the same schedule with distillation weight 0', async () => {
    const g = graphs(8);
    const zero = await distiller(g, { objectiveWeights: { distill: 0, task: 0.5 } });
    const distilled = await distiller(g, { objectiveWeights: { distill: 1, task: 0.5 } });
    let baseline = await LabelsOnlyBaseline.create(distilled, { taskWeight: 0.5 });
    const mask = new Float32Array(N * L).fill(1);
    const weights = new Float32Array(L).fill(0.25);
    for (let k = 0; k < 3; k++) {
      const batch = labelledBatch(10 + k);
      await zero.step(batch, mask, weights);
      const taught = await distilled.prepare(batch);
      await distilled.step(taught, mask, weights);
      await baseline.step(taught, mask, weights);
      if (k === 1) {
        // Resumed from its checkpoint, it continues exactly.
        const state = baseline.checkpointState();
        await baseline.release();
        baseline = await LabelsOnlyBaseline.create(distilled, { taskWeight: 0.5, checkpoint: state });
      }
    }
    const a = await zero.session.getParameters();
    const b = await baseline.session.getParameters();
    const d = await distilled.session.getParameters();
    let differs = false;
    for (const name of Object.keys(a)) {
      expect(Array.from(b[name].data as Float32Array)).toEqual(Array.from(a[name].data as Float32Array));
      if (relativeL2(d[name].data as Float32Array, a[name].data as Float32Array) > 1e-4) differs = true;
    }
    // ... while the distilled student, same schedule, went elsewhere.
    expect(differs).toBe(true);
    await Promise.all([zero.release(), distilled.release(), baseline.release()]);
  });
});

describe('the task yardstick', () => {
  it("is each image's loss through the teacher's frozen head on the student's pyramid, and moves with a trial", async () => {
    const g = graphs(16);
    const run: RunHead = g.run;
    const yardstick = await TaskYardstick.create(run);
    const d = await distiller(g, { yardstick, objectiveWeights: { distill: 1, task: 0 } });
    const batch = labelledBatch(21);
    const before = (await d.evaluate(batch)).yardstick!;
    // Reference: the student (no head of its own) with the teacher's frozen head and its loss, one image at a time.
    const frozen = appendHeadLoss(composeStudentHead(g.student, run).model, run.head);
    const session = await createSession(frozen.model);
    const per = 3 * 32 * 32;
    for (let n = 0; n < N; n++) {
      const one = {
        images: { data: batch.images.data.slice(n * per, (n + 1) * per), dims: [1, 3, 32, 32] },
        boxes: [batch.boxes[n]],
      };
      const out = await session.run({ images: one.images, ...targetFeeds(run.head, one) }, [
        HEAD_LOSS_NAMES.loss,
      ]);
      const ref = scalar(out, HEAD_LOSS_NAMES.loss);
      expect(Math.abs(before[n] - ref) / Math.abs(ref)).toBeLessThan(1e-5);
    }
    await session.release();
    const params = await d.session.getParameters();
    const t = await d.trial(batch, new Float32Array(N * L).fill(1), new Float32Array(L).fill(0.25));
    expect(t.afterYardstick).toHaveLength(N);
    expect(Array.from(t.afterYardstick!)).not.toEqual(Array.from(before));
    // The trial left no trace, and the yardstick reads the same again.
    const again = await d.session.getParameters();
    for (const name of Object.keys(params)) expect(again[name].data).toEqual(params[name].data);
    expect(Array.from((await d.evaluate(batch)).yardstick!)).toEqual(Array.from(before));
    await d.release();
  });
});

describe('config and setup errors', () => {
  const dir = tempDir('task-config');
  const models = writeTinyModels(dir);
  const config = (o: Record<string, unknown>) => () =>
    configFromObject(merge(tinyConfigObject(dir, models), o), { cwd: dir });

  it('names the key and what it needs', () => {
    expect(config({ distill: { task_loss_weight: 1 } })).toThrow(
      /distill.task_loss_weight.*models.teacher_head/s,
    );
    expect(config({ rl: { reward: { yardstick: 'task' } } })).toThrow(
      /rl.reward.yardstick.*models.teacher_head/s,
    );
    expect(config({ distill: { labels_only_baseline: true } })).toThrow(
      /labels_only_baseline.*task_loss_weight > 0/s,
    );
    expect(config({ distill: { distill_weight: 0 } })).toThrow(/distill_weight.*train on nothing/s);
    expect(config({ distill: { distill_weight: 0.5 } })).toThrow(/distill_weight.*task loss, which is off/s);
    expect(config({ rl: { reward: { yardstick: 'loss' } } })).toThrow(/rl.reward.yardstick/);
  });

  it('refuses a head for another class count, or one that reads a level the run does not distil', async () => {
    const log = { debug() {}, info() {}, warn() {}, error() {} };
    const five = tinyHead(tinyFpn({ arch: 'resnet34-fpn', seed: 1 }), 5);
    const fiveFile = path.join(dir, 'five.onnx');
    saveModel(five.model, fiveFile);
    await expect(
      prepareDistillation(
        configFromObject(
          merge(tinyConfigObject(dir, models), {
            models: { teacher_head: fiveFile },
            distill: { task_loss_weight: 1 },
          }),
          { cwd: dir },
        ),
        { log },
      ),
    ).rejects.toThrow(/predicts 5 classes.*has 3/);
    const { file } = writeTinyHead(dir, models.teacher);
    await expect(
      prepareDistillation(
        configFromObject(
          merge(tinyConfigObject(dir, models), {
            models: { teacher_head: file, levels: ['p3', 'p4', 'p5'] },
            rl: { reward: { yardstick: 'task' } },
          }),
          { cwd: dir },
        ),
        { log },
      ),
    ).rejects.toThrow(/reads 'p2', which is not a distilled teacher level/);
  });
});
