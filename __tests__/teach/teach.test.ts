/**
 * `rlpkd teach` end to end on tiny synthetic scenes (32×32, a 3-conv backbone with P2/P3): for each task
 * the command trains, writes the task model and the head, and the task metric rises above the untrained
 * model's. The tests evaluate on the training split (data.val_split=train): with a handful of images and
 * steps that is what can be asserted without flakiness (generalisation is the demo's job); the metric,
 * decoding and box mapping are the same code paths either way. Bad configs fail with one clear error.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { packageRoot } from '../../src/config/load-config';
import { loadTeachConfig, teachConfigFromObject } from '../../src/config/teach-schema';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import type { OnnxModel } from '../../src/onnx/types';
import { createSession } from '../../src/runtime/session';
import { hostFloat } from '../../src/runtime/tensors';
import { Rng } from '../../src/util/rng';
import { runTeach, TEACH_FILES, type TeachReport } from '../../src/teach';
import { tinyBackbone } from '../heads/head-fixtures';
import { runCli } from '../helpers/run-cli';

/** The heads' tiny backbone at 32×32: three stride-2 convs, p2 (8×8) and p3 (4×4), 8 channels. */
const backbone32 = (seed: number) => tinyBackbone(seed, 8, 32).model;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-teach-'));
const backboneFile = path.join(tmp, 'tiny32.onnx');
saveModel(backbone32(1), backboneFile);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A tiny teach config as an object (what a YAML file holds). */
function config(extra: Record<string, unknown> = {}, teach: Record<string, unknown> = {}) {
  return {
    run: { name: 't', output_dir: path.join(tmp, 'runs'), seed: 0 },
    data: {
      type: 'synthetic',
      root: path.join(tmp, 'data'),
      image_size: 32,
      batch_size: 8,
      num_workers: 2,
      hflip: 0,
      val_split: 'train',
      synthetic: { train_images: 16, val_images: 4, image_size: 32, min_shapes: 1, max_shapes: 2, seed: 3 },
      ...extra,
    },
    teach: {
      backbone: backboneFile,
      epochs: 30,
      optimizer: { lr: 0.01, schedule: 'constant' },
      head: { segmentation_width: 8, tower_convs: 1 },
      ...teach,
    },
    logging: { level: 'warn', tensorboard: false, every_steps: 20 },
  };
}

const quiet = { stream: new PassThrough(), progress: 'lines' as const };

function show(r: TeachReport): string {
  const f = (v: number) => v.toFixed(4);
  return `${r.task}: ${r.metric} chance ${f(r.chance.value)}, untrained ${f(r.untrained.value)}, trained ${f(r.trained.value)} (${r.steps} steps, ${r.seconds.toFixed(1)} s)`;
}

/**
 * The trained backbone alone (backbone.onnx) is the input backbone's graph (same inputs, outputs and
 * parameter names) with trained values, and its pyramid is bit for bit the one inside the task model.
 */
async function expectBackbonePyramid(runDir: string, task: OnnxModel): Promise<void> {
  const trained = loadModel(path.join(runDir, TEACH_FILES.backbone));
  const original = backbone32(1);
  expect(trained.graph.inputs.map((i) => i.name)).toEqual(['images']);
  expect(trained.graph.outputs).toEqual(original.graph.outputs);
  expect(trained.graph.nodes.map((n) => n.opType)).toEqual(original.graph.nodes.map((n) => n.opType));
  const names = (m: OnnxModel) => m.graph.initializers.map((t) => t.name).sort();
  expect(names(trained)).toEqual(names(original));
  let changed = 0;
  for (const t of trained.graph.initializers) {
    expect(task.graph.initializers.find((u) => u.name === t.name)?.data).toEqual(t.data);
    if (!original.graph.initializers.some((u) => u.name === t.name && sameData(u.data, t.data))) changed++;
  }
  expect(changed).toBeGreaterThan(0);
  // The task model with its (internal) pyramid tensors as extra outputs, against the backbone alone.
  const levels = trained.graph.outputs.map((o) => o.name);
  const tapped = {
    ...task,
    graph: { ...task.graph, outputs: [...task.graph.outputs, ...trained.graph.outputs] },
  };
  const rng = new Rng(7);
  const images = hostFloat(
    [2, 3, 32, 32],
    Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rng.normal()),
  );
  const [a, b] = await Promise.all([createSession(tapped), createSession(trained)]);
  try {
    const fromTask = await a.run({ images }, levels);
    const alone = await b.run({ images }, levels);
    for (const l of levels) expect(alone[l]!.data).toEqual(fromTask[l]!.data);
  } finally {
    await Promise.all([a.release(), b.release()]);
  }
}

function sameData(a: OnnxModel['graph']['initializers'][number]['data'], b: typeof a): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

describe('rlpkd teach', () => {
  it('detection through the CLI: writes the task model, the head and metrics; AP50 rises', async () => {
    const file = path.join(tmp, 'teach.yaml');
    fs.writeFileSync(file, JSON.stringify(config({}, { task: 'detection', epochs: 40 })));
    const { code, stdout } = await runCli('teach', '--config', file, '--run-name', 'det', '--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as TeachReport & { runDir: string };
    console.log(`${show(report)}; AP50 ${report.untrained.values.AP50} → ${report.trained.values.AP50}`);
    expect(report.metric).toBe('AP');
    expect(report.trained.values.AP50!).toBeGreaterThan(report.untrained.values.AP50! + 0.05);
    expect(report.trained.value).toBeGreaterThan(report.untrained.value);
    const saved = JSON.parse(fs.readFileSync(path.join(report.runDir, TEACH_FILES.metrics), 'utf8'));
    expect(saved.trained.values.AP).toBe(report.trained.values.AP);
    // The head alone carries exactly the task model's head weights, and reads the pyramid levels.
    const task = loadModel(path.join(report.runDir, TEACH_FILES.taskModel));
    const head = loadModel(path.join(report.runDir, TEACH_FILES.head));
    expect(head.graph.inputs.map((i) => i.name).sort()).toEqual(['p2', 'p3']);
    expect(task.graph.inputs.map((i) => i.name)).toEqual(['images']);
    const headWeights = head.graph.initializers.filter((t) => t.name.startsWith('head.'));
    expect(headWeights.length).toBeGreaterThan(0);
    for (const t of headWeights) {
      expect(task.graph.initializers.find((u) => u.name === t.name)?.data).toEqual(t.data);
    }
    await expectBackbonePyramid(report.runDir, task);
    expect(fs.existsSync(path.join(report.runDir, 'metrics.jsonl'))).toBe(true);
    expect(fs.readFileSync(path.join(report.runDir, 'config.resolved.yaml'), 'utf8')).toContain(
      'task: detection',
    );
  });

  it('segmentation (backbone + head): mIoU rises', async () => {
    const r = await runTeach({
      config: teachConfigFromObject(config({}, { task: 'segmentation' })),
      runName: 'seg',
      logger: quiet,
    });
    console.log(show(r.report));
    expect(r.report.metric).toBe('mIoU');
    // The printed table: one row per metric with chance, untrained and trained values.
    const row = r.summaryText.split('\n').find((l) => l.startsWith('mIoU'))!;
    expect(row.split(/\s+/).slice(1).map(Number)).toEqual(
      [r.report.chance, r.report.untrained, r.report.trained].map((s) => Number(s.value.toFixed(4))),
    );
    expect(r.report.trained.value).toBeGreaterThan(r.report.untrained.value + 0.05);
  });

  it('classification, head alone on the frozen backbone: top-1 rises, the backbone is unchanged', async () => {
    const r = await runTeach({
      config: teachConfigFromObject(
        config({}, { task: 'classification', freeze_backbone: true, epochs: 60, optimizer: { lr: 0.05 } }),
      ),
      runName: 'cls',
      logger: quiet,
    });
    console.log(show(r.report));
    expect(r.report.metric).toBe('top1');
    expect(r.report.trainableParameters).toBe(8 * 3 + 3);
    expect(r.report.trained.value).toBeGreaterThan(r.report.untrained.value);
    const original = backbone32(1).graph.initializers.filter((t) => t.name.startsWith('body.'));
    const task = loadModel(r.taskModel);
    for (const t of original)
      expect(task.graph.initializers.find((u) => u.name === t.name)?.data).toEqual(t.data);
  });

  it('is bit-reproducible: the same config and seed write the same model bytes', async () => {
    const c = teachConfigFromObject(config({}, { task: 'detection', epochs: 3 }));
    const runs = [];
    for (const name of ['rep-a', 'rep-b'])
      runs.push(await runTeach({ config: c, runName: name, logger: quiet }));
    for (const file of [TEACH_FILES.taskModel, TEACH_FILES.head, TEACH_FILES.backbone]) {
      const [a, b] = runs.map((r) => fs.readFileSync(path.join(r.runDir, file)));
      expect(Buffer.compare(a!, b!)).toBe(0);
    }
    // It trained: the written backbone is not the input one.
    expect(Buffer.compare(fs.readFileSync(runs[0]!.backbone), fs.readFileSync(backboneFile))).not.toBe(0);
    expect(runs[1]!.report.trained).toEqual(runs[0]!.report.trained);
  });

  it('configs/teach_demo.yaml validates: the backbone resolves next to it, --set overrides apply', () => {
    const file = path.join(packageRoot(), 'configs', 'teach_demo.yaml');
    const c = loadTeachConfig(file, { cwd: tmp, overrides: ['teach.epochs=2'] });
    expect(c.teach.backbone).toBe(path.join(packageRoot(), 'onnx-graphs', 'teacher.onnx'));
    expect(fs.existsSync(c.teach.backbone)).toBe(true);
    expect(c.teach.epochs).toBe(2);
    expect(c.data.synthetic.family).toBe('scales');
    expect(path.isAbsolute(c.run.output_dir)).toBe(true);
    expect(() => loadTeachConfig(file, { cwd: tmp, overrides: ['teach.epoch=2'] })).toThrow(
      /unknown key 'teach.epoch'.*epochs/,
    );
  });

  it('bad configs fail with one clear error', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...config(), teach: { ...config().teach, epoch: 3 } }, /unknown key|epoch/],
      [{ ...config(), teach: undefined }, /teach/],
      [{ ...config(), teach: { ...config().teach, task: 'keypoints' } }, /teach\.task/],
    ];
    for (const [c, message] of cases) expect(() => teachConfigFromObject(c)).toThrow(message);
    const missing = { ...config(), teach: { ...config().teach, backbone: path.join(tmp, 'nope.onnx') } };
    const file = path.join(tmp, 'missing.yaml');
    fs.writeFileSync(file, JSON.stringify(missing));
    const { code, stderr } = await runCli('teach', '--config', file);
    expect(code).toBe(1);
    // The error names the file and where the config set it.
    expect(stderr).toMatch(/error: teach\.backbone '.*nope\.onnx' \(.*missing\.yaml:1:\d+\) does not exist/);
    expect(stderr).toMatch(/hint:/);
  });

  it('a dataset without the labels a task needs is refused, naming the labels', async () => {
    // An imagefolder without class folders has no class labels.
    const root = path.join(tmp, 'flat');
    fs.mkdirSync(path.join(root, 'train'), { recursive: true });
    fs.copyFileSync(
      path.join(
        tmp,
        'data',
        fs.readdirSync(path.join(tmp, 'data')).find((d) => !d.startsWith('.'))!,
        'train',
        '000000.png',
      ),
      path.join(root, 'train', 'a.png'),
    );
    const c = teachConfigFromObject({
      ...config({ type: 'imagefolder', root, val_split: 'train' }),
      teach: { ...config().teach, task: 'classification' },
    });
    await expect(runTeach({ config: c, logger: quiet })).rejects.toThrow(
      /classification needs a class per image/,
    );
  });
});
