/**
 * The measurement GradNorm needs each step: every level loss L_l and g_l = ‖∇_W L_l‖ at the shared
 * parameter W. One gradient graph with a target per level (buildGradientGraph shares one forward pass
 * among them) over a graph whose parameters are inputs (the artifacts' eval graph), run on the current
 * parameters. The training step itself stays the engine's unchanged fused step.
 */
import { buildGradientGraph } from '../autodiff/gradient-graph';
import { RlpkdError } from '../errors';
import type { OnnxModel } from '../onnx/types';
import { createSession, type ExecutionProviderName, type GraphSession } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';

/** What the probe measures. */
export interface GradNormProbeOptions {
  /** Forward + loss graph with the trainable parameters as graph inputs (e.g. artifacts' eval graph). */
  model: OnnxModel;
  /** Scalar level-loss tensors, in level order. */
  losses: readonly string[];
  /** The shared parameter W (a graph input of `model`). */
  parameter: string;
  /** Other tensors to return (per-sample matrix, ...). */
  keepOutputs?: readonly string[];
  executionProvider?: ExecutionProviderName;
}

/** One measurement. */
export interface GradNormProbeResult {
  /** L_l per level. */
  losses: number[];
  /** ‖∇_W L_l‖₂ per level (float64 sum of squares). */
  gradNorms: number[];
  /** The kept outputs. */
  outputs: Record<string, HostTensor>;
}

function l2(data: Float32Array): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i] * data[i];
  return Math.sqrt(s);
}

/** Runs the per-level gradient graph (see module doc). */
export class GradNormProbe {
  private constructor(
    private readonly session: GraphSession,
    private readonly options: GradNormProbeOptions,
    private readonly gradOutputs: string[],
  ) {}

  /** Builds the multi-target gradient graph and opens a session on it. */
  static async create(options: GradNormProbeOptions): Promise<GradNormProbe> {
    if (!options.model.graph.inputs.some((v) => v.name === options.parameter)) {
      throw new RlpkdError(
        `GradNorm probe: '${options.parameter}' is not a graph input of '${options.model.graph.name}'`,
        { hint: 'pass a graph whose trainable parameters are inputs (the eval graph of training artifacts)' },
      );
    }
    const grad = buildGradientGraph(options.model, {
      targets: options.losses.map((loss, l) => ({ loss, wrt: [options.parameter], suffix: `level${l}` })),
      keepOutputs: [...(options.keepOutputs ?? [])],
    });
    const gradOutputs = options.losses.map(
      (_, l) => grad.gradients.find((g) => g.target === l && g.parameter === options.parameter)!.output,
    );
    const session = await createSession(grad.model, {
      ...(options.executionProvider ? { executionProvider: options.executionProvider } : {}),
    });
    return new GradNormProbe(session, options, gradOutputs);
  }

  /** Inputs the probe reads (data inputs plus every parameter). */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Measures L_l and ‖∇_W L_l‖ for the feeds (data and parameter values together). */
  async run(feeds: Record<string, HostTensor>): Promise<GradNormProbeResult> {
    const fetches = [...this.options.losses, ...this.gradOutputs, ...(this.options.keepOutputs ?? [])];
    const subset: Record<string, HostTensor> = {};
    for (const name of this.session.inputNames) {
      if (!feeds[name]) throw new RlpkdError(`GradNorm probe: missing input '${name}'`);
      subset[name] = feeds[name];
    }
    const out = await this.session.run(subset, fetches);
    const outputs: Record<string, HostTensor> = {};
    for (const k of this.options.keepOutputs ?? []) outputs[k] = out[k];
    return {
      losses: this.options.losses.map((l) => (out[l].data as Float32Array)[0]),
      gradNorms: this.gradOutputs.map((g) => l2(out[g].data as Float32Array)),
      outputs,
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
