/**
 * Level pruning against onnxruntime: every non-empty subset's sub-graph gives the full graph's level
 * outputs bit for bit, and trunk + parts composed give every output bit for bit, on the shipped demo
 * graphs and on a tiny torchvision-form ResNet-FPN with LastLevelMaxPool (P6 computed from P5).
 */
import * as path from 'node:path';
import { findGraphProblems, loadModel, type OnnxModel, type OnnxNode } from '../../src/onnx';
import { levelOutputs, pruneToLevels, splitPyramid } from '../../src/onnx/level-pruning';
import { createSession, type GraphSession, type HostTensor } from '../../src/runtime';
import { seeded } from '../analysis/tiny-fpn';
import { tinyTorchFpn } from '../helpers/tiny-torch-fpn';

const GRAPHS = path.resolve(__dirname, '..', '..', 'onnx-graphs');

/** Every non-empty subset of `items`, as index masks 1..2^n−1. */
function subsets<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let m = 1; m < 2 ** items.length; m++) out.push(items.filter((_, i) => (m >> i) & 1));
  return out;
}

function sameBits(a: HostTensor, b: HostTensor): boolean {
  if (a.dims.join() !== b.dims.join()) return false;
  const x = new Uint32Array((a.data as Float32Array).buffer, a.data.byteOffset, a.data.length);
  const y = new Uint32Array((b.data as Float32Array).buffer, b.data.byteOffset, b.data.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Nodes whose value depends on a graph input, by a forward walk (independent of the pruning's backward one). */
function imageDependents(model: OnnxModel): OnnxNode[] {
  const live = new Set(model.graph.inputs.map((v) => v.name));
  const out: OnnxNode[] = [];
  for (const n of model.graph.nodes) {
    if (n.inputs.some((i) => live.has(i))) {
      out.push(n);
      n.outputs.forEach((o) => live.add(o));
    }
  }
  return out;
}

async function run(model: OnnxModel, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const s: GraphSession = await createSession(model, { intraOpNumThreads: 1 });
  try {
    const wanted = Object.fromEntries(Object.entries(feeds).filter(([k]) => s.inputNames.includes(k)));
    return await s.run(wanted);
  } finally {
    await s.release();
  }
}

const cases: { name: string; model: () => OnnxModel; size: number }[] = [
  { name: 'demo student', model: () => loadModel(path.join(GRAPHS, 'student.onnx')), size: 96 },
  { name: 'demo teacher', model: () => loadModel(path.join(GRAPHS, 'teacher.onnx')), size: 96 },
  {
    name: 'tiny resnet18-fpn with p6',
    model: () => tinyTorchFpn({ fpnBias: 'random', seed: 3 }),
    size: 64,
  },
];

describe.each(cases)('level pruning: $name', ({ model: make, size }) => {
  const model = make();
  const outputs = model.graph.outputs.map((o) => o.name);
  const images: HostTensor = { data: seeded(2 * 3 * size * size, 7), dims: [2, 3, size, size] };
  let full: Record<string, HostTensor>;

  beforeAll(async () => {
    full = await run(model, { images });
  });

  test('every non-empty subset gives the full graph level outputs bit for bit', async () => {
    const all = subsets(outputs);
    expect(all).toHaveLength(2 ** outputs.length - 1);
    for (const selection of all) {
      const pruned = pruneToLevels(model, selection);
      expect(findGraphProblems(pruned)).toEqual([]);
      expect(pruned.graph.outputs.map((o) => o.name)).toEqual(selection);
      const got = await run(pruned, { images });
      for (const o of selection) {
        if (!sameBits(got[o], full[o])) throw new Error(`${selection.join('+')}: ${o} differs`);
      }
    }
  });

  test('a proper subset drops nodes; the input model is not mutated', () => {
    const before = model.graph.nodes.length;
    const coarsest = pruneToLevels(model, [outputs[outputs.length - 1]]);
    expect(coarsest.graph.nodes.length).toBeLessThan(before);
    expect(pruneToLevels(model, outputs).graph.nodes.length).toBe(before);
    expect(model.graph.nodes.length).toBe(before);
  });

  test('trunk + parts composed give every level output bit for bit', async () => {
    const split = splitPyramid(model);
    expect(findGraphProblems(split.trunk)).toEqual([]);
    expect(split.trunk.graph.outputs.map((o) => o.name)).toEqual(split.boundary);
    const trunkOut = await run(split.trunk, { images });
    let partNodes = 0;
    for (const part of split.parts) {
      expect(findGraphProblems(part.model)).toEqual([]);
      for (const i of part.inputs) expect(split.boundary.includes(i) || i === 'images').toBe(true);
      partNodes += part.model.graph.nodes.length;
      const got = await run(part.model, { images, ...trunkOut });
      if (!sameBits(got[part.output], full[part.output])) throw new Error(`${part.output} differs`);
    }
    // Nodes that depend on the image appear exactly once over trunk and parts; only constant
    // computations (which read no input) may be copied into several.
    const seen = new Map<OnnxNode, number>();
    for (const m of [split.trunk, ...split.parts.map((p) => p.model)])
      for (const n of m.graph.nodes) seen.set(n, (seen.get(n) ?? 0) + 1);
    for (const n of imageDependents(model)) expect([n.name, seen.get(n)]).toEqual([n.name, 1]);
    expect(partNodes).toBeGreaterThan(0);
  });
});

describe('level split structure of a torchvision-form FPN', () => {
  const model = tinyTorchFpn();
  const split = splitPyramid(model);
  const part = (o: string): OnnxModel => split.parts.find((p) => p.output === o)!.model;
  const convs = (m: OnnxModel): string[] =>
    m.graph.nodes.filter((n) => n.opType === 'Conv').map((n) => n.name);

  test('P5 feeds P6, so P5 is trunk and its part passes it through', () => {
    expect(split.boundary).toContain('p5');
    expect(part('p5').graph.nodes).toHaveLength(0);
    expect(part('p6').graph.nodes.map((n) => n.opType)).toEqual(['MaxPool']);
  });

  test('each of P3, P4 is its 3×3 output conv; P2 adds its lateral conv and the merge', () => {
    for (const [o, i] of [
      ['p3', 1],
      ['p4', 2],
    ] as const) {
      expect(convs(part(o))).toEqual([`/fpn/layer_blocks.${i}/layer_blocks.${i}.0/Conv`]);
    }
    expect(convs(part('p2')).sort()).toEqual(
      ['/fpn/inner_blocks.0/inner_blocks.0.0/Conv', '/fpn/layer_blocks.0/layer_blocks.0.0/Conv'].sort(),
    );
    expect(part('p2').graph.nodes.some((n) => n.opType === 'Add')).toBe(true);
    // It reads C2 (layer1's output) and P3's merged map, both trunk.
    expect(split.parts.find((p) => p.output === 'p2')!.inputs).toHaveLength(2);
  });

  test('a split of some levels composes them exactly; of one level, the part is the pruned graph', async () => {
    const images: HostTensor = { data: seeded(3 * 64 * 64, 5), dims: [1, 3, 64, 64] };
    const full = await run(model, { images });
    const some = splitPyramid(model, ['p5', 'p3']);
    const trunkOut = await run(some.trunk, { images });
    expect(some.parts.map((p) => p.output)).toEqual(['p3', 'p5']);
    for (const part of some.parts) {
      const got = await run(part.model, trunkOut);
      expect(sameBits(got[part.output], full[part.output])).toBe(true);
    }
    const one = splitPyramid(model, ['p4']);
    expect(one.boundary).toEqual([]);
    expect(one.trunk.graph.nodes).toHaveLength(0);
    expect(one.parts[0].inputs).toEqual(['images']);
    expect(one.parts[0].model.graph.nodes).toEqual(pruneToLevels(model, ['p4']).graph.nodes);
  });

  test('bad selections fail with one clear error', () => {
    expect(() => pruneToLevels(model, [])).toThrow(/no levels selected/);
    expect(() => pruneToLevels(model, ['p9'])).toThrow(/'p9' is not an output .*outputs: p2, p3, p4, p5, p6/);
    expect(levelOutputs(model, ['p4', { output: 'p2' }, 'p4'])).toEqual(['p2', 'p4']);
  });
});
