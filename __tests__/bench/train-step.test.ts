import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchTrainStep, prepareTrainStepBench, readProcMemory } from '../../src/bench/train-step';
import { buildResnetFpn, countResnetFpnParameters } from '../../src/models/resnet-fpn';
import { saveModel } from '../../src/onnx/model-io';

// Tiny graphs: the same ResNet-FPN structure as the real benchmark at 1/8 width, 64×64 input.
const SIZE = 64;
const STUDENT = { arch: 'resnet18-fpn', widthMult: 0.125, fpnChannels: 16 } as const;
const TEACHER = { arch: 'resnet34-fpn', widthMult: 0.125, fpnChannels: 16 } as const;

describe('benchTrainStep on tiny ResNet-FPN graphs', () => {
  let dir: string;
  let teacher: string;
  let student: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-bench-test-'));
    teacher = path.join(dir, 'teacher.onnx');
    student = path.join(dir, 'student.onnx');
    saveModel(
      buildResnetFpn({ ...TEACHER, seed: 1, height: SIZE, width: SIZE, batchNorm: 'identity' }),
      teacher,
    );
    saveModel(
      buildResnetFpn({ ...STUDENT, seed: 2, height: SIZE, width: SIZE, batchNorm: 'identity' }),
      student,
    );
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('times the steps and reports consistent figures; a second run finds the prepared cache', async () => {
    const cacheDir = path.join(dir, 'cache');
    const seen: { step: number; warmup: boolean }[] = [];
    const r = await benchTrainStep({
      teacher,
      student,
      batch: 2,
      size: SIZE,
      steps: 3,
      warmup: 1,
      cacheDir,
      onStep: (step, _ms, warmup) => seen.push({ step, warmup }),
    });
    console.log(
      `tiny bench: median ${r.medianMs.toFixed(1)} ms, peak ${r.peakRssMB.toFixed(0)} MB, setup RSS ${r.setupRssMB.toFixed(0)} MB`,
    );
    expect(seen).toEqual([
      { step: 1, warmup: true },
      { step: 2, warmup: false },
      { step: 3, warmup: false },
      { step: 4, warmup: false },
    ]);
    expect(r.stepsMs).toHaveLength(3);
    expect(r.stepsMs.every((t) => Number.isFinite(t) && t > 0)).toBe(true);
    expect(r.minMs).toBeLessThanOrEqual(r.medianMs);
    expect(r.medianMs).toBeLessThanOrEqual(r.p90Ms);
    expect(r.teacherMedianMs).toBeGreaterThan(0);
    expect(r.studentMedianMs).toBeGreaterThan(0);
    expect(r.teacherMedianMs + r.studentMedianMs).toBeLessThanOrEqual(r.p90Ms * 2);
    expect(r.setupRssMB).toBeGreaterThan(10);
    expect(r.peakRssMB).toBeGreaterThanOrEqual(r.setupRssMB - 1);
    expect(r.levels).toEqual(['p2', 'p3', 'p4', 'p5']);
    // Independent count of the student's trainable elements (conv weights and FPN biases).
    expect(r.trainableParameters).toBe(countResnetFpnParameters(STUDENT));
    expect(r.batch).toBe(2);
    expect(r.size).toBe(SIZE);
    expect(r.executionProvider).toBe('cpu');
    expect(r.artifactsCached).toBe(false);
    expect(Number.isFinite(r.firstLoss) && r.firstLoss > 0).toBe(true);

    const again = await prepareTrainStepBench({ teacher, student, size: SIZE, cacheDir });
    expect(again.cached).toBe(true);
    expect(fs.existsSync(again.teacherFile)).toBe(true);
    expect(fs.existsSync(`${again.teacherFile}.data`)).toBe(true);
    // Raw initial parameters: exactly the trainable elements as float32.
    expect(fs.statSync(again.parametersFile).size).toBe(4 * countResnetFpnParameters(STUDENT));
  });

  it('really trains: after 4 fused in-place AdamW steps the loss on the repeated batch is lower', async () => {
    const r = await benchTrainStep({
      teacher,
      student,
      batch: 1,
      size: SIZE,
      steps: 4,
      warmup: 0,
      cacheDir: path.join(dir, 'cache-lr'),
      optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 0 },
    });
    console.log(`tiny bench loss ${r.firstLoss.toExponential(3)} → ${r.lastLoss.toExponential(3)}`);
    expect(r.lastLoss).toBeLessThan(r.firstLoss);
  });

  it('names the input and the sizes when the graphs are not of the asked size', async () => {
    await expect(
      benchTrainStep({ teacher, student, size: 96, steps: 1, cacheDir: path.join(dir, 'cache-bad') }),
    ).rejects.toThrow(/student input 'images' is \[batch, 3, 64, 64\], not 96×96/);
  });

  it('refuses a teacher that lacks a level the student distils', async () => {
    const narrow = path.join(dir, 'teacher-p2.onnx');
    const model = buildResnetFpn({ ...TEACHER, seed: 1, height: SIZE, width: SIZE });
    model.graph.outputs = model.graph.outputs.filter((o) => o.name === 'p2');
    saveModel(model, narrow);
    await expect(
      benchTrainStep({
        teacher: narrow,
        student,
        size: SIZE,
        steps: 1,
        cacheDir: path.join(dir, 'cache-p2'),
      }),
    ).rejects.toThrow(/teacher has no output 'p3', 'p4', 'p5'/);
  });
});

describe('readProcMemory', () => {
  it('reads VmHWM and VmRSS from /proc on Linux (the peak is never below the current RSS)', () => {
    const m = readProcMemory();
    if (process.platform !== 'linux') {
      console.log('readProcMemory: not Linux, /proc/self/status is absent');
      expect(m).toBeUndefined();
      return;
    }
    expect(m).toBeDefined();
    expect(m!.rssMB).toBeGreaterThan(1);
    expect(m!.hwmMB).toBeGreaterThanOrEqual(m!.rssMB);
    // Within 25% of Node's own RSS figure (both count the same pages, sampled moments apart).
    const node = process.memoryUsage().rss / (1024 * 1024);
    expect(Math.abs(m!.rssMB - node) / node).toBeLessThan(0.25);
  });
});
