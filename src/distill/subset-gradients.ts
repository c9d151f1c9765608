/**
 * Gradient graphs of the student pruned to a subset of its pyramid levels ("saved cost is saved time",
 * SPEC.md): the student graph cut to what the subset's levels need (pruneToLevels) plus the distillation
 * loss over those levels only, made into artifacts once per subset, lazily, in a folder named by the
 * subset beside the all-levels artifacts (distillerArtifactsDir, cached by content hash). Each graph runs
 * with the training session's own parameters as inputs and returns its loss outputs and the gradients of
 * the parameters it reads; the caller accumulates them into the session and takes one optimizer step.
 *
 * The subset artifacts are gradient-only: built from the student's structure with the trainable weights
 * zeroed (so their content, hence their cache key, does not change as the student trains) and with plain
 * SGD, so the checkpoint stored beside them holds no optimizer state (it is never read).
 */
import { RlpkdError } from '../errors';
import { pruneToLevels } from '../onnx/level-pruning';
import { shapeSize } from '../onnx/tensor-data';
import type { OnnxModel } from '../onnx/types';
import { withWeightsRestored } from '../onnx/weight-data';
import { createSession, type ExecutionProviderName, type GraphSession } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import {
  artifactModel,
  artifactPath,
  type ArtifactManifest,
  type TrainingArtifacts,
} from '../training/artifacts';
import { float32Data } from '../training/tensor-checks';
import type { LevelPair } from './level-matching';
import type { DistillerGraphs } from './student-distiller';

/** What the subset graphs are built from: the student graph and loss of the all-levels artifacts. */
export interface SubsetGradientOptions extends Pick<
  DistillerGraphs,
  'student' | 'imageInput' | 'pairs' | 'loss' | 'tau' | 'trainable'
> {
  /**
   * Builds the gradient-only artifacts of a subset's graphs into `dir` (or in memory): the distiller's
   * own build (distillerArtifacts with gradientsOnly), passed in so this module does not import it back.
   */
  build: (graphs: DistillerGraphs, levels: readonly string[]) => TrainingArtifacts;
  executionProvider?: ExecutionProviderName;
  intraOpNumThreads?: number;
}

/** What one subset graph computed on its images. */
export interface SubsetGradientResult {
  /** The loss outputs of the subset's distillation model (its loss, its levels' losses, per-sample). */
  outputs: Record<string, HostTensor>;
  /** Parameter → gradient, for the parameters the pruned graph reads (the graph's buffers: read them before its next run). */
  gradients: Map<string, Float32Array>;
}

interface SubsetGraph {
  session: GraphSession;
  manifest: ArtifactManifest;
  /** Gradient buffers the graph writes into (allocated once; valid until the next run). */
  gradients: Map<string, Float32Array>;
}

/** The lazily built, cached gradient graphs per level subset (see the module doc). */
export class SubsetGradientGraphs {
  private readonly graphs = new Map<string, Promise<SubsetGraph>>();
  private student: OnnxModel | undefined;

  constructor(private readonly options: SubsetGradientOptions) {}

  /** The pairs of `levels` (level names), in level order. */
  pairsOf(levels: readonly string[]): LevelPair[] {
    const pairs = this.options.pairs.filter((p) => levels.includes(p.name));
    if (pairs.length !== levels.length || pairs.length === 0) {
      throw new RlpkdError(
        `internal: '${levels.join('+')}' is not a non-empty subset of the distilled levels`,
      );
    }
    return pairs;
  }

  /**
   * Runs the gradient graph of `levels` on `feeds` (image, the subset's teacher features, its [n, |S|] mask
   * and [|S|] weights) with the parameters from `params` (views of the session's storage).
   */
  async run(
    levels: readonly string[],
    feeds: Record<string, HostTensor>,
    params: Readonly<Record<string, HostTensor>>,
  ): Promise<SubsetGradientResult> {
    const { session, manifest, gradients } = await this.graph(levels);
    const all: Record<string, HostTensor> = { ...feeds };
    for (const p of manifest.parameters) all[p.name] = params[p.name];
    const grads = Object.entries(manifest.gradients);
    const outputs: Record<string, HostTensor> = {};
    if (session.runInto) {
      // Written straight into buffers kept for the graph: no per-run allocation or copy of the gradients.
      const into: Record<string, HostTensor> = {};
      for (const [param, name] of grads) {
        into[name] = {
          data: gradients.get(param)!,
          dims: manifest.parameters.find((p) => p.name === param)!.dims,
        };
      }
      Object.assign(outputs, await session.runInto(all, into, manifest.stepOutputs));
      return { outputs, gradients };
    }
    const out = await session.run(all, [...manifest.stepOutputs, ...grads.map(([, o]) => o)]);
    for (const [param, name] of grads)
      gradients.get(param)!.set(float32Data(out[name], `gradient '${name}'`));
    for (const n of manifest.stepOutputs) outputs[n] = out[n];
    return { outputs, gradients };
  }

  /** Builds (or finds on disk) the graph of `levels` now, so a timed run does not include its build. */
  async prepare(levels: readonly string[]): Promise<void> {
    await this.graph(levels);
  }

  /** Builds (or finds on disk) the subset's artifacts once and opens its training graph. */
  private graph(levels: readonly string[]): Promise<SubsetGraph> {
    const key = levels.join('+');
    let g = this.graphs.get(key);
    if (!g) {
      g = this.open(levels);
      this.graphs.set(key, g);
      g.catch(() => this.graphs.delete(key));
    }
    return g;
  }

  private async open(levels: readonly string[]): Promise<SubsetGraph> {
    const o = this.options;
    const pairs = this.pairsOf(levels);
    this.student ??= zeroedTrainables(o.student, new Set(o.trainable));
    const pruned = pruneToLevels(
      this.student,
      pairs.map((p) => p.studentTensor),
    );
    const kept = new Set(pruned.graph.initializers.map((t) => t.name));
    const artifacts = o.build(
      {
        student: pruned,
        imageInput: o.imageInput,
        pairs,
        loss: o.loss,
        ...(o.tau !== undefined ? { tau: o.tau } : {}),
        trainable: o.trainable.filter((n) => kept.has(n)),
        optimizer: { type: 'sgd', lr: 1, momentum: 0 },
      },
      levels,
    );
    const source = artifactPath(artifacts, 'training') ?? artifactModel(artifacts, 'training');
    const session = await createSession(source, {
      ...(o.executionProvider ? { executionProvider: o.executionProvider } : {}),
      ...(o.intraOpNumThreads ? { intraOpNumThreads: o.intraOpNumThreads } : {}),
      memArena: false,
    });
    const manifest = artifacts.manifest;
    const gradients = new Map<string, Float32Array>();
    for (const p of manifest.parameters) {
      if (manifest.gradients[p.name]) gradients.set(p.name, new Float32Array(shapeSize(p.dims)));
    }
    return { session, manifest, gradients };
  }

  /** Releases every opened session. */
  async release(): Promise<void> {
    const all = [...this.graphs.values()];
    this.graphs.clear();
    for (const g of all) {
      try {
        await (await g).session.release();
      } catch {
        // a graph that failed to build has no session
      }
    }
  }
}

/**
 * The student with every trainable initializer's data zero (dims kept): the structure subset graphs are
 * built from, the same bytes whatever the student has learned.
 */
function zeroedTrainables(student: OnnxModel, trainable: ReadonlySet<string>): OnnxModel {
  const initializers = student.graph.initializers.map((t) =>
    trainable.has(t.name) ? { ...t, data: new Float32Array(shapeSize(t.dims)) } : t,
  );
  return withWeightsRestored({ ...student, graph: { ...student.graph, initializers } });
}
