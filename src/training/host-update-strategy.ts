/**
 * Updates on the host: the gradient step graph writes each gradient into its slice of the parameter
 * store's gradient blocks and returns the global norm; the WebAssembly kernels then clip and update the
 * blocks in place with the scalars and float32 operation order of the fused graph, so the result is
 * bit-identical to it (see host-update.ts). optimizerStep runs the kernels on the accumulated gradients.
 */
import { RlpkdError } from '../errors';
import type { HostTensor } from '../runtime/tensors';
import {
  HostUpdateKernels,
  adamwUpdateScalars,
  clipCoefficient,
  sgdUpdateScalars,
  type HostUpdateMemory,
} from './host-update';
import { GRAD_NORM_OUTPUT } from './optimizers';
import {
  pickStepOutputs,
  runUpdating,
  type FusedUpdate,
  type StepEnvironment,
  type UpdateStrategy,
} from './update-strategy';

/** Host-side updates (see the module doc). */
export class HostUpdateStrategy implements UpdateStrategy {
  private readonly kernels: HostUpdateKernels;
  /** False for artifacts without the gradient step graph: then there is no fused step at all. */
  private readonly hasGradientStep: boolean;

  constructor(
    private readonly env: StepEnvironment,
    memory: HostUpdateMemory,
    artifactsHave: (graph: 'gradientStep' | 'levelNormStep') => boolean,
  ) {
    this.kernels = HostUpdateKernels.create(memory);
    this.hasGradientStep = artifactsHave('gradientStep');
    this.measuresLevelGradientNorms =
      this.hasGradientStep && Boolean(env.manifest.levelGradientNorms && artifactsHave('levelNormStep'));
  }

  readonly measuresLevelGradientNorms: boolean;

  get fusedStepLocation(): 'host' | 'graph' {
    // Without a gradient step graph a fused step would need the fused graph (which such artifacts lack).
    return this.hasGradientStep ? 'host' : 'graph';
  }

  async applyGradients(step: number, learningRate: number): Promise<void> {
    this.update(step, learningRate, 1);
  }

  async fusedStep(
    feeds: Record<string, HostTensor>,
    step: number,
    learningRate: number,
    maxGradNorm: number,
    levelNorms: boolean,
  ): Promise<FusedUpdate> {
    const { manifest, store } = this.env;
    const session = await this.env.graph(levelNorms ? 'levelNormStep' : 'gradientStep');
    const normOutputs = levelNorms ? manifest.levelGradientNorms!.outputs : [];
    const into: Record<string, HostTensor> = {};
    for (const [param, view] of store.gradientViews()) {
      const name = manifest.gradients[param];
      into[name] = { data: view, dims: manifest.fusedLayout?.gradientShapes?.[name] ?? store.dimsOf(param) };
    }
    const fetches = [...manifest.stepOutputs, GRAD_NORM_OUTPUT, ...normOutputs];
    const out = await runUpdating(session, this.env.feeds(session, feeds, {}, 'fusedStep'), into, fetches);
    store.gradientsWritten();
    const gradNorm = (out[GRAD_NORM_OUTPUT].data as Float32Array)[0];
    this.update(step, learningRate, clipCoefficient(gradNorm, maxGradNorm));
    const result: FusedUpdate = { outputs: pickStepOutputs(manifest, out), gradNorm };
    if (levelNorms) result.levelGradientNorms = normOutputs.map((o) => Math.sqrt(levelNormSquare(out[o], o)));
    return result;
  }

  /** Updates every block in place from its gradient (`gradScale` multiplies the gradients first). */
  private update(step: number, learningRate: number, gradScale: number): void {
    const config = this.env.manifest.optimizer;
    const noDecay = new Set(config.noWeightDecay);
    for (const block of this.env.store.blocks) {
      const decays = !noDecay.has(block.group.params[0]);
      if (config.type === 'adamw') {
        const s = adamwUpdateScalars(config, step, learningRate, gradScale, decays);
        this.kernels.adamw(block.params, block.grad!, block.state.exp_avg, block.state.exp_avg_sq, s);
      } else {
        const s = sgdUpdateScalars(config, step, learningRate, gradScale, decays);
        this.kernels.sgd(
          block.params,
          block.grad!,
          config.momentum > 0 ? block.state.momentum_buffer : null,
          s,
        );
      }
    }
  }
}

/** A level-norm output: ‖∇_W L_l‖², summed in float64 by the graph (see buildLevelNormStepModel). */
function levelNormSquare(t: HostTensor, name: string): number {
  if (!(t.data instanceof Float64Array) || t.data.length !== 1) {
    throw new RlpkdError(`level-norm step graph: '${name}' is not a float64 scalar`, {
      hint: 'the artifacts may be stale: regenerate them',
    });
  }
  return t.data[0];
}
