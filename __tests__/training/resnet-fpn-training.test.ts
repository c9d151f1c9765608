import { buildResnetFpn } from '../../src/models/resnet-fpn';
import { createSession, type HostTensor } from '../../src/runtime';
import { generateArtifacts } from '../../src/training/artifacts';
import { TrainingSession } from '../../src/training/training-session';
import { Rng } from '../../src/util/rng';

describe('training a torchvision-style ResNet-18-FPN student toward a ResNet-50-FPN teacher', () => {
  const levels = ['p2', 'p3', 'p4', 'p5'];
  const common = { widthMult: 0.125, fpnChannels: 32, height: 64, width: 64 } as const;
  // fpnBias 'zero' + tieIdentical reproduces torch.onnx.export's trap: all FPN biases read one initializer.
  const student = buildResnetFpn({
    arch: 'resnet18-fpn',
    seed: 2,
    fpnBias: 'zero',
    tieIdentical: true,
    ...common,
  });
  const feeds: Record<string, HostTensor> = {};

  beforeAll(async () => {
    const teacher = await createSession(buildResnetFpn({ arch: 'resnet50-fpn', seed: 1, ...common }));
    const rng = new Rng(7);
    feeds.images = {
      data: Float32Array.from({ length: 2 * 3 * 64 * 64 }, () => rng.uniform(-1, 1)),
      dims: [2, 3, 64, 64],
    };
    const t = await teacher.run({ images: feeds.images });
    await teacher.release();
    feeds['distill.mask'] = { data: Float32Array.of(1, 1, 0, 1, 1, 0, 1, 1), dims: [2, 4] };
    feeds['distill.weights'] = { data: new Float32Array(4).fill(0.25), dims: [4] };
    for (const l of levels) feeds[`teacher.${l}`] = t[l];
  });

  // SGD is linear in the gradient, so the bound measures the graphs themselves. Adam divides by √v,
  // which magnifies float32 rounding in near-zero gradient entries (the two graphs are optimized
  // differently by onnxruntime): its bound is relative to the distance the parameters travel (4·lr).
  it.each([
    ['SGD momentum', { type: 'sgd', lr: 1e-2, momentum: 0.9 } as const, 1e-6],
    ['AdamW', { type: 'adamw', lr: 1e-3 } as const, 1e-3 * 4 * 1e-3],
  ])(
    '%s: unties the tied FPN biases, lowers the loss, fused == separate steps',
    async (name, optimizer, bound) => {
      const artifacts = generateArtifacts(student, {
        loss: { type: 'distillation', levels: levels.map((l) => ({ student: l })) },
        optimizer,
      });
      const fpnBiases = artifacts.manifest.parameters
        .map((p) => p.name)
        .filter((n) => /^fpn\..*\.bias$/.test(n));
      expect(fpnBiases).toHaveLength(8);
      expect(Object.keys(artifacts.manifest.untied).length).toBeGreaterThan(0);

      const separate = await TrainingSession.create({ artifacts, maxGradNorm: 10 });
      const fused = await TrainingSession.create({ artifacts, maxGradNorm: 10 });
      const losses: number[] = [];
      for (let step = 0; step < 4; step++) {
        await separate.lazyResetGrad();
        const out = await separate.trainStep(feeds);
        await separate.optimizerStep();
        await fused.fusedStep(feeds);
        losses.push((out['distill.loss'].data as Float32Array)[0]);
      }
      const after = ((await separate.evalStep(feeds))['distill.loss'].data as Float32Array)[0];
      const a = await separate.getParameters();
      const b = await fused.getParameters();
      let diff = 0;
      for (const k of Object.keys(a)) {
        const x = a[k].data as Float32Array;
        const y = b[k].data as Float32Array;
        for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i] - y[i]));
      }
      console.log(
        `${name}: loss ${[...losses, after].map((l) => l.toFixed(2)).join(' → ')}; fused vs separate max |Δparam| ${diff.toExponential(2)}`,
      );
      expect(after).toBeLessThan(losses[0]);
      expect(diff).toBeLessThan(bound);
      // Untied biases get their own gradients: equal (zero) at the start, different now.
      expect(Array.from(a[fpnBiases[0]].data as Float32Array)).not.toEqual(
        Array.from(a[fpnBiases[fpnBiases.length - 1]].data as Float32Array),
      );
      await separate.release();
      await fused.release();
    },
  );
});
