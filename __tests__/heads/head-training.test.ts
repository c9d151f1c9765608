/**
 * Each head, spliced onto a tiny backbone, trained end to end with the engine (generateArtifacts +
 * TrainingSession) on toy 16×16 scenes with one square: the task loss must fall clearly.
 */
import {
  appendHeadLoss,
  assignFcosTargets,
  buildClassificationHead,
  buildFcosHead,
  buildSegmentationHead,
  composeTaskModel,
  decodeFcos,
  cornerBoxIou,
  HEAD_LOSS_NAMES,
  type HeadModel,
} from '../../src/heads';
import { SEG_IGNORE_INDEX } from '../../src/metrics';
import type { HostTensor } from '../../src/runtime';
import { generateArtifacts, TrainingSession } from '../../src/training';
import { runOrt } from '../helpers/grad-check';
import { fcosTargetFeeds, int64Feed, tinyBackbone, toyScenes, type ToyScene } from './head-fixtures';

const N = 8;
const STEPS = 120;
const backbone = tinyBackbone(1);
const { scenes, images } = toyScenes(N, 2);
const size = { imageHeight: 16, imageWidth: 16 };

interface TrainOptions {
  steps?: number;
  /** Train the head alone on these pyramid features (a probe on a frozen backbone) instead of backbone + head. */
  pyramid?: Record<string, HostTensor>;
  /** Parameter patterns to freeze (e.g. the head, to train the backbone under a fixed head). */
  frozen?: string[];
}

/** Trains on the toy batch; returns the loss before and after, the trained model and the parameters. */
async function train(head: HeadModel, targets: Record<string, HostTensor>, options: TrainOptions = {}) {
  const base = options.pyramid ? head.model : composeTaskModel(backbone.model, head);
  const withLoss = appendHeadLoss(base, head);
  const artifacts = generateArtifacts(withLoss.model, {
    loss: withLoss.loss,
    optimizer: { type: 'adamw', lr: 1e-2, weightDecay: 0 },
    untieSharedInitializers: false,
    ...(options.frozen ? { parameters: { frozen: options.frozen } } : {}),
  });
  const session = await TrainingSession.create({ artifacts, maxGradNorm: 5 });
  try {
    const feeds = { ...(options.pyramid ?? { images }), ...targets };
    const loss = async (): Promise<number> =>
      ((await session.evalStep(feeds))[HEAD_LOSS_NAMES.loss].data as Float32Array)[0];
    const before = await loss();
    for (let step = 0; step < (options.steps ?? STEPS); step++) await session.fusedStep(feeds);
    const after = await loss();
    const trained = await session.exportModelForInference(undefined, {
      outputs: Object.values(head.outputs),
    });
    return { before, after, trained, parameters: artifacts.manifest.parameters.map((p) => p.name) };
  } finally {
    await session.release();
  }
}

describe('task heads train with the engine on a toy problem', () => {
  it('classification: cross-entropy falls', async () => {
    const head = buildClassificationHead({ levels: backbone.levels, numClasses: 2, ...size, seed: 3 });
    const r = await train(head, {
      [HEAD_LOSS_NAMES.labels]: int64Feed(
        scenes.map((s) => s.label),
        [N],
      ),
    });
    console.log(`classification loss ${r.before.toFixed(4)} → ${r.after.toFixed(4)} in ${STEPS} steps`);
    expect(r.parameters).toEqual(
      expect.arrayContaining(['body.conv1.weight', 'head.fc.weight', 'head.fc.bias']),
    );
    expect(r.after).toBeLessThan(0.25 * r.before);
  });

  it('segmentation: per-pixel cross-entropy (row 0 ignored) falls', async () => {
    const head = buildSegmentationHead({
      levels: backbone.levels,
      numClasses: 3,
      ...size,
      width: 8,
      seed: 4,
    });
    const mask = (s: ToyScene, p: number): number => {
      const [x, y] = [p % 16, Math.floor(p / 16)];
      if (y === 0) return SEG_IGNORE_INDEX;
      const inside = x >= s.box[0] && x < s.box[2] && y >= s.box[1] && y < s.box[3];
      return inside ? 1 + s.label : 0;
    };
    const labels = scenes.flatMap((s) => Array.from({ length: 256 }, (_, p) => mask(s, p)));
    const r = await train(head, { [HEAD_LOSS_NAMES.labels]: int64Feed(labels, [N, 16, 16]) });
    console.log(`segmentation loss ${r.before.toFixed(4)} → ${r.after.toFixed(4)} in ${STEPS} steps`);
    expect(r.after).toBeLessThan(0.4 * r.before);
  });

  it('detection: the FCOS loss falls and decoding finds the squares', async () => {
    const head = buildFcosHead({ levels: backbone.levels, numClasses: 2, ...size, seed: 5 });
    // On a 16-pixel image the grids are too coarse for disjoint ranges (a 6-pixel square can hold no P2
    // location within 4 px of every side and no P3 location 4 px or more from one), so both levels take
    // every object here.
    const ranges: [number, number][] = [
      [0, Infinity],
      [0, Infinity],
    ];
    const boxes = scenes.map((s) => [{ box: s.box, label: s.label }]);
    const t = assignFcosTargets(boxes, {
      levels: backbone.levels,
      numClasses: 2,
      ...size,
      scaleRanges: ranges,
    });
    const r = await train(head, fcosTargetFeeds(t, N, 2), { steps: 2 * STEPS });
    console.log(`detection loss ${r.before.toFixed(4)} → ${r.after.toFixed(4)} in ${2 * STEPS} steps`);
    const A = t.locations;
    const positives = scenes.map((_, i) => t.positive.slice(i * A, (i + 1) * A).reduce((a, v) => a + v, 0));
    console.log(`positive locations per image: ${positives.join(' ')}`);
    expect(r.after).toBeLessThan(0.5 * r.before);
    // One shared parameter per conv: untying is off, so the levels did not get copies.
    expect(r.parameters.filter((p) => p.startsWith('head.cls_tower.0.'))).toEqual([
      'head.cls_tower.0.weight',
      'head.cls_tower.0.bias',
    ]);
    const out = await runOrt(r.trained, { images });
    const dets = decodeFcos(
      {
        cls: out.cls_logits.data as Float32Array,
        box: out.box_ltrb.data as Float32Array,
        centerness: out.centerness.data as Float32Array,
      },
      { levels: backbone.levels, numClasses: 2, ...size },
    );
    const hits = dets.filter(
      (d, i) => d[0] && d[0].label === scenes[i].label && cornerBoxIou(d[0].box, scenes[i].box) > 0.5,
    );
    console.log(`detection: best box right (class, IoU > 0.5) on ${hits.length}/${N} training images`);
    expect(hits.length).toBeGreaterThanOrEqual(N - 2);
  });

  const classLabels = (): Record<string, HostTensor> => ({
    [HEAD_LOSS_NAMES.labels]: int64Feed(
      scenes.map((s) => s.label),
      [N],
    ),
  });

  it("a probe: the head alone trains on a frozen backbone's pyramid", async () => {
    const head = buildClassificationHead({ levels: backbone.levels, numClasses: 2, ...size, seed: 3 });
    const pyramid = await runOrt(backbone.model, { images });
    const r = await train(head, classLabels(), { pyramid: { p3: pyramid.p3 }, steps: 4 * STEPS });
    console.log(
      `probe (classification) loss ${r.before.toFixed(4)} → ${r.after.toFixed(4)} in ${4 * STEPS} steps`,
    );
    expect(r.parameters).toEqual(['head.fc.weight', 'head.fc.bias']);
    expect(r.after).toBeLessThan(0.7 * r.before);
  });

  it('a frozen head: only the backbone trains under it, and the head stays as it was', async () => {
    const head = buildClassificationHead({ levels: backbone.levels, numClasses: 2, ...size, seed: 3 });
    const r = await train(head, classLabels(), { frozen: ['head.*'] });
    console.log(
      `frozen head (classification) loss ${r.before.toFixed(4)} → ${r.after.toFixed(4)} in ${STEPS} steps`,
    );
    expect(r.parameters.some((p) => p.startsWith('head.'))).toBe(false);
    const weight = (m: typeof r.trained) =>
      m.graph.initializers.find((t) => t.name === 'head.fc.weight')!.data;
    expect(weight(r.trained)).toEqual(weight(head.model));
    expect(r.after).toBeLessThan(0.7 * r.before);
  });
});
