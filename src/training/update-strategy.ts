/**
 * How a TrainingSession updates its parameters, chosen once when it is created (onnxruntime-common's
 * interface/handler split): on the host with WebAssembly kernels after the gradient step graph
 * (host-update-strategy.ts), or in the graphs: the fused step graph and the optimizer graph
 * (graph-update-strategy.ts). The session keeps the API, feeds and locking; a strategy only updates.
 */
import { RlpkdError } from '../errors';
import { collectGarbage } from '../runtime/session';
import type { RunnableGraph } from '../runtime/choose-runtime';
import type { HostTensor } from '../runtime/tensors';
import type { ArtifactGraph, ArtifactManifest } from './artifacts';
import { HostUpdateMemory, hostUpdateSupported } from './host-update';
import { optimizerStateNames } from './optimizers';
import type { ParameterStore } from './parameter-store';
import { float32Data } from './tensor-checks';

/** Parameter bytes updated per run above which a forced garbage collection pays for itself. */
export const GC_THRESHOLD_BYTES = 32 * 1024 * 1024;

/** What a strategy may use of its session. */
export interface StepEnvironment {
  readonly manifest: ArtifactManifest;
  readonly store: ParameterStore;
  /** Opens (once) the session of one artifact graph. */
  graph(name: ArtifactGraph): Promise<RunnableGraph>;
  /** Feeds for one run: the user's data, the parameters the graph reads and `extra`. */
  feeds(
    session: RunnableGraph,
    user: Record<string, HostTensor>,
    extra: Record<string, HostTensor>,
    what: string,
  ): Record<string, HostTensor>;
}

/** What one fused step computed (the session adds step and learning rate). */
export interface FusedUpdate {
  outputs: Record<string, HostTensor>;
  gradNorm: number;
  levelGradientNorms?: number[];
}

/** One way of updating parameters and optimizer state (see the module doc). */
export interface UpdateStrategy {
  /** Where fusedStep updates. */
  readonly fusedStepLocation: 'host' | 'graph';
  /** True when fusedStep can also measure ‖∇_W L_l‖ per level loss. */
  readonly measuresLevelGradientNorms: boolean;
  /** Updates from the store's (already clipped) gradients as update number `step`. */
  applyGradients(step: number, learningRate: number): Promise<void>;
  /** Forward, backward, clipping to `maxGradNorm` and update as update number `step`. */
  fusedStep(
    feeds: Record<string, HostTensor>,
    step: number,
    learningRate: number,
    maxGradNorm: number,
    levelNorms: boolean,
  ): Promise<FusedUpdate>;
}

/** Whether to update on the host (TrainingSessionOptions.optimizerOnHost) and where the graphs run. */
export interface HostUpdateRequest {
  /** true: must update on the host; false: never; undefined: where it pays (the graphs run on the CPU). */
  requested?: boolean;
  /** Where the session's graphs run (asked only when `requested` is undefined). */
  device: () => 'cpu' | 'cuda' | 'webgpu' | 'wasm';
}

/**
 * The WebAssembly memory for host-side updates of `manifest`'s flat blocks, or undefined when the graphs
 * update. Asking for host updates where they cannot work is an error naming the reason; by default a
 * model too large for one WebAssembly memory quietly updates in the graphs.
 */
export function hostUpdateMemory(
  manifest: ArtifactManifest,
  blockElements: number,
  request: HostUpdateRequest,
): HostUpdateMemory | undefined {
  const { requested } = request;
  if (requested === false) return undefined;
  if (!hostUpdateSupported()) {
    if (requested) {
      throw new RlpkdError('optimizerOnHost: this JavaScript engine has no WebAssembly SIMD', {
        hint: 'leave optimizerOnHost unset',
      });
    }
    return undefined;
  }
  if (requested === undefined && request.device() !== 'cpu') return undefined;
  const slots = 2 + optimizerStateNames(manifest.optimizer).length; // parameters, gradient, states
  try {
    return HostUpdateMemory.create(blockElements * slots);
  } catch (err) {
    if (requested) throw err;
    return undefined; // too large for one WebAssembly memory: the update graphs update instead
  }
}

/** The manifest's step outputs (losses, level distances) of one run's outputs. */
export function pickStepOutputs(
  manifest: ArtifactManifest,
  out: Record<string, HostTensor>,
): Record<string, HostTensor> {
  const picked: Record<string, HostTensor> = {};
  for (const n of manifest.stepOutputs) picked[n] = out[n];
  return picked;
}

/**
 * Runs a graph whose `into` outputs are the new values of tensors it reads: written in place where the
 * runtime supports it, else fetched and copied over.
 */
export async function runUpdating(
  session: RunnableGraph,
  feeds: Record<string, HostTensor>,
  into: Record<string, HostTensor>,
  fetches: readonly string[],
): Promise<Record<string, HostTensor>> {
  if (session.runInto) {
    // The previous update's output copies are unreachable by now: free them before this run allocates.
    // Only worth a full collection when the copies are big; for small models it would dominate the step.
    let bytes = 0;
    for (const t of Object.values(into)) bytes += t.data.byteLength;
    if (bytes >= GC_THRESHOLD_BYTES) collectGarbage();
    return session.runInto(feeds, into, fetches);
  }
  const out = await session.run(feeds, [...fetches, ...Object.keys(into)]);
  for (const [name, target] of Object.entries(into)) {
    (target.data as Float32Array).set(float32Data(out[name], `updated '${name}'`));
  }
  return out;
}
