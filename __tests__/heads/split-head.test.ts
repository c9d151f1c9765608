/**
 * splitHeadByLevel: a head's per-level parts and their combination (concatenated rows, or the sum merge)
 * reproduce the composed task model (composeTaskModel) within 1e-5 for the three heads; a skipped level
 * of the sum merge is exactly absent; heads that mix levels otherwise are refused.
 */
import {
  buildClassificationHead,
  buildFcosHead,
  buildSegmentationHead,
  composeTaskModel,
  headLevelsOf,
} from '../../src/heads';
import type { HeadModel } from '../../src/heads';
import { splitHeadByLevel, type HeadSplit } from '../../src/heads/split-head';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { DataType } from '../../src/onnx/types';
import type { HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { tinyFpn } from '../distill/fixtures';
import { runOrt } from '../helpers/grad-check';

const SIZE = { height: 32, width: 32 };
const backbone = tinyFpn();
const levels = headLevelsOf(backbone, SIZE);
const images: HostTensor = {
  data: new Rng(4).fillNormal(new Float32Array(2 * 3 * 32 * 32)),
  dims: [2, 3, 32, 32],
};
const shapes = (head: HeadModel) =>
  Object.fromEntries(head.levels.map((l) => [l.name, [1, l.channels, l.height, l.width]]));

/** Concatenates [N, A_l, ...] row blocks along axis 1 (float64 bookkeeping, float32 values). */
function concatRows(blocks: HostTensor[]): HostTensor {
  const N = blocks[0].dims[0];
  const rows = blocks.map((b) => b.data.length / N);
  const out = new Float32Array(rows.reduce((a, b) => a + b, 0) * N);
  let o = 0;
  for (let n = 0; n < N; n++)
    blocks.forEach((b, i) => {
      out.set((b.data as Float32Array).subarray(n * rows[i], (n + 1) * rows[i]), o);
      o += rows[i];
    });
  const A = blocks.reduce((a, b) => a + b.dims[1], 0);
  return { data: out, dims: [N, A, ...blocks[0].dims.slice(2)] };
}

/** The split head run on the pyramid, only `keep` levels computed (default all). */
async function runSplit(
  split: HeadSplit,
  pyramid: Record<string, HostTensor>,
  keep?: readonly string[],
): Promise<Record<string, HostTensor>> {
  const parts = split.parts.filter((p) => !keep || keep.includes(p.input));
  const outs = await Promise.all(parts.map((p) => runOrt(p.model, { [p.input]: pyramid[p.input] })));
  if (split.combine === 'concat') {
    return Object.fromEntries(
      split.outputs.map((o) => [o, concatRows(parts.map((p, i) => outs[i][p.outputs[o]]))]),
    );
  }
  const feeds: Record<string, HostTensor> = {};
  for (const p of split.parts) {
    const i = parts.indexOf(p);
    for (const t of Object.values(p.outputs)) {
      const dims = [2, ...p.dims[t].slice(1)];
      feeds[t] = i >= 0 ? outs[i][t] : { data: new Float32Array(dims.reduce((a, b) => a * b, 1)), dims };
    }
  }
  return runOrt(split.merge!, feeds);
}

function maxDiff(a: HostTensor, b: HostTensor): number {
  expect(a.dims).toEqual(b.dims);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}

describe('splitHeadByLevel', () => {
  const heads: [string, HeadModel, HeadSplit['combine']][] = [
    ['FCOS', buildFcosHead({ levels, numClasses: 3, imageHeight: 32, imageWidth: 32, seed: 1 }), 'concat'],
    [
      'Semantic FPN',
      buildSegmentationHead({ levels, numClasses: 4, imageHeight: 32, imageWidth: 32, width: 8, seed: 1 }),
      'merge',
    ],
    [
      'classification',
      buildClassificationHead({ levels, numClasses: 5, imageHeight: 32, imageWidth: 32, seed: 1 }),
      'concat',
    ],
  ];

  it.each(heads)(
    '%s: the parts together reproduce composeTaskModel within 1e-5',
    async (_, head, combine) => {
      const split = splitHeadByLevel(head.model, shapes(head));
      expect(split.combine).toBe(combine);
      expect(split.parts.map((p) => p.input)).toEqual(head.levels.map((l) => l.name));
      // Each part reads its level alone.
      for (const p of split.parts) expect(p.model.graph.inputs.map((i) => i.name)).toEqual([p.input]);
      const full = await runOrt(composeTaskModel(backbone, head), { images });
      const pyramid = await runOrt(backbone, { images });
      const got = await runSplit(split, pyramid);
      for (const o of split.outputs) expect(maxDiff(got[o], full[o])).toBeLessThanOrEqual(1e-5);
    },
  );

  it('FCOS: a level part gives that level rows of each output', async () => {
    const head = heads[0][1];
    const split = splitHeadByLevel(head.model, shapes(head));
    const p3 = split.parts[1];
    expect(Object.keys(p3.outputs).sort()).toEqual(['box_ltrb', 'centerness', 'cls_logits']);
    const L = levels[1];
    expect(p3.dims[p3.outputs.cls_logits]).toEqual([1, L.height * L.width, 3]);
    expect(p3.dims[p3.outputs.centerness]).toEqual([1, L.height * L.width]);
  });

  it('Semantic FPN: a skipped level (zeros into the merge) is absent from the sum', async () => {
    const head = heads[1][1];
    const split = splitHeadByLevel(head.model, shapes(head));
    expect(split.merge!.graph.inputs.map((i) => i.name).sort()).toEqual(
      split.parts.flatMap((p) => Object.values(p.outputs)).sort(),
    );
    const pyramid = await runOrt(backbone, { images });
    // Reference: the full head graph with the P3 branch's output replaced by zeros, as one graph.
    const p3 = split.parts[1];
    const branch = Object.values(p3.outputs)[0];
    const b = GraphBuilder.fromModel(head.model);
    const dims = [2, ...p3.dims[branch].slice(1)];
    const zero = b.op('ConstantOfShape', [b.constInt64(dims, [dims.length], 'zero_shape')]);
    for (const n of b.nodes) n.inputs = n.inputs.map((i) => (i === branch ? zero : i));
    const ref = await runOrt(b.build(), pyramid);
    const got = await runSplit(
      split,
      pyramid,
      levels.filter((l) => l !== levels[1]).map((l) => l.name),
    );
    const full = await runOrt(head.model, pyramid);
    const o = split.outputs[0];
    expect(maxDiff(got[o], ref[o])).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(got[o], full[o])).toBeGreaterThan(1e-4); // the level did contribute
  });

  it('refuses a head that mixes levels other than by concatenation or a sum', () => {
    const b = new GraphBuilder({ name: 'mul_head' });
    for (const l of levels.slice(2)) b.input(l.name, DataType.FLOAT, ['batch', 8, l.height, l.width]);
    const pooled = levels.slice(2).map((l) => b.op('GlobalAveragePool', [b.op('Relu', [l.name])]));
    b.op('Mul', pooled, {}, { outputs: ['out'] });
    b.output('out', DataType.FLOAT, ['batch', 8, 1, 1]);
    const model = b.build();
    const s = Object.fromEntries(levels.slice(2).map((l) => [l.name, [1, 8, l.height, l.width]]));
    expect(() => splitHeadByLevel(model, s)).toThrow(/combines its levels other than by concatenating/);
  });
});
