/**
 * transplantWeights, the task-model score and `rlpkd eval --task-model`: a student backbone's weights
 * written into a task model composed (composeTaskModel) from another backbone of the same architecture
 * whose parameter names carry a `backbone.` prefix, as torchvision detectors' do. The reference for a
 * transplant is composing the head directly onto the student; for the score, the transplanted model
 * written to disk, read back and scored with the head it was built with.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { teachConfigFromObject } from '../../src/config/teach-schema';
import { preprocessFromConfig } from '../../src/data/batch-loader';
import { openDatasetSplits } from '../../src/data/dataset';
import { checkpointLabel, writeRunCheckpoint } from '../../src/distill/run-checkpoint';
import { describeTaskModel, scoreTaskModel } from '../../src/distill/score-task-model';
import { detectTransplantPrefix, transplantWeights } from '../../src/distill/transplant';
import { trainableParameterTensors } from '../../src/analysis/parameter-tensors';
import { RlpkdError } from '../../src/errors';
import {
  buildClassificationHead,
  buildFcosHead,
  buildSegmentationHead,
  composeTaskModel,
} from '../../src/heads';
import { createRunDir, RUN_FILES } from '../../src/logging/run-dir';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import type { OnnxModel } from '../../src/onnx/types';
import { createSession } from '../../src/runtime/session';
import { modelPredictor, scoreSplit } from '../../src/teach/score-split';
import { initialCheckpoint } from '../../src/training/checkpoint';
import { compareArrays, runOrt } from '../helpers/grad-check';
import { tinyBackbone } from '../heads/head-fixtures';
import { tempDir, tinyConfig, writeTinyModels } from './run-fixtures';
import { runTraining } from '../../src/distill/pipeline';
import { headLevelsOf } from '../../src/heads';
import { imageInput } from '../../src/analysis/pyramid';
import { Writable } from 'node:stream';

/** `model` with every initializer (and its uses) renamed `prefix + name`. */
function withPrefix(model: OnnxModel, prefix: string): OnnxModel {
  const names = new Set(model.graph.initializers.map((t) => t.name));
  const rename = (n: string): string => (names.has(n) ? prefix + n : n);
  return {
    ...model,
    graph: {
      ...model.graph,
      initializers: model.graph.initializers.map((t) => ({ ...t, name: prefix + t.name })),
      nodes: model.graph.nodes.map((n) => ({ ...n, inputs: n.inputs.map(rename) })),
    },
  };
}

const SIZE = 32;
const student = tinyBackbone(1, 8, SIZE);
const head = buildFcosHead({
  levels: student.levels,
  numClasses: 2,
  imageHeight: SIZE,
  imageWidth: SIZE,
  seed: 3,
});
/** The user's detector: the same architecture with other weights, its parameters under `backbone.`. */
const taskModel = composeTaskModel(withPrefix(tinyBackbone(7, 8, SIZE).model, 'backbone.'), head);
const studentWeights = trainableParameterTensors(student.model).tensors;

describe('transplantWeights', () => {
  it("detects the 'backbone.' prefix and gives the outputs of the head composed on the student", async () => {
    expect(studentWeights.map((t) => t.name)).toEqual([
      'body.conv1.weight',
      'body.conv1.bias',
      'body.conv2.weight',
      'body.conv2.bias',
      'body.conv3.weight',
      'body.conv3.bias',
    ]);
    const r = transplantWeights(taskModel, studentWeights);
    expect(r.prefix).toBe('backbone.');
    expect(r.transplanted).toBe(6);
    expect(r.mismatches).toEqual([]);
    const scaled = {
      data: Float32Array.from({ length: 2 * 3 * SIZE * SIZE }, (_, i) => Math.sin(i * 0.37)),
      dims: [2, 3, SIZE, SIZE],
    };
    const got = await runOrt(r.model, { images: scaled });
    const want = await runOrt(composeTaskModel(student.model, head), { images: scaled });
    const before = await runOrt(taskModel, { images: scaled });
    for (const name of Object.values(head.outputs)) {
      expect(compareArrays(got[name]!.data as Float32Array, want[name]!.data as Float32Array).maxAbs).toBe(0);
    }
    expect(
      compareArrays(before.cls_logits!.data as Float32Array, want.cls_logits!.data as Float32Array).maxAbs,
    ).toBeGreaterThan(0);
    // The input model is unchanged.
    const w = taskModel.graph.initializers.find((t) => t.name === 'backbone.body.conv1.weight')!;
    expect(w.data[0]).not.toBe(studentWeights[0]!.data[0]);
  });

  it('lists every missing name and shape mismatch exactly', () => {
    const narrow = tinyBackbone(1, 4, SIZE).model;
    const weights = trainableParameterTensors(narrow).tensors.map((t) =>
      t.name === 'body.conv3.bias' ? { ...t, name: 'body.extra.bias' } : t,
    );
    const r = transplantWeights(taskModel, weights, { prefix: 'backbone.' });
    expect(r.transplanted).toBe(0);
    expect(r.mismatches.map((m) => [m.name, m.target, m.kind, m.shape, m.targetShape])).toEqual([
      ['body.conv1.weight', 'backbone.body.conv1.weight', 'shape', [4, 3, 3, 3], [8, 3, 3, 3]],
      ['body.conv1.bias', 'backbone.body.conv1.bias', 'shape', [4], [8]],
      ['body.conv2.weight', 'backbone.body.conv2.weight', 'shape', [4, 4, 3, 3], [8, 8, 3, 3]],
      ['body.conv2.bias', 'backbone.body.conv2.bias', 'shape', [4], [8]],
      ['body.conv3.weight', 'backbone.body.conv3.weight', 'shape', [4, 4, 3, 3], [8, 8, 3, 3]],
      ['body.extra.bias', 'backbone.body.extra.bias', 'missing', [4], undefined],
    ]);
  });

  it('asks for --prefix when no prefix fits or several fit equally well', () => {
    expect(() => detectTransplantPrefix(taskModel, ['nothing.like.this'])).toThrow(
      /none of the student's 1 parameter names \(e\.g\. 'nothing\.like\.this'\) ends any initializer name/,
    );
    const twice = composeTaskModel(withPrefix(tinyBackbone(2, 8, SIZE).model, 'a.'), head);
    const both: OnnxModel = {
      ...twice,
      graph: {
        ...twice.graph,
        initializers: [
          ...twice.graph.initializers,
          ...twice.graph.initializers
            .filter((t) => t.name.startsWith('a.'))
            .map((t) => ({ ...t, name: `b.${t.name.slice(2)}` })),
        ],
      },
    };
    let error: unknown;
    try {
      detectTransplantPrefix(
        both,
        studentWeights.map((t) => t.name),
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RlpkdError);
    expect((error as RlpkdError).message).toMatch(
      /several prefixes equally well \('a\.', 'b\.': 6 names each\)/,
    );
    expect((error as RlpkdError).hint).toMatch(/--prefix/);
  });
});

describe('scoreTaskModel', () => {
  it('gives the same metric as the transplanted model file scored with the head it was built with', async () => {
    const dir = tempDir('transplant-score');
    const config = teachConfigFromObject({
      run: { name: 't', output_dir: path.join(dir, 'runs'), seed: 0 },
      data: {
        type: 'synthetic',
        root: path.join(dir, 'data'),
        image_size: SIZE,
        batch_size: 4,
        num_workers: 1,
        hflip: 0,
        val_split: 'train',
        synthetic: {
          train_images: 6,
          val_images: 6,
          image_size: SIZE,
          min_shapes: 1,
          max_shapes: 2,
          seed: 3,
        },
      },
      teach: { backbone: path.join(dir, 'unused.onnx') },
    });
    const { val } = await openDatasetSplits(config.data);
    const preprocess = preprocessFromConfig(config.data);
    const common = {
      levels: student.levels,
      numClasses: val.classes.length,
      imageHeight: SIZE,
      imageWidth: SIZE,
    };
    const heads = {
      detection: head,
      segmentation: buildSegmentationHead({ ...common, width: 4, seed: 5 }),
      classification: buildClassificationHead({ ...common, seed: 6 }),
    };
    const userBackbone = withPrefix(tinyBackbone(7, 8, SIZE).model, 'backbone.');
    for (const [task, h] of Object.entries(heads)) {
      const original = composeTaskModel(userBackbone, h);
      const r = transplantWeights(original, studentWeights);
      const size = { height: SIZE, width: SIZE };
      const described = describeTaskModel(r.model, student.model, { size });
      expect(described.task).toBe(task);
      expect(described.numClasses).toBe(h.numClasses);
      if (task === 'detection') expect(described.levels).toEqual(student.levels);
      const score = await scoreTaskModel(r.model, described, val, { preprocess, batchSize: 4 });

      const file = path.join(dir, `transplanted-${task}.onnx`);
      saveModel(r.model, file);
      const session = await createSession(loadModel(file), { executionProvider: 'cpu' });
      const direct = await scoreSplit(
        val,
        h,
        { m: modelPredictor(session, 'images', h) },
        { preprocess, batchSize: 4 },
      );
      await session.release();
      expect(score.images).toBe(6);
      expect(score).toEqual(direct.m);
      if (task !== 'detection') {
        // Untrained heads score above zero here (an untrained FCOS head detects nothing), and mIoU
        // depends on the transplanted weights (top-1 over 6 images may not move).
        const before = await scoreTaskModel(
          original,
          describeTaskModel(original, student.model, { size }),
          val,
          {
            preprocess,
            batchSize: 4,
          },
        );
        expect(score.value).toBeGreaterThan(0);
        if (task === 'segmentation') expect(score.value).not.toBe(before.value);
      }
    }
  });
});

describe('rlpkd eval --task-model', () => {
  let err = '';
  beforeEach(() => {
    err = '';
    jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  });
  afterEach(() => jest.restoreAllMocks());

  it('lists each mismatching name and shape and exits 1', async () => {
    const dir = tempDir('transplant-cli');
    const run = createRunDir(dir, 'x');
    fs.writeFileSync(run.file(RUN_FILES.config), 'run: {}\n');
    const cursor = { phase: 5, epoch: 0, unit: 0, globalStep: 1 };
    const narrow = tinyBackbone(1, 4, SIZE).model;
    await writeRunCheckpoint(
      run,
      {
        state: {
          version: 1,
          label: checkpointLabel(cursor),
          cursor,
          streams: {},
          phaseSeconds: [0],
          savedAt: 'now',
        },
        student: narrow,
        studentTrain: initialCheckpoint(
          { w: { data: Float32Array.of(1), dims: [1] } },
          { type: 'sgd', lr: 0.1 },
        ),
      },
      3,
    );
    const file = path.join(dir, 'task.onnx');
    saveModel(composeTaskModel(withPrefix(tinyBackbone(7, 8, SIZE).model, 'backbone.'), head), file);
    const code = await main(['node', 'rlpkd', 'eval', '--run', run.root, '--task-model', file]);
    expect(code).toBe(1);
    expect(err).toMatch(
      /error: 6 of the student's parameters do not fit task model '.*task\.onnx' \(prefix 'backbone\.'\):/,
    );
    for (const line of [
      'body.conv1.weight → backbone.body.conv1.weight: shape [4, 3, 3, 3] vs [8, 3, 3, 3]',
      'body.conv1.bias → backbone.body.conv1.bias: shape [4] vs [8]',
      'body.conv2.weight → backbone.body.conv2.weight: shape [4, 4, 3, 3] vs [8, 8, 3, 3]',
      'body.conv2.bias → backbone.body.conv2.bias: shape [4] vs [8]',
      'body.conv3.weight → backbone.body.conv3.weight: shape [4, 4, 3, 3] vs [8, 8, 3, 3]',
      'body.conv3.bias → backbone.body.conv3.bias: shape [4] vs [8]',
    ]) {
      expect(err).toContain(`\n  ${line}`);
    }
    expect(err).toMatch(/hint: .*--prefix/);
  });

  it("scores a matching task model on the run's held-out split as scoring the transplanted file does", async () => {
    const dir = tempDir('transplant-run');
    const models = writeTinyModels(dir);
    const config = tinyConfig(dir, models, {
      distill: { selection: 'all' },
      phases: { pretrain: { epochs: 1 }, joint: { epochs: 1 } },
    });
    const trained = await runTraining({
      config,
      logger: { stream: new Writable({ write: (_c, _e, done) => done() }), progress: 'lines' },
    });
    expect(trained.status).toBe('completed');
    const backbone = loadModel(models.student);
    const size = { height: 32, width: 32 };
    const { val } = await openDatasetSplits(config.data);
    const segHead = buildSegmentationHead({
      levels: headLevelsOf(backbone, size),
      numClasses: val.classes.length,
      imageHeight: 32,
      imageWidth: 32,
      width: 4,
      seed: 2,
    });
    const file = path.join(dir, 'task.onnx');
    saveModel(composeTaskModel(withPrefix(backbone, 'backbone.'), segHead), file);
    let out = '';
    jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    const code = await main([
      'node',
      'rlpkd',
      'eval',
      '--run',
      trained.runDir,
      '--task-model',
      file,
      '--json',
    ]);
    expect(err).not.toMatch(/error:/);
    expect(code).toBe(0);
    const report = JSON.parse(out.slice(out.indexOf('{'))) as { taskModel: Record<string, unknown> };

    // The reference: the final student's parameters written into the file by hand, saved, scored.
    const final = loadModel(path.join(trained.runDir, 'checkpoints', 'final', 'student.onnx'));
    const task = loadModel(file);
    const byName = new Map(task.graph.initializers.map((t) => [t.name, t]));
    const weights = trainableParameterTensors(final).tensors;
    for (const w of weights) byName.get(`backbone.${w.name}`)!.data = w.data.slice();
    const direct = path.join(dir, 'direct.onnx');
    saveModel(task, direct);
    const session = await createSession(loadModel(direct), { executionProvider: 'cpu' });
    const want = await scoreSplit(
      val,
      segHead,
      { m: modelPredictor(session, imageInput(backbone).name, segHead) },
      { preprocess: preprocessFromConfig(config.data), batchSize: config.data.batch_size },
    );
    await session.release();
    expect(report.taskModel).toEqual({
      file,
      prefix: 'backbone.',
      transplanted: weights.length,
      task: 'segmentation',
      metric: 'mIoU',
      value: want.m!.value,
      values: want.m!.values,
      images: val.records.length,
    });
    expect(want.m!.value).toBeGreaterThan(0);
    out = '';
    expect(await main(['node', 'rlpkd', 'eval', '--run', trained.runDir, '--task-model', file])).toBe(0);
    expect(out).toContain(
      `task model ${file}: ${weights.length} parameters transplanted (prefix 'backbone.'); ` +
        `segmentation mIoU ${want.m!.value.toFixed(4)} on ${val.records.length} held-out images\n`,
    );
  }, 120_000);
});
