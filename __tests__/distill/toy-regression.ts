/**
 * The GradNorm paper's toy problem (Chen et al. 2018, §4): T regression tasks t_i(x) = σ_i·tanh((B + ε_i)·x)
 * of very different scales σ_i, learned by one shared trunk (two Gemm+Relu layers) with a Gemm head per
 * task, trained through the engine. The model takes the task weights as an input, so GradNorm feeds them.
 */
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { floatTensor } from '../../src/onnx/tensor-data';
import { DataType, type OnnxModel } from '../../src/onnx/types';
import type { HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';

export interface ToySpec {
  scales: number[];
  inputDim: number;
  hidden: number;
  outputDim: number;
  seed: number;
}

/** Tensor names of the toy graph. */
export const TOY_IO = {
  x: 'x',
  weights: 'task_weights',
  target: (i: number) => `y${i}`,
  loss: (i: number) => `loss_${i}`,
  total: 'total_loss',
} as const;

function gemmParams(b: GraphBuilder, rng: Rng, name: string, out: number, inp: number): [string, string] {
  const bound = 1 / Math.sqrt(inp);
  const w = Array.from({ length: out * inp }, () => rng.uniform(-bound, bound));
  const bias = Array.from({ length: out }, () => rng.uniform(-bound, bound));
  return [
    b.initializer(floatTensor(`${name}.weight`, [out, inp], w), { exactName: true }),
    b.initializer(floatTensor(`${name}.bias`, [out], bias), { exactName: true }),
  ];
}

/** The shared-trunk multi-task regression graph with per-task losses and a weighted total. */
export function buildToyModel(spec: ToySpec): OnnxModel {
  const rng = new Rng(spec.seed).fork('toy-init');
  const b = new GraphBuilder({ name: 'gradnorm_toy' });
  const T = spec.scales.length;
  const x = b.input(TOY_IO.x, DataType.FLOAT, ['batch', spec.inputDim]);
  const w = b.input(TOY_IO.weights, DataType.FLOAT, [T]);
  const gemm = (input: string, name: string, out: number, inp: number) =>
    b.op('Gemm', [input, ...gemmParams(b, rng, name, out, inp)], { transB: 1 }, { name });
  const h1 = b.op('Relu', [gemm(x, 'trunk.0', spec.hidden, spec.inputDim)]);
  const h2 = b.op('Relu', [gemm(h1, 'trunk.1', spec.hidden, spec.hidden)]);
  let total: string | undefined;
  for (let i = 0; i < T; i++) {
    const y = b.input(TOY_IO.target(i), DataType.FLOAT, ['batch', spec.outputDim]);
    const d = b.op('Sub', [gemm(h2, `head.${i}`, spec.outputDim, spec.hidden), y]);
    const loss = b.op('ReduceMean', [b.op('Mul', [d, d])], { keepdims: 0 }, { outputs: [TOY_IO.loss(i)] });
    const wi = b.op('Gather', [w, b.constInt64(i, [], 'task_index')], { axis: 0 });
    const term = b.op('Mul', [loss, wi]);
    total = total === undefined ? term : b.op('Add', [total, term]);
  }
  b.op('Identity', [total!], {}, { outputs: [TOY_IO.total] });
  b.output(TOY_IO.total, DataType.FLOAT, []);
  for (let i = 0; i < T; i++) b.output(TOY_IO.loss(i), DataType.FLOAT, []);
  return b.build();
}

/** Seeded batches of the toy tasks: x ~ N(0, 1), t_i = σ_i·tanh((B + ε_i)·x). */
export class ToyData {
  private readonly rng: Rng;
  private readonly matrices: Float64Array[];

  constructor(private readonly spec: ToySpec) {
    const r = new Rng(spec.seed).fork('toy-tasks');
    const { inputDim: D, outputDim: K } = spec;
    const base = Float64Array.from({ length: K * D }, () => r.normal(0, 1 / Math.sqrt(D)));
    this.matrices = spec.scales.map(() =>
      Float64Array.from(base, (v) => v + r.normal(0, 0.35 / Math.sqrt(D))),
    );
    this.rng = new Rng(spec.seed).fork('toy-data');
  }

  /** A batch of n samples as feeds (x and every y_i). */
  batch(n: number): Record<string, HostTensor> {
    const { inputDim: D, outputDim: K } = this.spec;
    const x = Float32Array.from({ length: n * D }, () => this.rng.normal());
    const feeds: Record<string, HostTensor> = { [TOY_IO.x]: { data: x, dims: [n, D] } };
    this.spec.scales.forEach((sigma, i) => {
      const y = new Float32Array(n * K);
      const m = this.matrices[i];
      for (let s = 0; s < n; s++) {
        for (let k = 0; k < K; k++) {
          let acc = 0;
          for (let d = 0; d < D; d++) acc += m[k * D + d] * x[s * D + d];
          y[s * K + k] = sigma * Math.tanh(acc);
        }
      }
      feeds[TOY_IO.target(i)] = { data: y, dims: [n, K] };
    });
    return feeds;
  }
}
