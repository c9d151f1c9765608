/**
 * Micro-benchmark of the Conv gradient formulations on onnxruntime (CPU by default): the forward Conv, the
 * input gradient (ConvTranspose, or a MatMul for pointwise convs) and every weight-gradient method, each as
 * its own graph so a timing covers nothing else. The figures chose the rule's formulation.
 */
import {
  canFlip,
  convShape,
  defaultWeightGradMethod,
  emitConvInputGrad,
  emitConvWeightGrad,
  type ConvInputGradMethod,
  type ConvWeightGradMethod,
} from '../autodiff/rules/conv';
import { GradBuildState } from '../autodiff/grad-context';
import type { GradContext } from '../autodiff/types';
import { GraphBuilder } from '../onnx/graph-builder';
import type { TensorInfo } from '../onnx/shape-inference';
import { DataType, type Dim, type OnnxModel } from '../onnx/types';
import { createSession, type ExecutionProviderName, type HostTensor } from '../runtime';
import { createRng } from '../util/rng';
import { median } from './stats';

/** The conv layer to time. */
export interface ConvGradBenchOptions {
  batch?: number;
  channelsIn?: number;
  channelsOut?: number;
  size?: number;
  kernel?: number;
  stride?: number;
  /** Timed runs per graph (the median is reported). */
  runs?: number;
  warmup?: number;
  executionProvider?: ExecutionProviderName;
  /** onnxruntime intra-op threads (default: onnxruntime's choice, one per core). */
  threads?: number;
}

/** Milliseconds per run of one graph: the minimum (uncontended) and the median. */
export interface Timing {
  minMs: number;
  medianMs: number;
}

/** Timings per graph, and how far each weight-gradient method is from the im2col one. */
export interface ConvGradBenchResult {
  layer: string;
  threads: number | 'default';
  forwardMs: Timing;
  inputGradMs: Partial<Record<ConvInputGradMethod, Timing>>;
  weightGradMs: Partial<Record<ConvWeightGradMethod, Timing>>;
  /** The formulations the Conv gradient rule uses for this layer. */
  ruleChoice: { inputGrad: ConvInputGradMethod; weightGrad: ConvWeightGradMethod };
  /** max |dX_method − dX_conv-transpose| / max |dX_conv-transpose| per method. */
  inputGradAgreement: Partial<Record<ConvInputGradMethod, number>>;
  /** max |dW_method − dW_im2col| / max |dW_im2col| per method. */
  weightGradAgreement: Partial<Record<ConvWeightGradMethod, number>>;
}

const WEIGHT_METHODS: ConvWeightGradMethod[] = [
  'im2col',
  'per-tap',
  'im2col-folded',
  'im2col-gemm',
  'swapped-conv',
];

/** The timed conv layer's shapes and attributes (batch axis 'N'). */
interface ConvLayerSpec {
  attributes: { strides: number[]; pads: number[] };
  x: Dim[];
  w: Dim[];
  y: Dim[];
}

/** A graph to time: the model and its forward output and input-gradient outputs. */
interface ConvGraph {
  model: OnnxModel;
  forwardOutput: string;
  gradOutputs: (string | undefined)[];
}

/**
 * Inputs x, w and dy0, the forward Conv 'conv' and what `emit` adds through the autodiff's own
 * GradContext (what buildGradientGraph hands the Conv rule); the forward node is dropped unless
 * `keepForward`, so a timing covers only the gradient formulation.
 */
function convGradGraph(
  layer: ConvLayerSpec,
  emit: (ctx: GradContext) => (string | undefined)[],
  keepForward: boolean,
): ConvGraph {
  const b = new GraphBuilder({ name: 'conv_grad', opset: 17 });
  b.input('x', DataType.FLOAT, layer.x);
  b.input('w', DataType.FLOAT, layer.w);
  b.node('Conv', ['x', 'w'], layer.attributes, { name: 'conv', outputs: ['y'] });
  const node = b.nodes[b.nodes.length - 1];
  const dy = b.input('dy0', DataType.FLOAT, layer.y);
  const infos = new Map<string, TensorInfo>([
    ['x', { dataType: DataType.FLOAT, shape: layer.x }],
    ['w', { dataType: DataType.FLOAT, shape: layer.w }],
    ['y', { dataType: DataType.FLOAT, shape: layer.y }],
  ]);
  const state = new GradBuildState(b, b.opset, infos);
  state.namePrefix = 'conv/grad/';
  const grads = emit(state.context(node, [dy], [true, true]));
  state.namePrefix = '';
  const gradOutputs = grads.map((g, i) => {
    if (!g) return undefined;
    b.output(b.op('Identity', [g], {}, { name: `grad${i}/Identity`, outputs: [`grad${i}`] }));
    return `grad${i}`;
  });
  if (keepForward) b.output('y', DataType.FLOAT, layer.y);
  const model = b.build();
  if (!keepForward) model.graph.nodes = model.graph.nodes.filter((n) => n.name !== 'conv');
  return { model, forwardOutput: 'y', gradOutputs };
}

/** One graph to time: what to fetch, and (after timing) its per-run times and last value. */
interface Timed {
  graph: ConvGraph;
  fetch: string;
  times: number[];
  value: Float32Array;
}

/**
 * Runs every graph round-robin (one run each per round) so that load from other processes falls on all
 * formulations alike; reports the minimum (the uncontended cost) and the median.
 */
async function timeAll(
  items: Timed[],
  feeds: Record<string, HostTensor>,
  o: { runs: number; warmup: number; ep: ExecutionProviderName; threads?: number },
): Promise<void> {
  const sessions = [];
  for (const it of items) {
    const opts = { executionProvider: o.ep, ...(o.threads ? { intraOpNumThreads: o.threads } : {}) };
    sessions.push(await createSession(it.graph.model, opts));
  }
  try {
    const used = sessions.map((s) => {
      const names = new Set(s.inputNames);
      const f: Record<string, HostTensor> = {};
      for (const [k, v] of Object.entries(feeds)) if (names.has(k)) f[k] = v;
      return f;
    });
    for (let round = 0; round < o.warmup + o.runs; round++) {
      for (let i = 0; i < items.length; i++) {
        const t0 = process.hrtime.bigint();
        const out = await sessions[i].run(used[i], [items[i].fetch]);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (round >= o.warmup) items[i].times.push(ms);
        items[i].value = out[items[i].fetch].data as Float32Array;
      }
    }
  } finally {
    for (const s of sessions) await s.release();
  }
}

/** max |a − b| / max |b|. */
function relDiff(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let j = 0; j < b.length; j++) {
    num = Math.max(num, Math.abs(a[j] - b[j]));
    den = Math.max(den, Math.abs(b[j]));
  }
  return num / Math.max(den, 1e-30);
}

function stats(t: Timed): Timing {
  return { minMs: Math.min(...t.times), medianMs: median(t.times) };
}

/** Times forward, dX and each dW method for one conv layer (defaults: 3×3, 128→128, 56², batch 2). */
export async function benchConvGrad(options: ConvGradBenchOptions = {}): Promise<ConvGradBenchResult> {
  const n = options.batch ?? 2;
  const cin = options.channelsIn ?? 128;
  const cout = options.channelsOut ?? 128;
  const size = options.size ?? 56;
  const k = options.kernel ?? 3;
  const stride = options.stride ?? 1;
  const pad = Math.floor((k - 1) / 2);
  const out = Math.floor((size + 2 * pad - k) / stride) + 1;
  const timing = {
    runs: options.runs ?? 10,
    warmup: options.warmup ?? 2,
    ep: options.executionProvider ?? 'cpu',
    threads: options.threads,
  };
  const layer: ConvLayerSpec = {
    attributes: { strides: [stride, stride], pads: [pad, pad, pad, pad] },
    x: ['N', cin, size, size],
    w: [cout, cin, k, k],
    y: ['N', cout, out, out],
  };
  const rng = createRng('bench-conv-grad');
  const rand = (len: number): Float32Array => Float32Array.from({ length: len }, () => rng.uniform(-1, 1));
  const feeds: Record<string, HostTensor> = {
    x: { data: rand(n * cin * size * size), dims: [n, cin, size, size] },
    w: { data: rand(cout * cin * k * k), dims: [cout, cin, k, k] },
    dy0: { data: rand(n * cout * out * out), dims: [n, cout, out, out] },
  };
  const timed = (graph: ConvGraph, fetch: string): Timed => ({
    graph,
    fetch,
    times: [],
    value: new Float32Array(0),
  });
  const fwdGraph = convGradGraph(layer, () => [], true);
  const forward = timed(fwdGraph, fwdGraph.forwardOutput);
  const inputMethods: ConvInputGradMethod[] = ['conv-transpose'];
  if (stride === 1) inputMethods.push('flipped-conv');
  const inputs = inputMethods.map((m) => {
    const g = convGradGraph(
      layer,
      (ctx) => [emitConvInputGrad(ctx, ctx.dY[0] as string, 'w', convShape(ctx), m)],
      false,
    );
    return timed(g, g.gradOutputs[0] as string);
  });
  const weights = WEIGHT_METHODS.map((m) => {
    const g = convGradGraph(
      layer,
      (ctx) => [undefined, emitConvWeightGrad(ctx, 'x', ctx.dY[0] as string, convShape(ctx), m)],
      false,
    );
    return timed(g, g.gradOutputs[1] as string);
  });
  let ruleChoice: ConvGradBenchResult['ruleChoice'] = { inputGrad: 'conv-transpose', weightGrad: 'im2col' };
  convGradGraph(
    layer,
    (ctx) => {
      const shape = convShape(ctx);
      ruleChoice = {
        inputGrad: canFlip(shape) ? 'flipped-conv' : 'conv-transpose',
        weightGrad: defaultWeightGradMethod(shape),
      };
      return [];
    },
    false,
  );
  await timeAll([forward, ...inputs, ...weights], feeds, timing);
  const inputGradMs: ConvGradBenchResult['inputGradMs'] = {};
  const inputGradAgreement: ConvGradBenchResult['inputGradAgreement'] = {};
  inputMethods.forEach((m, i) => {
    inputGradMs[m] = stats(inputs[i]);
    inputGradAgreement[m] = relDiff(inputs[i].value, inputs[0].value);
  });
  const weightGradMs: ConvGradBenchResult['weightGradMs'] = {};
  const weightGradAgreement: ConvGradBenchResult['weightGradAgreement'] = {};
  WEIGHT_METHODS.forEach((m, i) => {
    weightGradMs[m] = stats(weights[i]);
    weightGradAgreement[m] = relDiff(weights[i].value, weights[0].value);
  });
  const forwardMs = stats(forward);
  return {
    layer: `${k}x${k} conv ${cin}->${cout}, ${size}x${size}, stride ${stride}, batch ${n}`,
    threads: options.threads ?? 'default',
    ruleChoice,
    forwardMs,
    inputGradMs,
    inputGradAgreement,
    weightGradMs,
    weightGradAgreement,
  };
}
