import {
  buildClassificationHead,
  buildFcosHead,
  buildSegmentationHead,
  FCOS_OUTPUTS,
  type HeadLevel,
} from '../../src/heads';
import type { HostTensor } from '../../src/runtime';
import { compareArrays, runOrt } from '../helpers/grad-check';
import { levelFeeds } from './head-fixtures';
import { add, bilinear, conv2d, map, param, poolLinear, relu, rows, type T64 } from './head-reference';

const N = 2;
// Odd ratios on purpose (5→3 columns): the heads resize to sizes, not by scale factors.
const LEVELS: HeadLevel[] = [
  { name: 'p3', channels: 3, stride: 4, height: 4, width: 5 },
  { name: 'p4', channels: 3, stride: 8, height: 2, width: 3 },
];
const [IMAGE_H, IMAGE_W] = [16, 20];

function features(seed: number): { feeds: Record<string, HostTensor>; refs: Record<string, T64> } {
  const feeds = levelFeeds(LEVELS, N, seed);
  const refs = Object.fromEntries(
    Object.entries(feeds).map(([k, v]) => [
      k,
      { dims: [...v.dims], data: Float64Array.from(v.data as Float32Array) },
    ]),
  );
  return { feeds, refs };
}

function expectClose(got: HostTensor, want: T64): void {
  expect(got.dims).toEqual(want.dims);
  const c = compareArrays(Array.from(got.data as Float32Array), want.data);
  expect(c.relL2).toBeLessThan(1e-5);
}

describe('task heads: forward pass against a float64 reference', () => {
  it('classification: global average pool of the coarsest level, then linear', async () => {
    const head = buildClassificationHead({
      levels: LEVELS,
      numClasses: 4,
      imageHeight: IMAGE_H,
      imageWidth: IMAGE_W,
      seed: 1,
    });
    expect(head.model.graph.inputs.map((i) => i.name)).toEqual(['p4']);
    const { feeds, refs } = features(2);
    const out = await runOrt(head.model, { p4: feeds.p4 });
    const w = param(head.model, 'head.fc.weight');
    expectClose(out.logits, poolLinear(refs.p4, w, param(head.model, 'head.fc.bias')));
  });

  it('segmentation: per-level conv + ReLU, upsample to the finest, sum, 1×1 classifier, upsample to the image', async () => {
    const head = buildSegmentationHead({
      levels: LEVELS,
      numClasses: 3,
      imageHeight: IMAGE_H,
      imageWidth: IMAGE_W,
      width: 4,
      seed: 3,
    });
    const { feeds, refs } = features(4);
    const out = await runOrt(head.model, feeds);
    const m = head.model;
    const branch = (i: number): T64 =>
      relu(
        conv2d(
          refs[LEVELS[i].name],
          param(m, `head.scale_heads.${i}.weight`),
          param(m, `head.scale_heads.${i}.bias`),
        ),
      );
    const sum = add(branch(0), bilinear(branch(1), 4, 5));
    const logits = conv2d(sum, param(m, 'head.classifier.weight'), param(m, 'head.classifier.bias'));
    expectClose(out.seg_logits, bilinear(logits, IMAGE_H, IMAGE_W));
  });

  it('detection: shared towers, stride-scaled exp distances, outputs concatenated over levels', async () => {
    const head = buildFcosHead({
      levels: LEVELS,
      numClasses: 2,
      imageHeight: IMAGE_H,
      imageWidth: IMAGE_W,
      seed: 5,
    });
    // One parameter per conv, shared by both levels.
    expect(head.model.graph.initializers.map((t) => t.name).filter((n) => n.endsWith('.weight'))).toEqual([
      'head.cls_tower.0.weight',
      'head.cls_tower.1.weight',
      'head.bbox_tower.0.weight',
      'head.bbox_tower.1.weight',
      'head.cls_logits.weight',
      'head.bbox_pred.weight',
      'head.centerness.weight',
    ]);
    const { feeds, refs } = features(6);
    const out = await runOrt(head.model, feeds);
    const m = head.model;
    const layer = (x: T64, name: string): T64 =>
      conv2d(x, param(m, `${name}.weight`), param(m, `${name}.bias`));
    const tower = (x: T64, name: string): T64 =>
      relu(layer(relu(layer(x, `head.${name}.0`)), `head.${name}.1`));
    const cls: number[] = [];
    const box: number[] = [];
    const ctr: number[] = [];
    for (let n = 0; n < N; n++) {
      LEVELS.forEach((l) => {
        const x = refs[l.name];
        const one: T64 = {
          dims: [1, ...x.dims.slice(1)],
          data: x.data.slice(n * (x.data.length / N), (n + 1) * (x.data.length / N)),
        };
        const c = tower(one, 'cls_tower');
        const r = tower(one, 'bbox_tower');
        cls.push(...rows(layer(c, 'head.cls_logits')).data);
        box.push(...rows(map(layer(r, 'head.bbox_pred'), (v) => Math.exp(v) * l.stride)).data);
        ctr.push(...layer(r, 'head.centerness').data);
      });
    }
    const A = 4 * 5 + 2 * 3;
    expectClose(out[FCOS_OUTPUTS.cls], { dims: [N, A, 2], data: Float64Array.from(cls) });
    expectClose(out[FCOS_OUTPUTS.box], { dims: [N, A, 4], data: Float64Array.from(box) });
    expectClose(out[FCOS_OUTPUTS.centerness], { dims: [N, A], data: Float64Array.from(ctr) });
  });

  it('refuses levels out of order, duplicate names and mixed widths with a hint', () => {
    const base = { numClasses: 2, imageHeight: 16, imageWidth: 16 };
    expect(() => buildSegmentationHead({ ...base, levels: [LEVELS[1], LEVELS[0]] })).toThrow(/finest first/);
    expect(() => buildSegmentationHead({ ...base, levels: [LEVELS[0], LEVELS[0]] })).toThrow(/listed twice/);
    expect(() => buildFcosHead({ ...base, levels: [LEVELS[0], { ...LEVELS[1], channels: 5 }] })).toThrow(
      /'p4' has 5 channels/,
    );
    expect(() => buildClassificationHead({ ...base, levels: [], numClasses: 2 })).toThrow(
      /no pyramid levels/,
    );
    expect(() => buildClassificationHead({ ...base, levels: LEVELS, numClasses: 0 })).toThrow(/numClasses/);
  });
});
