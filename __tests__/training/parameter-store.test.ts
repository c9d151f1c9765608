import { generateArtifacts } from '../../src/training/artifacts';
import { ParameterStore } from '../../src/training/parameter-store';
import { tinyPyramid } from './tiny-pyramid';

/** A store on the tiny pyramid's artifacts (small blocks, so the parameters span several of them). */
function store(): ParameterStore {
  const artifacts = generateArtifacts(
    tinyPyramid({ seed: 3, width: 8, upsample: 'resize', name: 'student' }),
    {
      loss: { type: 'mse', outputs: ['p2', 'p3'] },
      optimizer: { type: 'adamw', lr: 1e-3, noWeightDecay: ['body.conv1.bias'] },
    },
  );
  const s = new ParameterStore(artifacts.manifest);
  s.applyCheckpoint(artifacts.checkpoint!, 'the checkpoint');
  return s;
}

describe('ParameterStore', () => {
  it('keeps every parameter with a gradient as a view into its flat block, gradients beside it', () => {
    const s = store();
    const m = s.manifest;
    expect(s.blocks.length).toBeGreaterThan(1); // decay and no-decay parameters never share a block
    for (const block of s.blocks) {
      let offset = 0;
      for (const p of block.group.params) {
        const view = s.parameter(p);
        expect(view.buffer).toBe(block.params.buffer);
        expect(view.byteOffset).toBe(block.params.byteOffset + 4 * offset);
        offset += view.length;
      }
      expect(offset).toBe(block.group.size);
    }
    const grads = s.gradientViews();
    expect([...grads.keys()].sort()).toEqual(Object.keys(m.gradients).sort());
    for (const block of s.blocks)
      for (const p of block.group.params) expect(grads.get(p)!.buffer).toBe(block.grad!.buffer);
  });

  it('replaces gradients after a reset, adds them otherwise, and takes their norm in float64', () => {
    const s = store();
    const names = Object.keys(s.manifest.gradients);
    const ones = new Map(names.map((p) => [p, new Float32Array(s.parameter(p).length).fill(1)]));
    const halves = new Map(names.map((p) => [p, new Float32Array(s.parameter(p).length).fill(0.5)]));
    expect(s.hasGradients).toBe(false);
    s.accumulateGradients(ones);
    s.accumulateGradients(halves);
    expect(s.hasGradients).toBe(true);
    const n = names.reduce((k, p) => k + s.parameter(p).length, 0);
    // Every element is 1.5: the norm is 1.5·√n.
    expect(s.gradientNorm()).toBeCloseTo(1.5 * Math.sqrt(n), 10);
    s.scaleGradients(2);
    for (const g of Object.values(s.copyGradients()))
      expect(new Set(g.data as Float32Array)).toEqual(new Set([3]));
    s.resetGradients();
    expect(s.copyGradients()).toEqual({});
    s.accumulateGradients(halves);
    expect(s.gradientNorm()).toBeCloseTo(0.5 * Math.sqrt(n), 10);
  });

  it('after a reset, parameters a run gives no gradient (a pruned graph) count as zero; unknown names throw', () => {
    const s = store();
    const names = Object.keys(s.manifest.gradients);
    const [first, ...rest] = names;
    s.accumulateGradients(new Map(names.map((p) => [p, new Float32Array(s.parameter(p).length).fill(2)])));
    s.resetGradients();
    s.accumulateGradients(new Map([[first, new Float32Array(s.parameter(first).length).fill(1)]]));
    const g = s.copyGradients();
    expect(new Set(g[first].data as Float32Array)).toEqual(new Set([1]));
    for (const p of rest) expect(new Set(g[p].data as Float32Array)).toEqual(new Set([0]));
    expect(s.gradientNorm()).toBeCloseTo(Math.sqrt(s.parameter(first).length), 10);
    expect(() => s.accumulateGradients(new Map([['nope', new Float32Array(1)]]))).toThrow(/'nope'/);
    expect(() => s.accumulateGradients(new Map([[first, new Float32Array(1)]]))).toThrow(/has 1 values/);
  });

  it('copies a snapshot again only when the state changed since (versions unique across stores)', () => {
    const s = store();
    const p = Object.keys(s.manifest.gradients)[0];
    const snap = s.snapshot();
    const original = s.parameter(p).slice();
    expect(s.snapshot(snap)).toBe(snap); // unchanged: nothing copied
    s.parameter(p).fill(7); // a write behind the store's back, as an update would do before `step` is set
    s.step = 1;
    const again = s.snapshot(snap);
    expect(again.arrays[0]).toBe(snap.arrays[0]); // the buffers are reused...
    expect(again.version).not.toBe(snap.version); // ...for the new state
    s.restore({ ...again, arrays: again.arrays.map((a) => a.slice()) });
    expect(s.version).toBe(again.version);
    // Another store's fresh state never shares a version with this one's.
    expect(store().version).not.toBe(s.version);
    s.resetOptimizerState();
    expect(s.version).not.toBe(again.version);
    s.restore(again);
    expect(s.parameter(p)[0]).toBe(7);
    expect(original[0]).not.toBe(7);
  });

  it('restores a snapshot and a checkpoint bit for bit, step included', () => {
    const s = store();
    const start = s.checkpointState();
    const snap = s.snapshot();
    const first = s.manifest.parameters[0].name;
    s.parameter(first).fill(7);
    s.step = 5;
    s.restore(snap);
    expect(s.step).toBe(0);
    expect(Array.from(s.parameter(first))).toEqual(Array.from(start.parameters[first].data as Float32Array));
    s.parameter(first).fill(9);
    s.applyCheckpoint(start, 'the start');
    expect(Array.from(s.parameter(first))).toEqual(Array.from(start.parameters[first].data as Float32Array));
  });
});
