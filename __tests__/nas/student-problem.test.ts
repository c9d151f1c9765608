/**
 * The unrolled DARTS gradient on a tiny real student (the engine's gradient graphs): first order it is
 * zero, unrolled it is not, and the engine's finite-difference Hessian-vector product matches the same
 * quantity computed by the float64 reference interpreter on the distillation graph.
 */
import { DISTILL_IO, buildDistillationModel } from '../../src/distill/distill-model';
import { createStudentDistiller } from '../../src/distill/create-distiller';
import { prepareDistillation } from '../../src/distill/setup';
import type { TaughtBatch } from '../../src/distill/student-distiller';
import { StudentGatedProblem } from '../../src/nas/student-problem';
import { architectureGradientByDifferences, unrolledWeightGradient } from '../../src/nas/unrolled-gradient';
import { featuresYardstick } from '../../src/nas/yardstick';
import { silentLog } from '../../src/logging/logger';
import type { HostTensor } from '../../src/runtime';
import { runReference, type RefTensor } from '../helpers/reference';
import { DataType } from '../../src/onnx/types';
import { Rng } from '../../src/util/rng';
import { tempDir, tinyConfig, writeTinyModels } from '../distill/run-fixtures';

// The tiny project's run setup (32×32 ResNet-FPN graphs, synthetic images), one training and one validation batch.
async function setup() {
  const dir = tempDir('nas-problem');
  const config = tinyConfig(dir, writeTinyModels(dir), { data: { num_workers: 1 } });
  const s = await prepareDistillation(config, { log: silentLog });
  const distiller = await createStudentDistiller(s, silentLog);
  const first = async (epoch: number): Promise<TaughtBatch> => {
    for await (const b of s.trainLoader.epoch(epoch)) return distiller.prepare({ images: b.images });
    throw new Error('no batch');
  };
  const train = await first(0);
  const val = await first(1);
  const problem = StudentGatedProblem.create(distiller, [train], featuresYardstick(distiller, [val]));
  return { distiller, student: s.student, pairs: s.pairs, problem, train, val };
}

describe('unrolled architecture gradient on a tiny student', () => {
  jest.setTimeout(120000);

  it('first order zero, unrolled not; the FD Hessian-vector product matches the float64 reference', async () => {
    const { distiller, student, pairs, problem, train } = await setup();
    try {
      const L = pairs.length;
      const gates = [0.5, 0.5, 0.5, 0.5];
      const xi = 0.05;
      const u = await unrolledWeightGradient(problem, gates, { xi });
      expect(u.gradient.every((g) => Number.isFinite(g))).toBe(true);
      expect(u.gradient.some((g) => Math.abs(g) > 0)).toBe(true);

      // DARTS's first-order gradient: the gates move the training loss only, so L_val(w) is the same
      // number for any gates, bit for bit.
      const firstOrder = await architectureGradientByDifferences(problem, gates, { xi: 0, delta: 0.25 });
      expect(firstOrder).toEqual([0, 0, 0, 0]);

      // The same v and ε the unrolled gradient used.
      const w = await problem.getParameters();
      const g = await problem.trainGradient(gates);
      await problem.setParameters(w.map((x, i) => x - xi * g.gradient[i]));
      const v = (await problem.valGradient()).gradient;
      await problem.setParameters(w);
      const vNorm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
      expect(u.epsilon).toBeCloseTo(0.01 / vNorm, 12);

      // Float64 reference: the distillation graph in the reference interpreter at w ± h·v.
      const model = buildDistillationModel(student, pairs, { loss: 'mse', imageInput: 'images' }).model;
      const manifest = distiller.session.manifest.parameters;
      const N = train.images.dims[0];
      const levelLosses = (h: number, d: Float32Array = v): number[] => {
        const feeds: Record<string, HostTensor | RefTensor> = {
          images: train.images,
          ...(train as TaughtBatch & { teacher: Record<string, HostTensor> }).teacher,
          [DISTILL_IO.mask]: { data: new Float32Array(N * L).fill(1), dims: [N, L] },
          [DISTILL_IO.weights]: { data: new Float32Array(L).fill(1), dims: [L] },
        };
        let o = 0;
        for (const p of manifest) {
          const size = p.dims.reduce((a, b) => a * b, 1);
          const data = new Float64Array(size);
          for (let i = 0; i < size; i++) data[i] = w[o + i] + h * d[o + i];
          feeds[p.name] = { dataType: DataType.FLOAT, dims: [...p.dims], data };
          o += size;
        }
        const out = runReference(model, feeds);
        return pairs.map((p) => out.get(DISTILL_IO.levelLoss(p.name))!.data[0] / L);
      };
      const central = (h: number, d: Float32Array = v) => {
        const plus = levelLosses(h, d);
        const minus = levelLosses(-h, d);
        return plus.map((x, l) => (x - minus[l]) / (2 * h));
      };
      const sameStep = central(u.epsilon);
      const derivative = central(u.epsilon / 1000);
      const scale = Math.max(...derivative.map(Math.abs));
      // DARTS's ε = 0.01/‖v‖ is a finite step: on this small student its central difference is a few
      // percent from the directional derivative ∇L_l·v (curvature, ReLU and max-pool kinks); a 10×
      // smaller ε comes within 2%.
      const smaller = await unrolledWeightGradient(problem, gates, { xi, epsilonScale: 1e-3 });
      for (let l = 0; l < L; l++) {
        // The engine's float32 central difference vs the float64 one at the same ε.
        expect(Math.abs(u.hvp[l] - sameStep[l])).toBeLessThan(2e-3 * scale);
        expect(Math.abs(smaller.hvp[l] - derivative[l])).toBeLessThan(2e-2 * scale);
        expect(u.gradient[l]).toBeCloseTo(-xi * u.hvp[l], 12);
      }

      // The training gradient the virtual step takes (StudentDistiller.gradient) along a random direction
      // d: ⟨∇_w L_train, d⟩ against the float64 directional derivative of Σ_l c_l·L_l/L.
      const rng = new Rng(5);
      const d = Float32Array.from(w, () => rng.normal());
      const dNorm = Math.sqrt(d.reduce((a, x) => a + x * x, 0));
      const along = central(1e-4 / dNorm, d).reduce((a, x, l) => a + gates[l] * x, 0);
      const dot = g.gradient.reduce((a, x, i) => a + x * d[i], 0);
      expect(Math.abs(dot - along)).toBeLessThan(1e-3 * Math.abs(along));
    } finally {
      await distiller.release();
    }
  });

  it("a trained student's proxy trainings continue its optimizer moments when asked; reset returns to them", async () => {
    const { distiller, train, val } = await setup();
    try {
      const mask = new Float32Array(train.images.dims[0] * 4).fill(1);
      const weights = new Float32Array(4).fill(0.25);
      for (let i = 0; i < 3; i++) await distiller.step(train, mask, weights);
      const kept = distiller.checkpointState();
      const problem = StudentGatedProblem.create(distiller, [train], featuresYardstick(distiller, [val]), {
        freshOptimizer: false,
      });
      expect(distiller.session.step).toBe(3);
      await distiller.step(train, mask, weights);
      await problem.reset();
      const back = distiller.checkpointState();
      expect(back.optimizer.step).toBe(3);
      for (const k of Object.keys(kept.optimizer.state))
        expect(Array.from(back.optimizer.state[k].data as Float32Array)).toEqual(
          Array.from(kept.optimizer.state[k].data as Float32Array),
        );
      // The default starts every proxy training from a fresh optimizer.
      StudentGatedProblem.create(distiller, [train], featuresYardstick(distiller, [val]));
      expect(distiller.session.step).toBe(0);
    } finally {
      await distiller.release();
    }
  });
});
