/**
 * Updates in the graphs: optimizerStep feeds the accumulated gradients, parameters and optimizer state to
 * the optimizer graph; fusedStep runs the fused step graph (forward, backward, clipping and the update of
 * each flat block in one run, for providers where every run's transfers dominate). Both write the new
 * values back into the parameter store's memory.
 */
import type { HostTensor } from '../runtime/tensors';
import {
  GRAD_NORM_OUTPUT,
  OPTIMIZER_INPUTS,
  optimizerStateNames,
  stateTensorName,
  updatedName,
} from './optimizers';
import {
  pickStepOutputs,
  runUpdating,
  type FusedUpdate,
  type StepEnvironment,
  type UpdateStrategy,
} from './update-strategy';

/** The learning-rate and step inputs of the update graphs. */
function scalarFeeds(step: number, learningRate: number): Record<string, HostTensor> {
  return {
    [OPTIMIZER_INPUTS.learningRate]: { data: Float32Array.of(learningRate), dims: [] },
    [OPTIMIZER_INPUTS.step]: { data: BigInt64Array.of(BigInt(step)), dims: [] },
  };
}

/** Graph-side updates (see the module doc). */
export class GraphUpdateStrategy implements UpdateStrategy {
  readonly fusedStepLocation = 'graph';
  readonly measuresLevelGradientNorms = false;

  constructor(private readonly env: StepEnvironment) {}

  async applyGradients(step: number, learningRate: number): Promise<void> {
    const { manifest, store } = this.env;
    const session = await this.env.graph('optimizer');
    const extra = { ...scalarFeeds(step, learningRate), ...store.stateTensors() };
    const grads = store.gradientViews();
    const into: Record<string, HostTensor> = {};
    for (const [param, name] of Object.entries(manifest.gradients)) {
      const dims = store.dimsOf(param);
      extra[name] = { data: grads.get(param)!, dims };
      into[updatedName(param)] = { data: store.parameter(param), dims };
      for (const s of optimizerStateNames(manifest.optimizer)) {
        const key = stateTensorName(param, s);
        into[updatedName(key)] = { data: store.stateValues(key), dims };
      }
    }
    await runUpdating(session, this.env.feeds(session, {}, extra, 'optimizerStep'), into, []);
  }

  async fusedStep(
    feeds: Record<string, HostTensor>,
    step: number,
    learningRate: number,
    maxGradNorm: number,
  ): Promise<FusedUpdate> {
    const { manifest, store } = this.env;
    const session = await this.env.graph('fused');
    const extra: Record<string, HostTensor> = {
      ...scalarFeeds(step, learningRate),
      [OPTIMIZER_INPUTS.maxGradNorm]: { data: Float32Array.of(maxGradNorm), dims: [] },
    };
    // The fused graph reads and writes whole flat blocks (the parameters' views live inside them).
    const into: Record<string, HostTensor> = {};
    for (const block of store.blocks) {
      const dims = [block.group.size];
      extra[block.group.input] = { data: block.params, dims };
      into[updatedName(block.group.input)] = { data: block.params, dims };
      for (const [s, name] of Object.entries(block.group.stateInputs)) {
        extra[name] = { data: block.state[s], dims };
        into[updatedName(name)] = { data: block.state[s], dims };
      }
    }
    const fetches = [...manifest.stepOutputs, GRAD_NORM_OUTPUT];
    const out = await runUpdating(session, this.env.feeds(session, feeds, extra, 'fusedStep'), into, fetches);
    return {
      outputs: pickStepOutputs(manifest, out),
      gradNorm: (out[GRAD_NORM_OUTPUT].data as Float32Array)[0],
    };
  }
}
