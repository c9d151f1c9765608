import {
  appendHeadLoss,
  assignFcosTargets,
  buildClassificationHead,
  buildFcosHead,
  buildSegmentationHead,
  crossEntropyWithIgnore,
  fcosLocations,
  HEAD_LOSS_NAMES,
  type HeadLevel,
  type HeadModel,
  type LabelledBox,
} from '../../src/heads';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { DataType } from '../../src/onnx/types';
import type { HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { checkGradients, formatReport, runOrt } from '../helpers/grad-check';
import { fcosTargetFeeds, int64Feed, levelFeeds } from './head-fixtures';
import { sigmoid, softplus } from './head-reference';

const LEVELS: HeadLevel[] = [
  { name: 'p3', channels: 2, stride: 4, height: 4, width: 5 },
  { name: 'p4', channels: 2, stride: 8, height: 2, width: 3 },
];
const [H, W] = [16, 20];
const N = 2;

const features = (seed: number): Record<string, HostTensor> => levelFeeds(LEVELS, N, seed);
const fcosHead = (seed: number) =>
  buildFcosHead({ levels: LEVELS, numClasses: 2, imageHeight: H, imageWidth: W, towerConvs: 1, seed });

describe('cross-entropy with an ignore index', () => {
  async function ce(
    logits: number[],
    logitDims: number[],
    labels: number[],
    ignoreIndex?: number,
  ): Promise<number> {
    const b = new GraphBuilder();
    b.input('x', DataType.FLOAT, logitDims);
    b.input('y', DataType.INT64, [logitDims[0], ...logitDims.slice(2)]);
    const { loss } = crossEntropyWithIgnore(b, 'x', 'y', {
      rank: logitDims.length,
      ...(ignoreIndex !== undefined ? { ignoreIndex } : {}),
    });
    b.op('Identity', [loss], {}, { outputs: ['loss'] });
    b.output('loss', DataType.FLOAT, []);
    const out = await runOrt(b.build(), {
      x: { data: Float32Array.from(logits), dims: logitDims },
      y: int64Feed(labels, [logitDims[0], ...logitDims.slice(2)]),
    });
    return (out.loss.data as Float32Array)[0];
  }

  it('averages −log p over the pixels that are not ignored (hand-computed)', async () => {
    // One image, 2 classes, 1×3 pixels: class-0 logits [1, 0, 2], class-1 logits [0, 5, 2]; labels 0, 255, 1.
    // Pixel 0: −log(e¹/(e¹+1)) = log(1 + e⁻¹); pixel 1 is ignored; pixel 2: log 2. Mean over 2 pixels.
    const want = (Math.log(1 + Math.exp(-1)) + Math.log(2)) / 2;
    expect(await ce([1, 0, 2, 0, 5, 2], [1, 2, 1, 3], [0, 255, 1], 255)).toBeCloseTo(want, 6);
    expect(want).toBeCloseTo(0.5032044, 6);
    // Every pixel ignored: 0, not NaN.
    expect(await ce([1, 0, 2, 0, 5, 2], [1, 2, 1, 3], [255, 255, 255], 255)).toBe(0);
  });

  it('is the plain mean cross-entropy for class logits [N, K]', async () => {
    // −log(e²/(e² + 2)) and −log(e⁻¹/(e⁻¹ + e⁰ + e¹)), averaged.
    const want = (Math.log(1 + 2 * Math.exp(-2)) + Math.log(Math.exp(-1) + 1 + Math.E) + 1) / 2;
    expect(await ce([2, 0, 0, 0, 1, -1], [2, 3], [0, 2])).toBeCloseTo(want, 5);
  });
});

describe('FCOS loss', () => {
  const boxes: LabelledBox[][] = [
    [
      { box: [1, 2, 9, 13], label: 1 },
      { box: [3, 3, 19, 15], label: 0 },
    ],
    [{ box: [10, 1, 18, 7], label: 0 }],
  ];

  /** Float64 FCOS loss from the head outputs, with GIoU computed from corner boxes. */
  function fcosReference(
    cls: Float32Array,
    box: Float32Array,
    ctr: Float32Array,
    K: number,
    kind: 'iou' | 'giou',
  ) {
    const t = assignFcosTargets(boxes, { levels: LEVELS, numClasses: K, imageHeight: H, imageWidth: W });
    const pts = fcosLocations(LEVELS);
    const A = t.locations;
    let focal = 0;
    let pos = 0;
    let boxSum = 0;
    let weightSum = 0;
    let bce = 0;
    for (let n = 0; n < N; n++)
      for (let a = 0; a < A; a++) {
        const row = n * A + a;
        for (let k = 0; k < K; k++) {
          const x = cls[row * K + k];
          const y = t.cls[row * K + k];
          const p = sigmoid(x);
          const ce = y === 1 ? -Math.log(p) : -Math.log(1 - p);
          const pt = y === 1 ? p : 1 - p;
          focal += (y === 1 ? 0.25 : 0.75) * (1 - pt) ** 2 * ce;
        }
        if (!t.positive[row]) continue;
        pos += 1;
        const [px, py] = [pts[2 * a], pts[2 * a + 1]];
        const corners = (d: ArrayLike<number>, o: number) => [
          px - d[o],
          py - d[o + 1],
          px + d[o + 2],
          py + d[o + 3],
        ];
        const p = corners(box, row * 4);
        const g = corners(t.box, row * 4);
        const area = (b: number[]) => (b[2] - b[0]) * (b[3] - b[1]);
        const iw = Math.min(p[2], g[2]) - Math.max(p[0], g[0]);
        const ih = Math.min(p[3], g[3]) - Math.max(p[1], g[1]);
        const inter = Math.max(iw, 0) * Math.max(ih, 0);
        const union = area(p) + area(g) - inter;
        const hull =
          (Math.max(p[2], g[2]) - Math.min(p[0], g[0])) * (Math.max(p[3], g[3]) - Math.min(p[1], g[1]));
        const iou = inter / union;
        const l = kind === 'iou' ? -Math.log(iou) : 1 - (iou - (hull - union) / hull);
        boxSum += t.centerness[row] * l;
        weightSum += t.centerness[row];
        const c = t.centerness[row];
        bce += softplus(ctr[row]) - ctr[row] * c;
      }
    const np = Math.max(pos, 1);
    return { cls: focal / np, box: boxSum / weightSum, centerness: bce / np, targets: t };
  }

  it.each(['giou', 'iou'] as const)(
    '%s: each part matches a float64 computation from corner boxes',
    async (kind) => {
      const K = 2;
      const head = fcosHead(7);
      const withLoss = appendHeadLoss(head.model, head, { boxLoss: kind });
      expect(withLoss.loss).toEqual({
        type: 'output',
        output: 'head.loss',
        extraOutputs: ['head.loss_cls', 'head.loss_box', 'head.loss_centerness'],
      });
      const feeds = features(8);
      const plain = await runOrt(head.model, feeds);
      const ref = fcosReference(
        plain.cls_logits.data as Float32Array,
        plain.box_ltrb.data as Float32Array,
        plain.centerness.data as Float32Array,
        K,
        kind,
      );
      const t = ref.targets;
      expect(t.positive.reduce((s, v) => s + v, 0)).toBeGreaterThan(3);
      const out = await runOrt(withLoss.model, {
        ...feeds,
        ...fcosTargetFeeds(t, N, K),
      });
      const v = (name: string): number => (out[name].data as Float32Array)[0];
      expect(v(HEAD_LOSS_NAMES.lossCls)).toBeCloseTo(ref.cls, 5);
      expect(v(HEAD_LOSS_NAMES.lossBox)).toBeCloseTo(ref.box, 5);
      expect(v(HEAD_LOSS_NAMES.lossCenterness)).toBeCloseTo(ref.centerness, 5);
      expect(v(HEAD_LOSS_NAMES.loss)).toBeCloseTo(ref.cls + ref.box + ref.centerness, 5);
      expect(ref.box).toBeGreaterThan(0.1); // the check compares a non-trivial value
    },
  );

  it('gives finite, zero box and centerness losses for a batch without objects', async () => {
    const head = fcosHead(0); // the heads' default seed
    const withLoss = appendHeadLoss(head.model, head);
    const A = 26;
    const zeros = (n: number) => new Float32Array(n);
    const out = await runOrt(withLoss.model, {
      ...features(9),
      [HEAD_LOSS_NAMES.clsTargets]: { data: zeros(N * A * 2), dims: [N, A, 2] },
      [HEAD_LOSS_NAMES.boxTargets]: { data: zeros(N * A * 4), dims: [N, A, 4] },
      [HEAD_LOSS_NAMES.centernessTargets]: { data: zeros(N * A), dims: [N, A] },
      [HEAD_LOSS_NAMES.positive]: { data: zeros(N * A), dims: [N, A] },
    });
    expect((out[HEAD_LOSS_NAMES.lossBox].data as Float32Array)[0]).toBe(0);
    expect((out[HEAD_LOSS_NAMES.lossCenterness].data as Float32Array)[0]).toBe(0);
    // All-background focal loss at the 0.01 prior: Σ 0.75·p²·(−log(1 − p)) over N·A·K entries, p ≈ 0.01.
    const cls = (out[HEAD_LOSS_NAMES.lossCls].data as Float32Array)[0];
    expect(cls).toBeGreaterThan(0);
    expect(cls).toBeLessThan(N * A * 2 * 0.75 * 0.02 ** 2 * 0.03);
  });
});

describe('gradients through head + loss (central finite differences, float64 reference)', () => {
  it('classification head + cross-entropy', async () => {
    const head = buildClassificationHead({
      levels: LEVELS,
      numClasses: 3,
      imageHeight: H,
      imageWidth: W,
      seed: 1,
    });
    const { model } = appendHeadLoss(head.model, head);
    const feeds = { p4: features(2).p4, [HEAD_LOSS_NAMES.labels]: int64Feed([2, 0], [N]) };
    const report = await checkGradients({
      model,
      loss: HEAD_LOSS_NAMES.loss,
      params: ['head.fc.weight', 'head.fc.bias'],
      feeds,
      rtol: 1e-4,
    });
    console.log(`classification: ${formatReport(report)}`);
  });

  it('segmentation head + per-pixel cross-entropy with ignored pixels', async () => {
    const head = buildSegmentationHead({
      levels: LEVELS,
      numClasses: 3,
      imageHeight: 8,
      imageWidth: 10,
      width: 2,
      seed: 3,
    });
    const { model } = appendHeadLoss(head.model, head);
    const rng = new Rng(4);
    const labels = Array.from({ length: N * 8 * 10 }, () => (rng.uniform() < 0.2 ? 255 : rng.int(3)));
    const feeds = { ...features(5), [HEAD_LOSS_NAMES.labels]: int64Feed(labels, [N, 8, 10]) };
    const report = await checkGradients({
      model,
      loss: HEAD_LOSS_NAMES.loss,
      params: [
        'head.scale_heads.0.weight',
        'head.scale_heads.1.weight',
        'head.classifier.weight',
        'head.classifier.bias',
      ],
      feeds,
      rtol: 1e-3,
    });
    console.log(`segmentation: ${formatReport(report)}`);
  });

  it.each(['giou', 'iou'] as const)('detection head + FCOS loss (%s)', async (kind) => {
    const K = 2;
    const head = fcosHead(11);
    const { model } = appendHeadLoss(head.model, head, { boxLoss: kind });
    const t = assignFcosTargets([[{ box: [1, 2, 9, 13], label: 1 }], [{ box: [3, 3, 19, 15], label: 0 }]], {
      levels: LEVELS,
      numClasses: K,
      imageHeight: H,
      imageWidth: W,
    });
    const feeds = {
      ...features(12),
      ...fcosTargetFeeds(t, N, K),
    };
    const report = await checkGradients({
      model,
      loss: HEAD_LOSS_NAMES.loss,
      params: [
        'head.cls_tower.0.weight',
        'head.bbox_tower.0.weight',
        'head.cls_logits.weight',
        'head.cls_logits.bias',
        'head.bbox_pred.weight',
        'head.bbox_pred.bias',
        'head.centerness.weight',
      ],
      feeds,
      rtol: 1e-3,
    });
    console.log(`detection (${kind}): ${formatReport(report)}`);
  });
});

describe('per-image losses', () => {
  /** Slices image n out of a batch feed (every feed has the batch first). */
  function image(feeds: Record<string, HostTensor>, n: number): Record<string, HostTensor> {
    return Object.fromEntries(
      Object.entries(feeds).map(([k, v]) => {
        const per = v.data.length / v.dims[0];
        return [
          k,
          { data: v.data.slice(n * per, (n + 1) * per), dims: [1, ...v.dims.slice(1)] } as HostTensor,
        ];
      }),
    );
  }

  /** The head with one parameter scaled up, so that images get clearly different losses. */
  function amplified(head: HeadModel, param: string): HeadModel {
    const g = head.model.graph;
    const initializers = g.initializers.map((t) =>
      t.name === param ? { ...t, data: (t.data as Float32Array).map((v) => v * 300) } : t,
    );
    return { ...head, model: { ...head.model, graph: { ...g, initializers } } };
  }

  async function expectPerImage(head: HeadModel, feeds: Record<string, HostTensor>) {
    const model = appendHeadLoss(head.model, head, { perSample: true }).model;
    const batch = await runOrt(model, feeds);
    const per = Array.from(batch[HEAD_LOSS_NAMES.perSample].data as Float32Array);
    expect(per).toHaveLength(N);
    for (let n = 0; n < N; n++) {
      const alone = await runOrt(model, image(feeds, n));
      expect(per[n]).toBeCloseTo((alone[HEAD_LOSS_NAMES.loss].data as Float32Array)[0], 5);
    }
    expect(Math.abs(per[0] - per[1])).toBeGreaterThan(1e-2); // the images differ
  }

  it("classification, segmentation and detection: image n's entry is the loss of image n alone", async () => {
    const cls = buildClassificationHead({
      levels: LEVELS,
      numClasses: 3,
      imageHeight: H,
      imageWidth: W,
      seed: 1,
    });
    await expectPerImage(amplified(cls, 'head.fc.weight'), {
      p4: features(2).p4,
      [HEAD_LOSS_NAMES.labels]: int64Feed([2, 0], [N]),
    });
    const seg = buildSegmentationHead({
      levels: LEVELS,
      numClasses: 3,
      imageHeight: 4,
      imageWidth: 5,
      width: 2,
    });
    // Image 1 has every pixel but one ignored: its mean is over that one pixel.
    const labels = [
      0,
      1,
      2,
      1,
      0,
      2,
      2,
      1,
      0,
      0,
      1,
      1,
      2,
      0,
      1,
      2,
      0,
      0,
      1,
      2,
      ...new Array(19).fill(255),
      1,
    ];
    await expectPerImage(amplified(seg, 'head.classifier.weight'), {
      ...features(3),
      [HEAD_LOSS_NAMES.labels]: int64Feed(labels, [N, 4, 5]),
    });
    const det = fcosHead(4);
    const t = assignFcosTargets([[{ box: [1, 2, 9, 13], label: 1 }], []], {
      levels: LEVELS,
      numClasses: 2,
      imageHeight: H,
      imageWidth: W,
    });
    await expectPerImage(det, {
      ...features(5),
      ...fcosTargetFeeds(t, N, 2),
    });
  });
});
