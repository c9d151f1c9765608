import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSession, type HostTensor } from '../../src/runtime';
import { generateArtifacts, type TrainingArtifacts } from '../../src/training/artifacts';
import { TrainingSession } from '../../src/training/training-session';
import { WorkerTrainingSession } from '../../src/training/worker-session';
import { filled, imageBatch, tinyPyramid } from './tiny-pyramid';

describe('WorkerTrainingSession (worker_threads mode)', () => {
  let dir: string;
  let artifacts: TrainingArtifacts;
  const batches: Record<string, HostTensor>[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-worker-'));
    const teacher = await createSession(tinyPyramid({ seed: 1, width: 8, name: 'teacher' }));
    for (let k = 0; k < 2; k++) {
      const x = imageBatch(200 + k, 2);
      const t = await teacher.run({ x });
      batches.push({
        x,
        'teacher.p2': t.p2,
        'teacher.p3': t.p3,
        'distill.mask': filled([2, 2], 1),
        'distill.weights': { data: Float32Array.of(0.5, 0.5), dims: [2] },
      });
    }
    await teacher.release();
    artifacts = generateArtifacts(tinyPyramid({ seed: 2, width: 6 }), {
      loss: { type: 'distillation', levels: [{ student: 'p2' }, { student: 'p3' }] },
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
      outDir: path.join(dir, 'artifacts'),
    });
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('gives the same parameters as the in-thread session', async () => {
    const options = { maxGradNorm: 1, lrSchedule: { type: 'step', stepSize: 2, gamma: 0.5 } as const };
    const local = await TrainingSession.create({ artifacts, ...options });
    const worker = await WorkerTrainingSession.create({ artifacts: path.join(dir, 'artifacts'), ...options });
    for (let step = 0; step < 3; step++) {
      await local.lazyResetGrad();
      await worker.lazyResetGrad();
      const a = await local.trainStep(batches[step % 2]);
      const b = await worker.trainStep(batches[step % 2]);
      expect(Array.from(b['distill.loss'].data as Float32Array)).toEqual(
        Array.from(a['distill.loss'].data as Float32Array),
      );
      const ra = await local.optimizerStep();
      const rb = await worker.optimizerStep();
      expect(rb).toEqual(ra);
    }
    const fa = await local.fusedStep(batches[0]);
    const fb = await worker.fusedStep(batches[0]);
    expect(fb.step).toBe(4);
    expect(worker.step).toBe(4);
    expect(fb.gradNorm).toBe(fa.gradNorm);
    const pa = await local.getParameters();
    const pb = await worker.getParameters();
    expect(Object.keys(pb)).toEqual(Object.keys(pa));
    for (const k of Object.keys(pa)) {
      expect(pb[k].dims).toEqual(pa[k].dims);
      expect(Array.from(pb[k].data as Float32Array)).toEqual(Array.from(pa[k].data as Float32Array));
    }
    // Inputs are copied unless transferInputs is set: the caller's arrays stay usable.
    expect(batches[0].x.data.length).toBe(2 * 3 * 16 * 16);
    const file = path.join(dir, 'w.onnx');
    await worker.saveCheckpoint(file);
    await local.loadCheckpoint(file);
    expect(local.step).toBe(4);
    await local.release();
    await worker.release();
  });

  it('passes errors from the worker through with their hints', async () => {
    const worker = await WorkerTrainingSession.create({ artifacts });
    await expect(worker.optimizerStep()).rejects.toThrow(/no gradients accumulated/);
    await expect(worker.trainStep({})).rejects.toMatchObject({ hint: expect.stringContaining("'x'") });
    await worker.release();
    await expect(worker.trainStep(batches[0])).rejects.toThrow(/released/);
  });
});
