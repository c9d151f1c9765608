import {
  appendHeadLoss,
  buildClassificationHead,
  buildFcosHead,
  buildSegmentationHead,
  composeTaskModel,
  FCOS_OUTPUTS,
  HEAD_LOSS_NAMES,
} from '../../src/heads';
import { compareArrays, runOrt } from '../helpers/grad-check';
import { int64Feed, tinyBackbone, toyScenes } from './head-fixtures';

describe('composeTaskModel', () => {
  const backbone = tinyBackbone(1);
  const { images } = toyScenes(3, 2);
  const detectionHead = () =>
    buildFcosHead({ levels: backbone.levels, numClasses: 2, imageHeight: 16, imageWidth: 16, seed: 3 });

  it('gives the same outputs as running the backbone, then the head alone', async () => {
    const head = detectionHead();
    const task = composeTaskModel(backbone.model, head);
    expect(task.graph.inputs.map((i) => i.name)).toEqual(['images']);
    expect(task.graph.outputs.map((o) => o.name)).toEqual(Object.values(FCOS_OUTPUTS));
    const params = task.graph.initializers.map((t) => t.name);
    expect(params.filter((p) => p.startsWith('head.'))).toEqual(
      head.model.graph.initializers.map((t) => t.name).filter((p) => p.startsWith('head.')),
    );
    const direct = await runOrt(task, { images });
    const pyramid = await runOrt(backbone.model, { images });
    const staged = await runOrt(head.model, { p2: pyramid.p2, p3: pyramid.p3 });
    for (const name of Object.values(FCOS_OUTPUTS)) {
      expect(direct[name].dims).toEqual(staged[name].dims);
      expect(compareArrays(direct[name].data as Float32Array, staged[name].data as Float32Array).maxAbs).toBe(
        0,
      );
    }
  });

  it('maps head levels to differently named backbone outputs and can keep the pyramid outputs', async () => {
    const head = buildSegmentationHead({
      levels: backbone.levels.map((l, i) => ({ ...l, name: `level${i}` })),
      numClasses: 2,
      imageHeight: 16,
      imageWidth: 16,
      width: 4,
    });
    const task = composeTaskModel(backbone.model, head, {
      levels: { level0: 'p2', level1: 'p3' },
      keepBackboneOutputs: true,
    });
    expect(task.graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3', 'seg_logits']);
    const out = await runOrt(task, { images });
    expect(out.seg_logits.dims).toEqual([3, 2, 16, 16]);
  });

  it('renames head constants and intermediate tensors whose names the backbone uses', async () => {
    const head = detectionHead();
    const constant = head.model.graph.initializers.find((t) => t.name === 'head/stride')!;
    // A backbone that holds a tensor named like a head constant (its own tensors already share the
    // builder's default names, e.g. Conv_out, with the head's intermediate tensors).
    const crowded = {
      ...backbone.model,
      graph: {
        ...backbone.model.graph,
        initializers: [...backbone.model.graph.initializers, { ...constant, data: Float32Array.of(1000) }],
      },
    };
    const plain = await runOrt(composeTaskModel(backbone.model, head), { images });
    const renamed = await runOrt(composeTaskModel(crowded, head), { images });
    expect(renamed.box_ltrb.data).toEqual(plain.box_ltrb.data);
  });

  it('runs with a backbone at opset 18 (reductions in the head loss take axes as inputs)', async () => {
    const head = buildSegmentationHead({
      levels: backbone.levels,
      numClasses: 2,
      imageHeight: 16,
      imageWidth: 16,
    });
    const at18 = { ...backbone.model, opsetImports: [{ domain: '', version: 18 }] };
    const labels = int64Feed(
      Array.from({ length: 3 * 256 }, (_, i) => i % 3),
      [3, 16, 16],
    );
    const loss = async (m: typeof at18): Promise<number> => {
      const { model } = appendHeadLoss(composeTaskModel(m, head), head);
      expect(model.opsetImports[0].version).toBe(m.opsetImports[0].version);
      const out = await runOrt(model, { images, [HEAD_LOSS_NAMES.labels]: labels });
      return (out[HEAD_LOSS_NAMES.loss].data as Float32Array)[0];
    };
    expect(await loss(at18)).toBeCloseTo(await loss(backbone.model), 6);
  });

  it('refuses a level the backbone lacks and a head parameter name the backbone uses', () => {
    const head = buildFcosHead({ levels: backbone.levels, numClasses: 2, imageHeight: 16, imageWidth: 16 });
    expect(() => composeTaskModel(backbone.model, head, { levels: { p3: 'p4' } })).toThrow(
      /the head reads 'p4', which backbone 'tiny_backbone' does not output \(outputs: 'p2', 'p3'\)/,
    );
    const classify = (output: string) =>
      buildClassificationHead({
        levels: backbone.levels,
        numClasses: 2,
        imageHeight: 16,
        imageWidth: 16,
        output,
      });
    const withOne = composeTaskModel(backbone.model, classify('logits'), { keepBackboneOutputs: true });
    expect(() => composeTaskModel(withOne, classify('logits2'))).toThrow(
      /head parameter 'head.fc.weight' clashes/,
    );
  });
});
