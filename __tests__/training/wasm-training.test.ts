import { createSession, type HostTensor } from '../../src/runtime';
import { generateArtifacts, type TrainingArtifacts } from '../../src/training/artifacts';
import { TrainingSession } from '../../src/training/training-session';
import { imageBatch, tinyPyramid } from './tiny-pyramid';

/** Largest per-tensor relative L2 difference ‖a − b‖ / ‖b‖. */
function maxRelativeL2(a: Record<string, HostTensor>, b: Record<string, HostTensor>): number {
  let worst = 0;
  for (const k of Object.keys(b)) {
    const x = a[k].data as Float32Array;
    const y = b[k].data as Float32Array;
    let num = 0;
    let den = 0;
    for (let i = 0; i < y.length; i++) {
      num += (x[i] - y[i]) ** 2;
      den += y[i] ** 2;
    }
    worst = Math.max(worst, Math.sqrt(num / Math.max(den, 1e-30)));
  }
  return worst;
}

describe('the same artifacts on onnxruntime-web (wasm)', () => {
  let artifacts: TrainingArtifacts;
  let feeds: Record<string, HostTensor>;

  beforeAll(async () => {
    const teacher = await createSession(tinyPyramid({ seed: 1, width: 8, name: 'teacher' }));
    const x = imageBatch(300, 2);
    const t = await teacher.run({ x });
    await teacher.release();
    feeds = {
      x,
      'teacher.p2': t.p2,
      'teacher.p3': t.p3,
      'distill.mask': { data: Float32Array.of(1, 1, 0, 1), dims: [2, 2] },
      'distill.weights': { data: Float32Array.of(0.4, 0.6), dims: [2] },
    };
    artifacts = generateArtifacts(tinyPyramid({ seed: 2, width: 8 }), {
      loss: { type: 'distillation', levels: [{ student: 'p2' }, { student: 'p3' }] },
      optimizer: { type: 'adamw', lr: 1e-2 },
    });
  });

  it('one trainStep + optimizerStep, and one fused step, give the parameters of onnxruntime-node within 1e-5', async () => {
    const node = await TrainingSession.create({ artifacts, maxGradNorm: 1 });
    const web = await TrainingSession.create({ artifacts, runtime: 'web', maxGradNorm: 1 });
    const ln = await node.trainStep(feeds);
    const lw = await web.trainStep(feeds);
    const lossN = (ln['distill.loss'].data as Float32Array)[0];
    const lossW = (lw['distill.loss'].data as Float32Array)[0];
    const gradErr = maxRelativeL2(await web.getGradients(), await node.getGradients());
    await node.optimizerStep();
    await web.optimizerStep();
    const stepErr = maxRelativeL2(await web.getParameters(), await node.getParameters());
    const fn = await node.fusedStep(feeds);
    const fw = await web.fusedStep(feeds);
    const fusedErr = maxRelativeL2(await web.getParameters(), await node.getParameters());
    console.log(
      `wasm vs node: loss ${lossW} vs ${lossN}; gradients rel. L2 ${gradErr.toExponential(2)}; ` +
        `parameters after optimizerStep ${stepErr.toExponential(2)}, after a further fused step ${fusedErr.toExponential(2)}`,
    );
    expect(Math.abs(lossW - lossN) / lossN).toBeLessThan(1e-5);
    expect(gradErr).toBeLessThan(1e-4);
    expect(stepErr).toBeLessThan(1e-5);
    expect(fusedErr).toBeLessThan(1e-5);
    expect(Math.abs(fw.gradNorm - fn.gradNorm) / fn.gradNorm).toBeLessThan(1e-4);
    await node.release();
    await web.release();
  });
});
