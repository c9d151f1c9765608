/**
 * The autodiff driver: gradient accumulation, dynamic batch, several targets in one graph, pruning, opset
 * handling, error messages and the static shape check.
 */
import { buildGradientGraph, listUnsupportedOps } from '../../src/autodiff';
import { GRADIENT_RULES } from '../../src/autodiff/rules';
import type { GradientRuleEntry } from '../../src/autodiff/types';
import { DataType, GraphBuilder, floatTensor, int64Tensor, type OnnxModel } from '../../src/onnx';
import type { HostTensor } from '../../src/runtime';
import { createRng } from '../../src/util';
import { checkGradients, compareArrays, finiteDifferenceGradients, runOrt } from '../helpers/grad-check';
import { randomValues } from '../helpers/tiny-models';

const rng = createRng('gradient-graph');
const rand = (dims: number[], range: [number, number] = [-1, 1]): number[] =>
  randomValues(
    rng,
    dims.reduce((a, b) => a * b, 1),
    range,
  );
const host = (dims: number[], values = rand(dims)): HostTensor => ({ data: Float32Array.from(values), dims });
const param = (b: GraphBuilder, name: string, dims: number[]): string =>
  b.initializer(floatTensor(name, dims, rand(dims)), { exactName: true });

describe('buildGradientGraph', () => {
  it('sums the gradients of a tensor consumed three times', async () => {
    const b = new GraphBuilder({ opset: 17 });
    const x = param(b, 'x', [2, 3]);
    const sq = b.op('Mul', [x, x]);
    const e = b.op('Exp', [x]);
    const y = b.op('Sub', [b.op('Add', [sq, e]), x]);
    b.output(
      b.op('ReduceSum', [b.op('Mul', [y, y])], { keepdims: 0 }, { outputs: ['loss'] }),
      DataType.FLOAT,
      [],
    );
    const report = await checkGradients({ model: b.build(), loss: 'loss', params: ['x'], feeds: {} });
    expect(report.params[0].relL2).toBeLessThan(1e-5);
    expect(report.gradientModel.graph.nodes.some((n) => n.opType === 'Sum' && n.inputs.length === 4)).toBe(
      true,
    );
    console.log(`consumed three times: relL2 ${report.params[0].relL2.toExponential(2)}`);
  });

  describe('dynamic batch', () => {
    /** Broadcasts against a symbolic batch, slices and concatenates along it. */
    function dynamicModel(): OnnxModel {
      const b = new GraphBuilder({ opset: 17 });
      b.input('X', DataType.FLOAT, ['batch', 3, 4]);
      b.input('P', DataType.FLOAT, ['p', 4]); // 'p' may be 1 (broadcast) or 3 at run time
      const w = param(b, 'W', [1, 3, 1]);
      const bias = param(b, 'B', [4]);
      let h = b.op('Add', [b.op('Mul', ['X', w]), bias]);
      h = b.op('Add', [h, 'P']);
      const t = b.op('Tanh', [h]);
      const everyOther = b.op('Slice', [
        t,
        b.constInt64([0]),
        b.constInt64([1e6]),
        b.constInt64([0]),
        b.constInt64([2]),
      ]);
      const both = b.op('Concat', [everyOther, t], { axis: 0 });
      const loss = b.op('ReduceMean', [b.op('Mul', [both, both])], { keepdims: 0 }, { outputs: ['loss'] });
      b.output(loss, DataType.FLOAT, []);
      return b.build();
    }

    it('one graph built with a symbolic batch runs with batch 1 and 3', async () => {
      const model = dynamicModel();
      const g = buildGradientGraph(model, { targets: [{ loss: 'loss', wrt: ['W', 'B', 'P'] }] });
      for (const batch of [1, 3]) {
        const feeds = { X: host([batch, 3, 4]), P: host([1, 4]) };
        const out = await runOrt(g.model, feeds);
        const ref = finiteDifferenceGradients(model, 'loss', ['W', 'B', 'P'], feeds);
        for (const p of ['W', 'B', 'P']) {
          const c = compareArrays(Array.from(out[`${p}_grad`].data as Float32Array), ref[p]);
          console.log(`dynamic batch ${batch}: ${p} relL2 ${c.relL2.toExponential(2)}`);
          expect(c.relL2).toBeLessThan(1e-4);
        }
        expect(out.P_grad.dims).toEqual([1, 4]);
      }
      // The same graph also takes P with p = 3 (no broadcast): the reduction axes are decided at run time.
      const feeds = { X: host([3, 3, 4]), P: host([3, 4]) };
      const out = await runOrt(g.model, feeds);
      const ref = finiteDifferenceGradients(model, 'loss', ['P'], feeds);
      expect(compareArrays(Array.from(out.P_grad.data as Float32Array), ref.P).relL2).toBeLessThan(1e-4);
      expect(out.P_grad.dims).toEqual([3, 4]);
    });

    it('reads the batch-dependent shapes with Shape at run time', () => {
      const g = buildGradientGraph(dynamicModel(), { targets: [{ loss: 'loss', wrt: ['W', 'B'] }] });
      const shaped = g.model.graph.nodes.filter((n) => n.opType === 'Shape').map((n) => n.inputs[0]);
      expect(shaped.length).toBeGreaterThan(0);
      // Every static shape constant feeding a Reshape/Expand/ConstantOfShape is free of the batch: none has
      // the rank-3 layout [batch, 3, 4] spelled out with a number in front.
      const consts = new Map(g.model.graph.initializers.map((t) => [t.name, t]));
      for (const n of g.model.graph.nodes.filter((m) =>
        ['Reshape', 'Expand', 'ConstantOfShape'].includes(m.opType),
      )) {
        const t = consts.get(n.inputs[n.opType === 'ConstantOfShape' ? 0 : 1]);
        if (!t) continue;
        const dims = Array.from(t.data as BigInt64Array).map(Number);
        expect(dims.length === 3 && dims[1] === 3 && dims[2] === 4 && dims[0] > 1).toBe(false);
      }
    });
  });

  describe.each([13, 14, 15, 16, 17, 18])('a chain of every family at opset %i', (opset) => {
    it('matches finite differences and keeps the opset (raised to 16 only for Gather below 16)', async () => {
      const b = new GraphBuilder({ opset });
      b.input('X', DataType.FLOAT, ['batch', 4]);
      const w = param(b, 'W', [4]);
      const h = b.op('Unsqueeze', [b.op('Mul', ['X', w]), b.constInt64([1])]); // [N,1,4]
      const sm = b.op('Softmax', [b.op('Tanh', [h])], { axis: -1 });
      const axes = [1];
      const mean =
        opset >= 18
          ? b.op('ReduceMean', [sm, b.constInt64(axes)], { keepdims: 0 })
          : b.op('ReduceMean', [sm], { axes, keepdims: 0 }); // [N,4]
      const [p0, p1] = b.node('Split', [mean, b.constInt64([1, 3])], { axis: 1 }, { outputs: 2 });
      const cat = b.op('Concat', [p1, p0, 'X'], { axis: 1 }); // [N,8]
      const picked = b.op('Gather', [cat, b.constInt64([7, 0, 0, 3])], { axis: 1 });
      const sliced = b.op('Slice', [
        picked,
        b.constInt64([3]),
        b.constInt64([-100]),
        b.constInt64([1]),
        b.constInt64([-2]),
      ]);
      const sq = b.op('Squeeze', [
        b.op('ReduceSum', [b.op('Mul', [sliced, sliced]), b.constInt64([1])]),
        b.constInt64([1]),
      ]);
      b.output(b.op('ReduceMax', [sq], { keepdims: 0 }, { outputs: ['loss'] }), DataType.FLOAT, []);
      const report = await checkGradients({
        model: b.build(),
        loss: 'loss',
        params: ['W'],
        feeds: { X: host([3, 4]) },
      });
      expect(report.params[0].relL2).toBeLessThan(1e-4);
      expect(report.gradientModel.opsetImports).toEqual([{ domain: '', version: Math.max(opset, 16) }]);
      console.log(`chain at opset ${opset}: relL2 ${report.params[0].relL2.toExponential(2)}`);
    });
  });

  it('differentiates a small CNN end to end (every family, dynamic batch, cross-entropy loss)', async () => {
    const b = new GraphBuilder({ opset: 17 });
    b.input('X', DataType.FLOAT, ['N', 2, 8, 8]);
    b.input('labels', DataType.INT64, ['N', 1]);
    const w1 = param(b, 'W1', [4, 2, 3, 3]);
    const c1 = b.op('Conv', ['X', w1, param(b, 'B1', [4])], { pads: [1, 1, 1, 1], strides: [2, 2] });
    const bnMean = b.constFloat(rand([4]), [4], 'bn_mean');
    const bnVar = b.constFloat(rand([4], [0.5, 1.5]), [4], 'bn_var');
    const bn = b.op('BatchNormalization', [c1, param(b, 'gamma', [4]), param(b, 'beta', [4]), bnMean, bnVar]);
    const r1 = b.op('Relu', [bn]); // [N,4,4,4], read by two branches
    const pooled = b.op('MaxPool', [r1], { kernel_shape: [2, 2], strides: [2, 2] });
    const p2 = b.op('Conv', [pooled, param(b, 'W2', [4, 4, 1, 1])]);
    const up = b.op('Resize', [p2, '', b.constFloat([1, 1, 2, 2], [4], 'scales')], { mode: 'nearest' });
    const merged = b.op('Add', [r1, up]);
    const feat = b.op('Flatten', [b.op('GlobalAveragePool', [merged])]);
    const logits = b.op('Gemm', [feat, param(b, 'W3', [3, 4]), param(b, 'C', [3])], { transB: 1 });
    const logp = b.op('LogSoftmax', [logits], { axis: 1 });
    const picked = b.op('GatherElements', [logp, 'labels'], { axis: 1 });
    b.output(
      b.op('Neg', [b.op('ReduceMean', [picked], { keepdims: 0 })], {}, { outputs: ['loss'] }),
      DataType.FLOAT,
      [],
    );
    const params = ['W1', 'B1', 'gamma', 'beta', 'W2', 'W3', 'C'];
    const feeds = {
      X: host([2, 2, 8, 8]),
      labels: { data: BigInt64Array.from([2n, 0n]), dims: [2, 1] },
    };
    const report = await checkGradients({ model: b.build(), loss: 'loss', params, feeds });
    const worst = Math.max(...report.params.map((p) => p.relL2));
    console.log(
      `small CNN end to end: worst relL2 ${worst.toExponential(2)} over ${params.length} parameters`,
    );
    expect(worst).toBeLessThan(1e-4);
    expect(report.gradientModel.graph.nodes.every((n) => n.domain === '')).toBe(true);
  });

  describe('several targets in one graph', () => {
    function twoLossModel(): OnnxModel {
      const b = new GraphBuilder({ opset: 17 });
      b.input('X', DataType.FLOAT, ['batch', 3]);
      const w = param(b, 'W', [1, 3]);
      const bias = param(b, 'b', [3]);
      const h = b.op('Mul', ['X', w]);
      const r = b.constFloat(rand([3]), [3], 'R');
      const l1 = b.op(
        'ReduceSum',
        [b.op('Mul', [b.op('Tanh', [h], {}, { name: 'tanh' }), r])],
        { keepdims: 0 },
        { outputs: ['L1'] },
      );
      const h2 = b.op('Add', [h, bias]);
      const l2 = b.op(
        'ReduceMean',
        [b.op('Mul', [b.op('Sigmoid', [h2]), h2])],
        { keepdims: 0 },
        { outputs: ['L2'] },
      );
      const total = b.op('Add', [b.op('Mul', [l1, b.constFloat(0.3)]), l2], {}, { outputs: ['total'] });
      b.output(total, DataType.FLOAT, []);
      return b.build();
    }

    it('gives per-loss gradients of W from one forward pass, equal to single-loss graphs', async () => {
      const model = twoLossModel();
      const g = buildGradientGraph(model, {
        targets: [
          { loss: 'total', wrt: ['W', 'b'] },
          { loss: 'L1', wrt: ['W'], suffix: 'l1' },
          { loss: 'L2', wrt: ['W', 'b'], suffix: 'l2' },
        ],
      });
      expect(g.gradients).toEqual([
        { target: 0, parameter: 'W', output: 'W_grad' },
        { target: 0, parameter: 'b', output: 'b_grad' },
        { target: 1, parameter: 'W', output: 'W_grad_l1' },
        { target: 2, parameter: 'W', output: 'W_grad_l2' },
        { target: 2, parameter: 'b', output: 'b_grad_l2' },
      ]);
      expect(g.model.graph.outputs.map((o) => o.name)).toEqual([
        'total',
        'L1',
        'L2',
        'W_grad',
        'b_grad',
        'W_grad_l1',
        'W_grad_l2',
        'b_grad_l2',
      ]);
      expect(g.model.graph.nodes.filter((n) => n.opType === 'Tanh').length).toBe(1); // one forward
      expect(g.model.graph.nodes.every((n) => n.domain === '')).toBe(true); // standard ops only
      const feeds = { X: host([2, 3]) };
      const out = await runOrt(g.model, feeds);
      const only = (loss: string) => buildGradientGraph(model, { targets: [{ loss, wrt: ['W'] }] });
      const w1 = (await runOrt(only('L1').model, feeds)).W_grad.data as Float32Array;
      const w2 = (await runOrt(only('L2').model, feeds)).W_grad.data as Float32Array;
      const got1 = out.W_grad_l1.data as Float32Array;
      const got2 = out.W_grad_l2.data as Float32Array;
      const total = out.W_grad.data as Float32Array;
      for (let i = 0; i < 3; i++) {
        expect(got1[i]).toBeCloseTo(w1[i], 6);
        expect(got2[i]).toBeCloseTo(w2[i], 6);
        expect(total[i]).toBeCloseTo(0.3 * got1[i] + got2[i], 5);
      }
      const ref = finiteDifferenceGradients(model, 'L1', ['W'], feeds);
      const c = compareArrays(Array.from(got1), ref.W);
      console.log(`per-loss gradient W_grad_l1 vs finite differences: relL2 ${c.relL2.toExponential(2)}`);
      expect(c.relL2).toBeLessThan(1e-4);
    });

    it('refuses two targets writing the same gradient name', () => {
      expect(() =>
        buildGradientGraph(twoLossModel(), {
          targets: [
            { loss: 'L1', wrt: ['W'] },
            { loss: 'L2', wrt: ['W'] },
          ],
        }),
      ).toThrow(/targets 0 and 1 would both write 'W_grad'/);
    });
  });

  describe('pruning', () => {
    function branchyModel(): OnnxModel {
      const b = new GraphBuilder({ opset: 17 });
      b.input('X', DataType.FLOAT, [2, 3]);
      b.input('Z', DataType.FLOAT, [2, 3]);
      const w = param(b, 'W', [3]);
      const frozen = param(b, 'F', [3]);
      const loss = b.op(
        'ReduceSum',
        [b.op('Tanh', [b.op('Mul', ['X', w])])],
        { keepdims: 0 },
        { outputs: ['loss'] },
      );
      // An unrelated branch with an op that has no gradient rule, and a consumer of the loss.
      const other = b.op(
        'Selu',
        [b.op('Add', ['Z', frozen], {}, { name: 'unrelated_add' })],
        {},
        { name: 'unrelated_selu' },
      );
      const doubled = b.op('Mul', [loss, b.constFloat(2)], {}, { name: 'after_loss' });
      b.output(loss, DataType.FLOAT, []);
      b.output(other, DataType.FLOAT, [2, 3]);
      b.output(doubled, DataType.FLOAT, []);
      return b.build();
    }

    it('drops branches the losses and gradients do not need', async () => {
      const g = buildGradientGraph(branchyModel(), { targets: [{ loss: 'loss', wrt: ['W'] }] });
      const names = g.model.graph.nodes.map((n) => n.name);
      expect(names).not.toContain('unrelated_selu');
      expect(names).not.toContain('unrelated_add');
      expect(names).not.toContain('after_loss');
      expect(g.model.graph.initializers.map((t) => t.name)).not.toContain('F');
      expect(g.model.graph.outputs.map((o) => o.name)).toEqual(['loss', 'W_grad']);
      // Graph inputs stay declared, so callers feed what the forward model took.
      expect(g.model.graph.inputs.map((v) => v.name)).toEqual(['X', 'Z']);
      const out = await runOrt(g.model, { X: host([2, 3]), Z: host([2, 3]) });
      expect(out.W_grad.dims).toEqual([3]);
    });

    it('keeps forward outputs asked for with keepOutputs', () => {
      const g = buildGradientGraph(branchyModel(), {
        targets: [{ loss: 'loss', wrt: ['W'] }],
        keepOutputs: ['unrelated_selu_out'],
      });
      expect(g.model.graph.nodes.map((n) => n.name)).toContain('unrelated_selu');
      expect(g.model.graph.outputs.map((o) => o.name)).toEqual(['loss', 'unrelated_selu_out', 'W_grad']);
    });

    it('gives zeros for a parameter the loss does not depend on', async () => {
      const g = buildGradientGraph(branchyModel(), { targets: [{ loss: 'loss', wrt: ['W', 'F'] }] });
      const out = await runOrt(g.model, { X: host([2, 3]), Z: host([2, 3]) });
      expect(Array.from(out.F_grad.data as Float32Array)).toEqual([0, 0, 0]);
    });
  });

  describe('errors', () => {
    function unsupportedModel(): OnnxModel {
      const b = new GraphBuilder({ opset: 17 });
      b.opsetImports.push({ domain: 'com.example', version: 1 });
      const w = param(b, 'W', [3]);
      const v = param(b, 'V', [3]);
      const h = b.op('MyOp', [w], {}, { name: 'custom1', domain: 'com.example' });
      const s = b.op('Selu', [v], {}, { name: 'selu1' });
      // An integer path from W through an op without a rule is fine: Shape → NonZero carries no gradient.
      const nz = b.op('NonZero', [b.op('Shape', [w])]);
      const n = b.op('Cast', [b.op('ReduceSum', [nz], { keepdims: 0 })], { to: DataType.FLOAT });
      const loss = b.op(
        'ReduceSum',
        [b.op('Mul', [b.op('Add', [h, s]), n])],
        { keepdims: 0 },
        { outputs: ['loss'] },
      );
      b.output(loss, DataType.FLOAT, []);
      return b.build();
    }

    it('names the node and op type of an op without a rule on the path', () => {
      const model = unsupportedModel();
      expect(() => buildGradientGraph(model, { targets: [{ loss: 'loss', wrt: ['W'] }] })).toThrow(
        /no gradient rule for MyOp 'custom1' on the path from the parameters to 'loss'/,
      );
      expect(() => buildGradientGraph(model, { targets: [{ loss: 'loss', wrt: ['V'] }] })).toThrow(
        /no gradient rule for Selu 'selu1'/,
      );
      try {
        buildGradientGraph(model, { targets: [{ loss: 'loss', wrt: ['W'] }] });
      } catch (err) {
        expect((err as { hint?: string }).hint).toMatch(/freeze the parameters/);
      }
      expect(listUnsupportedOps(model, ['W', 'V'])).toEqual([
        { opType: 'com.example.MyOp', node: 'custom1' },
        { opType: 'Selu', node: 'selu1' },
      ]);
      expect(listUnsupportedOps(model, [], ['loss'])).toEqual([]);
    });

    it('refuses a non-scalar loss, an unknown parameter and unsupported opsets', () => {
      const b = new GraphBuilder({ opset: 17 });
      const w = param(b, 'W', [3]);
      const y = b.op('Tanh', [w], {}, { outputs: ['y'] });
      b.output(y, DataType.FLOAT, [3]);
      b.output(b.op('ReduceSum', [y], { keepdims: 0 }, { outputs: ['s'] }), DataType.FLOAT, []);
      const model = b.build();
      expect(() => buildGradientGraph(model, { targets: [{ loss: 'y', wrt: ['W'] }] })).toThrow(
        /loss 'y' must be a scalar \(\[\] or \[1\]\), its shape is \[3\]/,
      );
      expect(() => buildGradientGraph(model, { targets: [{ loss: 's', wrt: ['nope'] }] })).toThrow(
        /parameter 'nope' is neither an initializer nor a graph input/,
      );
      const old = { ...model, opsetImports: [{ domain: '', version: 12 }] };
      expect(() => buildGradientGraph(old, { targets: [{ loss: 's', wrt: ['W'] }] })).toThrow(
        /opsets 13..18; the model is opset 12/,
      );
    });

    it('refuses to raise the opset for ScatterElements when an op would change meaning', () => {
      const b = new GraphBuilder({ opset: 13 });
      const w = param(b, 'W', [4, 2]);
      const g = b.op('Gather', [w, b.constInt64([0, 0, 3])]);
      const loss = b.op('ReduceSum', [g], { keepdims: 0 }, { outputs: ['loss'] });
      b.input('feat', DataType.FLOAT, [1, 1, 4, 4]);
      b.input('rois', DataType.FLOAT, [1, 4]);
      b.initializer(int64Tensor('bi', [1], [0]), { exactName: true });
      b.op('RoiAlign', ['feat', 'rois', 'bi'], {}, { name: 'roi', outputs: ['pooled'] });
      b.output(loss, DataType.FLOAT, []);
      const model = b.build();
      expect(
        buildGradientGraph(model, { targets: [{ loss: 'loss', wrt: ['W'] }] }).model.opsetImports,
      ).toEqual([{ domain: '', version: 16 }]);
      expect(() =>
        buildGradientGraph(model, { targets: [{ loss: 'loss', wrt: ['W'] }], keepOutputs: ['pooled'] }),
      ).toThrow(/needs opset 16 .*Gather.*RoiAlign 'roi' would change meaning/);
    });

    it('checks that each gradient has the static shape of its input', () => {
      const rules = GRADIENT_RULES as Map<string, GradientRuleEntry>;
      const original = rules.get('Neg')!;
      // A broken rule: sums the gradient to a scalar.
      rules.set('Neg', { opType: 'Neg', rule: (ctx) => [ctx.reduceSum(ctx.dY[0]!, [], false)] });
      try {
        const b = new GraphBuilder({ opset: 17 });
        const w = param(b, 'W', [2, 3]);
        b.output(
          b.op('ReduceSum', [b.op('Neg', [w], {}, { name: 'neg' })], { keepdims: 0 }, { outputs: ['loss'] }),
          DataType.FLOAT,
          [],
        );
        expect(() => buildGradientGraph(b.build(), { targets: [{ loss: 'loss', wrt: ['W'] }] })).toThrow(
          /gradient of Neg 'neg' input 0 \('W'\) has shape \[\], but the tensor has shape \[2, 3\]/,
        );
      } finally {
        rules.set('Neg', original);
      }
    });
  });

  it('accepts parameters that are graph inputs and a [1]-shaped loss', async () => {
    const b = new GraphBuilder({ opset: 17 });
    b.input('W', DataType.FLOAT, [2, 2]);
    const loss = b.op('ReduceSum', [b.op('Exp', ['W']), b.constInt64([0, 1])], { keepdims: 0 });
    b.output(b.op('Reshape', [loss, b.constInt64([1])], {}, { outputs: ['loss'] }), DataType.FLOAT, [1]);
    const report = await checkGradients({
      model: b.build(),
      loss: 'loss',
      params: ['W'],
      feeds: { W: host([2, 2]) },
    });
    expect(report.params[0].relL2).toBeLessThan(1e-5);
  });
});
