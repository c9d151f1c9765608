/** Reduce-to-shape: static axis decisions, and the run-time path for symbolic or unknown shapes. */
import { broadcastReductionAxes } from '../../src/autodiff/broadcast';
import { GradBuildState } from '../../src/autodiff/grad-context';
import { DataType, GraphBuilder, type Dim } from '../../src/onnx';
import type { TensorInfo } from '../../src/onnx/shape-inference';
import { createRng } from '../../src/util';
import { runOrt } from '../helpers/grad-check';
import { runReference } from '../helpers/reference';

describe('broadcastReductionAxes', () => {
  const table: [Dim[], Dim[], number[] | undefined][] = [
    [[2, 3, 4], [2, 3, 4], []],
    [[2, 3, 4], [4], [0, 1]],
    [
      [2, 3, 4],
      [3, 1],
      [0, 2],
    ],
    [[2, 3, 4], [], [0, 1, 2]],
    [
      [2, 1, 4],
      [1, 1, 1],
      [0, 2],
    ], // an axis already of size 1 is not summed
    [['N', 3], ['N', 3], []],
    [['N', 3], [1, 3], [0]],
    [['N', 3], ['M', 3], undefined], // M may be 1 at run time: undecidable
    [['N', 3], [null, 3], undefined],
    [[3], [2, 3], undefined], // like has a higher rank: not a broadcast
  ];
  test.each(table)('grad %j to %j → %j', (g, l, want) => {
    expect(broadcastReductionAxes(g, l)).toEqual(want);
  });
});

describe('unbroadcast at run time', () => {
  const rng = createRng('unbroadcast');

  /** Emits unbroadcast(G, L) with G of unknown rank (no gradShape) and L declared as `likeDecl`. */
  function build(likeDecl: Dim[]) {
    const b = new GraphBuilder({ opset: 17 });
    b.input('G', DataType.FLOAT);
    b.input('L', DataType.FLOAT, likeDecl);
    const infos = new Map<string, TensorInfo>([['L', { dataType: DataType.FLOAT, shape: likeDecl }]]);
    const state = new GradBuildState(b, 17, infos);
    const node = { name: 'n', opType: 'Add', domain: '', inputs: ['G', 'L'], outputs: ['Y'], attributes: {} };
    const out = state.context(node, ['G'], [false, true]).unbroadcast('G', 'L');
    b.output(out, DataType.FLOAT);
    return { model: b.build(), out };
  }

  test.each([
    [
      [2, 3, 4],
      [3, 1],
      ['a', 1],
    ],
    [
      [2, 3, 4],
      [1, 1],
      ['a', 1],
    ],
    [
      [2, 3, 4],
      [2, 1, 4],
      ['a', 'b', 4],
    ],
    [[5], [], []],
  ] as [number[], number[], Dim[]][])('G %j summed to L %j (declared %j)', async (gDims, lDims, decl) => {
    const { model, out } = build(decl);
    const n = gDims.reduce((a, b) => a * b, 1);
    const g = Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
    const feeds = {
      G: { data: g, dims: gDims },
      L: { data: new Float32Array(lDims.reduce((a, b) => a * b, 1)), dims: lDims },
    };
    const got = (await runOrt(model, feeds))[out];
    expect([...got.dims]).toEqual(lDims);
    // Reference: the sum that broadcasting L to G's shape implies, via ReduceSum in the float64 interpreter.
    const rb = new GraphBuilder({ opset: 17 });
    rb.input('G', DataType.FLOAT, gDims);
    const off = gDims.length - lDims.length;
    const axes = gDims.map((_, i) => i).filter((i) => i < off || lDims[i - off] === 1);
    const s = rb.op('ReduceSum', ['G', rb.constInt64(axes)], { keepdims: 0 });
    const want = runReference(rb.build(), { G: feeds.G }).get(s)!;
    Array.from(want.data).forEach((v, k) => expect(got.data[k]).toBeCloseTo(v, 5));
  });
});
