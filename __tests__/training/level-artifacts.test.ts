/**
 * A pruned student's gradient graph against the full graph's: for level subsets (every one with
 * RLPKD_SLOW=1), the gradients of the selected levels' distillation loss from generateLevelArtifacts
 * equal those of the full artifacts fed a mask that zeroes the other levels (within 1e-6 of each
 * tensor's largest gradient; observed: bit-identical, as masked terms add exact zeros), and parameters
 * only the other levels reach get exactly zero in the full graph.
 */
import * as path from 'node:path';
import { loadModel, type OnnxModel } from '../../src/onnx';
import { createSession, type HostTensor } from '../../src/runtime';
import { artifactModel, generateArtifacts, type TrainingArtifacts } from '../../src/training/artifacts';
import { generateLevelArtifacts } from '../../src/training/level-artifacts';
import { readCheckpoint } from '../../src/training/artifact-store';
import { Rng } from '../../src/util/rng';
import { tinyTorchFpn } from '../helpers/tiny-torch-fpn';

const N = 2;

function randomTensor(rng: Rng, dims: number[]): HostTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return { data: Float32Array.from({ length: n }, () => rng.uniform(-1, 1)), dims };
}

/** Parameter name → gradient of one training-graph run. */
async function gradients(
  artifacts: TrainingArtifacts,
  feeds: Record<string, HostTensor>,
): Promise<Map<string, Float32Array>> {
  const session = await createSession(artifactModel(artifacts, 'training'), { intraOpNumThreads: 1 });
  try {
    const wanted = Object.fromEntries(Object.entries(feeds).filter(([k]) => session.inputNames.includes(k)));
    const out = await session.run({ ...wanted, ...readCheckpoint(artifacts).parameters });
    const m = artifacts.manifest;
    return new Map(m.parameters.map((p) => [p.name, out[m.gradients[p.name]].data as Float32Array]));
  } finally {
    await session.release();
  }
}

/** Every non-empty subset of `n` levels, as bit masks. */
const allSubsets = (n: number): number[] => Array.from({ length: 2 ** n - 1 }, (_, i) => i + 1);
/** Each level alone, two pairs, a triple and all four (every subset with RLPKD_SLOW=1: ~4× longer). */
const someSubsets = (n: number): number[] =>
  process.env.RLPKD_SLOW === '1'
    ? allSubsets(n)
    : [0b0001, 0b0010, 0b0100, 0b1000, 0b0101, 0b1010, 0b0111, 0b1111];

const cases: { name: string; model: () => OnnxModel; size: number; subsets: (n: number) => number[] }[] = [
  {
    name: 'demo student',
    model: () => loadModel(path.resolve(__dirname, '..', '..', 'onnx-graphs', 'student.onnx')),
    size: 96,
    subsets: someSubsets,
  },
  {
    name: 'tiny resnet18-fpn with p6',
    model: () => tinyTorchFpn({ fpnBias: 'random' }),
    size: 64,
    // Where P6 = MaxPool(P5) matters: p5, p6, both, p2 + p6, and all five.
    subsets: () => [0b01000, 0b10000, 0b11000, 0b10001, 0b11111],
  },
];

describe.each(cases)('generateLevelArtifacts: $name', ({ model: make, size, subsets }) => {
  const model = make();
  const levels = model.graph.outputs.map((o) => o.name);
  const options = {
    loss: { type: 'distillation' as const, levels: levels.map((student) => ({ student })) },
    optimizer: { type: 'sgd' as const, lr: 0.1 },
    fused: false,
  };
  const full = generateArtifacts(model, options);
  const rng = new Rng(11);
  const data: Record<string, HostTensor> = { images: randomTensor(rng, [N, 3, size, size]) };
  for (const v of full.manifest.inputs) {
    if (v.name.startsWith('teacher.'))
      data[v.name] = randomTensor(
        rng,
        v.shape!.map((d) => (typeof d === 'number' ? d : N)),
      );
  }
  const weights = levels.map(() => rng.uniform(0.5, 2));

  test('pruned gradients = full gradients with the other levels masked out', async () => {
    let worst = 0;
    for (const m of subsets(levels.length)) {
      const on = levels.map((_, i) => ((m >> i) & 1) === 1);
      const selected = levels.filter((_, i) => on[i]);
      const fullGrads = await gradients(full, {
        ...data,
        'distill.mask': {
          data: Float32Array.from({ length: N * levels.length }, (_, k) => (on[k % levels.length] ? 1 : 0)),
          dims: [N, levels.length],
        },
        'distill.weights': { data: Float32Array.from(weights), dims: [levels.length] },
      });
      const pruned = generateLevelArtifacts(model, selected, options);
      expect(pruned.manifest.inputs.filter((v) => v.name.startsWith('teacher.')).map((v) => v.name)).toEqual(
        selected.map((l) => `teacher.${l}`),
      );
      const prunedGrads = await gradients(pruned, {
        ...data,
        'distill.mask': { data: new Float32Array(N * selected.length).fill(1), dims: [N, selected.length] },
        'distill.weights': {
          data: Float32Array.from(weights.filter((_, i) => on[i])),
          dims: [selected.length],
        },
      });
      expect(prunedGrads.size).toBeGreaterThan(0);
      for (const [name, g] of fullGrads) {
        const p = prunedGrads.get(name);
        if (!p) {
          // Only unselected levels reach it: masked to exactly zero.
          if (g.some((v) => v !== 0))
            throw new Error(`${selected.join('+')}: ${name} not pruned yet non-zero`);
          continue;
        }
        let scale = 0;
        let diff = 0;
        for (let i = 0; i < g.length; i++) {
          scale = Math.max(scale, Math.abs(g[i]));
          diff = Math.max(diff, Math.abs(g[i] - p[i]));
        }
        if (scale === 0) throw new Error(`${selected.join('+')}: ${name} has an all-zero gradient`);
        worst = Math.max(worst, diff / scale);
      }
      for (const name of prunedGrads.keys()) expect(fullGrads.has(name)).toBe(true);
    }
    console.log(
      `level artifacts: worst gradient difference ${worst.toExponential(2)} of the tensor's max |g|`,
    );
    expect(worst).toBeLessThan(1e-6);
  });
});

test('a loss on levels the selection drops is one clear error', () => {
  const model = cases[1].model();
  expect(() =>
    generateLevelArtifacts(model, ['p2'], {
      loss: { type: 'distillation', levels: [{ student: 'p5' }] },
      optimizer: { type: 'sgd', lr: 0.1 },
    }),
  ).toThrow(/no distillation level .* is selected/);
  expect(() =>
    generateLevelArtifacts(model, ['p2'], {
      loss: { type: 'output', output: 'p3' },
      optimizer: { type: 'sgd', lr: 0.1 },
    }),
  ).toThrow(/loss output 'p3' is not among the selected levels/);
});
