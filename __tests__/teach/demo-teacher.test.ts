/**
 * `rlpkd models demo-teacher`: the demo teacher built from a teach config (here a tiny one: 32×32 scenes,
 * a 3-conv backbone, a few steps), its files and metadata, the rebuild's bytes, the config hash; and the
 * shipped onnx-graphs/demo-teacher*.onnx are current with configs/teach_demo.yaml.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { loadTeachConfig } from '../../src/config/teach-schema';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import {
  buildDemoTeacher,
  defaultTeachDemoConfig,
  DEMO_TEACHER_FILES,
  DEMO_TEACHER_METADATA,
  teachConfigHash,
  type DemoTeacherReport,
} from '../../src/teach';
import { tinyBackbone } from '../heads/head-fixtures';
import { runCli } from '../helpers/run-cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-demo-teacher-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const backboneFile = path.join(tmp, 'tiny32.onnx');
saveModel(tinyBackbone(1, 8, 32).model, backboneFile);

/** A tiny teach recipe as YAML text (with a comment, which the hash ignores). */
function recipe(lr = 0.01): string {
  return [
    '# a tiny demo teacher recipe',
    'run: { name: tiny, seed: 0 }',
    'data:',
    `  root: ${JSON.stringify(path.join(tmp, 'data'))}`,
    '  image_size: 32',
    '  batch_size: 8',
    '  num_workers: 2',
    '  synthetic: { family: scales, train_images: 16, val_images: 8, image_size: 32, seed: 3 }',
    'teach:',
    '  backbone: tiny32.onnx',
    '  task: detection',
    '  epochs: 3',
    `  optimizer: { lr: ${lr}, schedule: constant }`,
    '  head: { tower_convs: 1 }',
    'logging: { level: warn, tensorboard: false }',
    '',
  ].join('\n');
}

const recipeFile = path.join(tmp, 'recipe.yaml');
fs.writeFileSync(recipeFile, recipe());
const quiet = { stream: new PassThrough(), progress: 'lines' as const };
const tmpRuns = () =>
  fs
    .readdirSync(os.tmpdir())
    .filter((d) => d.startsWith('rlpkd-demo-teacher-'))
    .sort();

describe('models demo-teacher', () => {
  it('writes the trained backbone, the head and the report, tagged; the run is removed; CLI', async () => {
    const out = path.join(tmp, 'out-cli');
    const before = tmpRuns();
    const r = await runCli('models', 'demo-teacher', '--config', recipeFile, '--out-dir', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^AP50 /m);
    expect(r.stdout).toContain(`wrote ${path.join(out, DEMO_TEACHER_FILES.backbone)} (`);
    expect(r.stdout).toContain('removed; --keep-run keeps it');
    expect(tmpRuns()).toEqual(before);
    expect(fs.readdirSync(out).sort()).toEqual(Object.values(DEMO_TEACHER_FILES).sort());

    const report = JSON.parse(
      fs.readFileSync(path.join(out, DEMO_TEACHER_FILES.report), 'utf8'),
    ) as DemoTeacherReport;
    const hash = teachConfigHash(loadTeachConfig(recipeFile));
    expect(report.configSha256).toBe(hash);
    expect(report.backbone).toBe('tiny32.onnx');
    expect(report.steps).toBe(6);
    expect(Object.keys(report.chance.values)).toContain('AP50');
    const backbone = loadModel(path.join(out, DEMO_TEACHER_FILES.backbone));
    const head = loadModel(path.join(out, DEMO_TEACHER_FILES.head));
    expect(backbone.graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3']);
    expect(head.graph.inputs.map((i) => i.name).sort()).toEqual(['p2', 'p3']);
    for (const [m, role] of [
      [backbone, 'trained-teacher'],
      [head, 'trained-teacher-head'],
    ] as const) {
      expect(m.metadata[DEMO_TEACHER_METADATA.role]).toBe(role);
      expect(m.metadata[DEMO_TEACHER_METADATA.configHash]).toBe(hash);
      const metrics = JSON.parse(m.metadata[DEMO_TEACHER_METADATA.metrics]!) as Record<string, unknown>;
      expect(metrics).toEqual({ split: 'val', ...report.trained.values });
    }
  });

  it('rebuilds the same model bytes; --keep-run keeps the teach run', async () => {
    const out = path.join(tmp, 'out-lib');
    const r = await buildDemoTeacher({ outDir: out, configFile: recipeFile, keepRun: true, logger: quiet });
    try {
      expect(r.runDir).not.toBeNull();
      expect(fs.existsSync(path.join(r.runDir!, 'task-model.onnx'))).toBe(true);
      const first = loadModel(path.join(tmp, 'out-cli', DEMO_TEACHER_FILES.backbone));
      expect(first.metadata[DEMO_TEACHER_METADATA.configHash]).toBe(r.teach.configSha256);
      for (const f of [DEMO_TEACHER_FILES.backbone, DEMO_TEACHER_FILES.head]) {
        const [a, b] = [path.join(tmp, 'out-cli', f), path.join(out, f)].map((p) => fs.readFileSync(p));
        expect(Buffer.compare(a!, b!)).toBe(0);
      }
    } finally {
      fs.rmSync(path.dirname(r.runDir!), { recursive: true, force: true });
    }
  });

  it('an interrupted build writes nothing', async () => {
    const out = path.join(tmp, 'out-aborted');
    const controller = new AbortController();
    controller.abort();
    await expect(
      buildDemoTeacher({ outDir: out, configFile: recipeFile, signal: controller.signal, logger: quiet }),
    ).rejects.toThrow(/interrupted; nothing written/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('the config hash ignores comments and machine paths, and follows every recipe value', () => {
    const base = teachConfigHash(loadTeachConfig(recipeFile));
    const other = path.join(tmp, 'recipe-copy.yaml');
    fs.writeFileSync(other, `# another comment\n${recipe()}`);
    expect(teachConfigHash(loadTeachConfig(other))).toBe(base);
    expect(teachConfigHash(loadTeachConfig(other, { overrides: ['run.output_dir=/elsewhere'] }))).toBe(base);
    fs.writeFileSync(other, recipe(0.02));
    expect(teachConfigHash(loadTeachConfig(other))).not.toBe(base);
    expect(teachConfigHash(loadTeachConfig(recipeFile, { overrides: ['teach.head.box_loss=iou'] }))).not.toBe(
      base,
    );
  });
});
describe('shipped demo teacher (onnx-graphs/demo-teacher*.onnx)', () => {
  const dir = path.join(__dirname, '..', '..', 'onnx-graphs');
  const shipped = (f: string) => path.join(dir, f);

  it('was built from the current configs/teach_demo.yaml (else rebuild: rlpkd models demo-teacher)', () => {
    const hash = teachConfigHash(loadTeachConfig(defaultTeachDemoConfig()));
    for (const f of [DEMO_TEACHER_FILES.backbone, DEMO_TEACHER_FILES.head]) {
      expect([f, loadModel(shipped(f)).metadata[DEMO_TEACHER_METADATA.configHash]]).toEqual([f, hash]);
    }
    const report = JSON.parse(
      fs.readFileSync(shipped(DEMO_TEACHER_FILES.report), 'utf8'),
    ) as DemoTeacherReport;
    expect(report.configSha256).toBe(hash);
  });

  it('is the demo teacher graph with trained weights, and reached val AP50 >= 0.5', () => {
    const trained = loadModel(shipped(DEMO_TEACHER_FILES.backbone));
    const init = loadModel(shipped('teacher.onnx'));
    expect(trained.graph.outputs).toEqual(init.graph.outputs);
    expect(trained.graph.initializers.map((t) => t.name)).toEqual(init.graph.initializers.map((t) => t.name));
    const report = JSON.parse(
      fs.readFileSync(shipped(DEMO_TEACHER_FILES.report), 'utf8'),
    ) as DemoTeacherReport;
    expect(report.interrupted).toBe(false);
    expect(report.trained.values.AP50!).toBeGreaterThanOrEqual(0.5);
    expect(report.chance.values.AP50!).toBeLessThan(report.trained.values.AP50!);
    const metrics = JSON.parse(trained.metadata[DEMO_TEACHER_METADATA.metrics]!) as Record<string, number>;
    expect(metrics.AP50).toBe(report.trained.values.AP50);
  });
});
