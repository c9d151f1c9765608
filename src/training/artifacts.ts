/**
 * Training artifacts in the spirit of onnxruntime on-device training, made of standard ONNX ops only:
 * a training graph (forward + loss + gradients), an eval graph (forward + loss), an optimizer graph, a
 * fused step graph (forward + loss + backward + clipping + optimizer in one run, because with CUDA every
 * run copies all inputs and outputs across PCIe), the forward graph for inference export, and an initial
 * checkpoint. Trainable parameters become graph inputs, so they live in JS and every session shares them.
 * The builders here return new graphs (with the block layout they were built for) and change nothing
 * they are given; generateArtifacts caches the result in `outDir` (artifact-store.ts) under a content
 * hash of the model bytes and the options.
 */
import { buildGradientGraph } from '../autodiff/gradient-graph';
import { GraphError, RlpkdError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { bypassOutputCopies } from '../onnx/output-copies';
import { loadModel, modelToBytes } from '../onnx/model-io';
import { untieSharedInitializersDetailed } from '../onnx/shared-initializers';
import { classifyParameters, type ParameterPatterns } from '../analysis/parameters';
import { DataType, type Dim, type OnnxModel, type ValueInfo } from '../onnx/types';
import type { HostTensor } from '../runtime/tensors';
import { contentHash, stableJson } from '../util/content-hash';
import { initialCheckpoint, type CheckpointState } from './checkpoint';
import { foldFrozenAffine, unfoldFrozenAffine } from './fold-frozen-affine';
import { embedParameters, moveInitializersToInputs, pruneToOutputs } from './graph-edit';
import { appendLoss, type LossSpec } from './losses';
import {
  GRAD_NORM_OUTPUT,
  OPTIMIZER_INPUTS,
  appendGlobalNorm,
  appendGlobalNormClip,
  appendOptimizerUpdate,
  buildOptimizerModel,
  optimizerStateNames,
  resolveOptimizerConfig,
  type OptimizerConfig,
  type ResolvedOptimizerConfig,
  type UpdateSlot,
} from './optimizers';
import { ARTIFACTS_FORMAT_VERSION, ArtifactStore, artifactModel, type ArtifactGraph } from './artifact-store';

export {
  ARTIFACTS_FORMAT_VERSION,
  ARTIFACT_FILES,
  ArtifactStore,
  artifactModel,
  artifactPath,
  loadArtifacts,
  readCheckpoint,
  type ArtifactGraph,
} from './artifact-store';

export interface ArtifactOptions {
  /**
   * Initializers to train, by exact name. Default: what `classifyParameters` (src/analysis) picks — float
   * initializers in Conv/ConvTranspose/Gemm/MatMul weight and bias slots and MatMul+Add biases — adjusted
   * by `parameters` patterns.
   */
  trainable?: readonly string[];
  /** Glob or /regex/ patterns adding to or freezing from the default trainable set (ignored with `trainable`). */
  parameters?: ParameterPatterns;
  loss: LossSpec;
  optimizer: OptimizerConfig;
  /** Folder for the files and the cache; without it artifacts stay in memory. */
  outDir?: string;
  /** Give each consumer of a shared initializer its own parameter (default true). */
  untieSharedInitializers?: boolean;
  /** Forward outputs to return from train/eval steps besides the loss outputs. */
  keepOutputs?: readonly string[];
  /** Concrete or symbolic shapes for graph inputs whose shapes the model leaves open. */
  inputShapes?: Record<string, Dim[]>;
  /** Also build the fused step graph and the gradient step graph for host-side updates (default true). */
  fused?: boolean;
  /** Extra text mixed into the cache key (e.g. a version of custom code the graphs depend on). */
  cacheKey?: string;
  /**
   * Fold constant per-channel Mul/Add after trainable Convs (exported FrozenBatchNorm) into the Conv's
   * weight and bias (default true; see src/training/fold-frozen-affine.ts).
   */
  foldFrozenAffine?: boolean;
  /**
   * Also build the gradient step graph that returns ‖∇_W L_l‖² of each listed loss L_l at the one parameter
   * W, from the same forward pass as the step (GradNorm's measurement; needs `fused`). The losses are step
   * outputs of the loss (e.g. per-level losses); W is a trainable parameter they reach.
   */
  levelGradientNorms?: { losses: readonly string[]; parameter: string };
}

/** What the TrainingSession needs to know about the artifacts (written as manifest.json). */
export interface ArtifactManifest {
  format: number;
  /** Content hash of the model bytes and the options. */
  hash: string;
  /** Trainable parameters in feed order. */
  parameters: { name: string; dims: number[] }[];
  /** Parameter → training-graph output holding its gradient. */
  gradients: Record<string, string>;
  /** Non-parameter inputs of the training graph (data, targets, teacher features, mask, weights). */
  inputs: ValueInfo[];
  /** Inputs of the eval graph besides the parameters. */
  evalInputs: ValueInfo[];
  /** The scalar loss output. */
  loss: string;
  /** Outputs train/eval/fused steps return: the loss first, then per-level losses etc., then keepOutputs. */
  stepOutputs: string[];
  /** The original model's outputs (what exportModelForInference keeps by default). */
  modelOutputs: ValueInfo[];
  optimizer: ResolvedOptimizerConfig;
  /** Copies made by untying shared initializers: new parameter name → the initializer it copies. */
  untied: Record<string, string>;
  /** Files present in the folder, by graph. */
  files: Partial<Record<ArtifactGraph | 'checkpoint', string>>;
  /** Flat parameter/state blocks of the fused step graph (present when it was built). */
  fusedLayout?: FusedLayout;
  /** The level-norm step graph's extra outputs: `outputs[l]` = ‖∇_parameter losses[l]‖² (when built). */
  levelGradientNorms?: { parameter: string; losses: string[]; outputs: string[] };
}

/** Artifacts in memory (fresh) or on disk (models read lazily by path). */
export interface TrainingArtifacts {
  manifest: ArtifactManifest;
  /** Folder holding the files (when written or loaded from disk). */
  dir?: string;
  /** Graphs held in memory; absent ones are read from `dir`. */
  models: Partial<Record<ArtifactGraph, OnnxModel>>;
  /**
   * The initial checkpoint (parameters from the model, optimizer state zero), held when the artifacts were
   * built in this process. Artifacts opened from a folder leave it there: readCheckpoint() reads it.
   */
  checkpoint?: CheckpointState;
  /** True when generateArtifacts found them in the cache. */
  cached?: boolean;
}

/** Artifacts just built in this process: their initial checkpoint is in memory. */
export type BuiltArtifacts = TrainingArtifacts & { checkpoint: CheckpointState };

/** The graphs of a set of artifacts without their initial checkpoint (what a session keeps once started). */
export type ArtifactGraphs = Omit<TrainingArtifacts, 'checkpoint' | 'cached'>;

/** `artifacts`' manifest, folder and in-memory graphs, without touching the (possibly lazy) checkpoint. */
export function artifactGraphs(artifacts: ArtifactGraphs): ArtifactGraphs {
  return {
    manifest: artifacts.manifest,
    models: artifacts.models,
    ...(artifacts.dir !== undefined ? { dir: artifacts.dir } : {}),
  };
}

/** The cache key: sha-256 of the model bytes, the options that shape the graphs and the format version. */
export function artifactsHash(modelBytes: Uint8Array, options: ArtifactOptions): string {
  return contentHash([
    modelBytes,
    stableJson({
      format: ARTIFACTS_FORMAT_VERSION,
      trainable: options.trainable ? [...options.trainable] : null,
      parameters: options.parameters ?? null,
      loss: options.loss,
      optimizer: resolveOptimizerConfig(options.optimizer),
      untie: options.untieSharedInitializers ?? true,
      keepOutputs: options.keepOutputs ?? [],
      inputShapes: options.inputShapes ?? null,
      fused: options.fused ?? true,
      cacheKey: options.cacheKey ?? null,
      foldFrozenAffine: options.foldFrozenAffine ?? true,
      levelGradientNorms: options.levelGradientNorms ?? null,
    }),
  ]);
}

/** Checks an explicit trainable list against the (untied) model; a name untying replaced stands for its copies. */
function resolveExplicitTrainable(
  model: OnnxModel,
  requested: readonly string[],
  untied: Record<string, string>,
): string[] {
  const g = model.graph;
  const byName = new Map(g.initializers.map((t) => [t.name, t]));
  const names: string[] = [];
  const unknown: string[] = [];
  for (const name of requested) {
    const t = byName.get(name);
    if (!t) {
      // A name that untying replaced by copies stands for all of them.
      const copies = Object.entries(untied)
        .filter(([, from]) => from === name)
        .map(([copy]) => copy);
      if (copies.length) names.push(...copies.filter((c) => byName.has(c)));
      else unknown.push(name);
      continue;
    }
    names.push(name);
  }
  if (unknown.length) {
    throw new RlpkdError(
      `trainable parameters not found among the initializers of graph '${g.name}': ${unknown.slice(0, 6).join(', ')}`,
      { hint: '`rlpkd inspect` lists the parameters' },
    );
  }
  return [...new Set(names)];
}

function toHost(model: OnnxModel, names: readonly string[]): Record<string, HostTensor> {
  const byName = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const out: Record<string, HostTensor> = {};
  for (const n of names) {
    const t = byName.get(n)!;
    out[n] = { data: (t.data as Float32Array).slice(), dims: [...t.dims] };
  }
  return out;
}

function checkFreeName(b: GraphBuilder, name: string, what: string): void {
  if (b.has(name)) {
    throw new GraphError(
      `${what}: the model already uses the name '${name}', which the fused step graph needs`,
    );
  }
}

/**
 * One contiguous block of parameters the fused step updates as a single flat tensor: the session keeps
 * each parameter (and its optimizer state) as a view into the block, feeds the views to the forward and
 * backward nodes and the whole block to the update, which writes the new values back into the same memory.
 */
export interface FusedParameterGroup {
  /** Parameters in block order (manifest order). */
  params: string[];
  /** Total float32 elements. */
  size: number;
  /** Graph input holding the flat parameter block; its update comes out as `updatedName(input)`. */
  input: string;
  /** Optimizer state name (exp_avg, ...) → graph input holding that state's flat block. */
  stateInputs: Record<string, string>;
}

/** How the fused step graph lays out parameters and optimizer state (absent: per-parameter inputs). */
export interface FusedLayout {
  groups: FusedParameterGroup[];
  /**
   * Gradient output → its shape in the gradient step graph where that differs from the
   * parameter's (same elements, same order: the final Reshape is left out, see buildGradientStepModel).
   */
  gradientShapes?: Record<string, number[]>;
}

/** What a graph builder returns: the new graph and the block layout it was built for (inputs are not changed). */
interface BuiltGraph {
  model: OnnxModel;
  layout: FusedLayout;
}

/** Name of the flat block input of fused parameter group `k`. */
function flatInputName(k: number, what: string): string {
  return `optimizer.flat${k}.${what}`;
}

/**
 * Largest flat block (float32 elements) of the fused update. The update's temporaries are block-sized,
 * so blocks of a few MB keep its working memory small (one 107 MB block for a ResNet-50 needs ~5 such
 * temporaries at once) while a few long elementwise ops per block cost next to nothing per op.
 */
export const FUSED_BLOCK_ELEMENTS = 1 << 22;

/**
 * Groups the parameters that get gradients into flat blocks of at most FUSED_BLOCK_ELEMENTS (a larger
 * parameter gets a block of its own), never mixing parameters with and without weight decay, so one
 * update per block applies the right decay.
 */
export function fusedLayout(
  parameters: readonly { name: string; dims: readonly number[] }[],
  gradients: Readonly<Record<string, string>>,
  optimizer: ResolvedOptimizerConfig,
  blockElements = FUSED_BLOCK_ELEMENTS,
): FusedLayout {
  const noDecay = new Set(optimizer.noWeightDecay);
  const withGrad = parameters.filter((p) => gradients[p.name]);
  const parts = [withGrad.filter((p) => !noDecay.has(p.name)), withGrad.filter((p) => noDecay.has(p.name))];
  const groups: FusedParameterGroup[] = [];
  const close = (params: string[], size: number): void => {
    if (params.length === 0) return;
    const k = groups.length;
    const stateInputs: Record<string, string> = {};
    for (const st of optimizerStateNames(optimizer)) stateInputs[st] = flatInputName(k, st);
    groups.push({ params, size, input: flatInputName(k, 'param'), stateInputs });
  };
  for (const part of parts) {
    let params: string[] = [];
    let size = 0;
    for (const p of part) {
      const n = p.dims.reduce((a, d) => a * d, 1);
      if (size > 0 && size + n > blockElements) {
        close(params, size);
        params = [];
        size = 0;
      }
      params.push(p.name);
      size += n;
    }
    close(params, size);
  }
  return { groups };
}

/** Each group's gradients reshaped to 1-D and concatenated in block order (one tensor per group). */
function appendFlatGradients(
  b: GraphBuilder,
  layout: FusedLayout,
  gradient: (parameter: string) => string,
): string[] {
  const flat = b.constInt64([-1], [1], 'optimizer/flat_shape');
  return layout.groups.map((group, k) => {
    const parts = group.params.map((p) => b.op('Reshape', [gradient(p), flat]));
    return parts.length === 1
      ? parts[0]
      : b.op('Concat', parts, { axis: 0 }, { name: `optimizer/flat${k}_grad` });
  });
}

/**
 * The gradient step graph for host-side updates: the training graph plus the global gradient norm,
 * computed exactly as the fused graph computes it, so the host update clips and steps bit-identically.
 * Each gradient stays a graph output of its own: the session binds it to its slice of the gradient
 * block, so onnxruntime writes it there as soon as it is computed instead of holding every gradient
 * until a final concatenation (~100 MB less at the peak for a ResNet-50-FPN).
 */
function buildGradientStepModel(
  training: OnnxModel,
  manifest: Pick<ArtifactManifest, 'gradients'>,
  layout: FusedLayout,
): BuiltGraph {
  const b = GraphBuilder.fromModel(training);
  b.name = `${training.graph.name}_gradient_step`;
  const members = layout.groups.flatMap((group) => group.params);
  const norm = appendGlobalNorm(
    b,
    members.map((p) => manifest.gradients[p]),
  );
  b.output(b.op('Identity', [norm], {}, { outputs: [GRAD_NORM_OUTPUT] }), DataType.FLOAT, []);
  const bypassed = bypassOutputCopies(b.build(), new Set(members.map((p) => manifest.gradients[p])));
  return { model: bypassed.model, layout: { ...layout, gradientShapes: bypassed.reshaped } };
}

/**
 * The gradient step graph plus ‖∇_W L_l‖² (float64) for each level loss: one gradient graph with the training loss
 * and one target per level loss (the autodiff shares the forward pass among them), each level's gradient at
 * W reduced to its squared norm in the graph, so only scalars leave the run.
 */
function buildLevelNormStepModel(
  evalModel: OnnxModel,
  manifest: ArtifactManifest,
  options: ArtifactOptions,
  targetParams: readonly string[],
  spec: { losses: readonly string[]; parameter: string },
): { model: OnnxModel; info: NonNullable<ArtifactManifest['levelGradientNorms']> } {
  if (!manifest.gradients[spec.parameter]) {
    throw new RlpkdError(
      `levelGradientNorms: '${spec.parameter}' is not a trainable parameter the loss reaches`,
      {
        hint: `pick one of: ${Object.keys(manifest.gradients).slice(0, 5).join(', ')}, ...`,
      },
    );
  }
  for (const l of spec.losses) {
    if (!manifest.stepOutputs.includes(l)) {
      throw new RlpkdError(`levelGradientNorms: '${l}' is not an output of the loss`, {
        hint: `the loss outputs are ${manifest.stepOutputs.join(', ')}`,
      });
    }
  }
  const grad = buildGradientGraph(evalModel, {
    targets: [
      { loss: manifest.loss, wrt: [...targetParams] },
      ...spec.losses.map((loss, l) => ({ loss, wrt: [spec.parameter], suffix: `level${l}` })),
    ],
    keepOutputs: manifest.stepOutputs,
    ...(options.inputShapes ? { inputShapes: options.inputShapes } : {}),
  });
  for (const g of grad.gradients) {
    if (g.target === 0 && manifest.gradients[g.parameter] !== g.output) {
      throw new GraphError(
        `internal: the level-norm step graph names the gradient of '${g.parameter}' differently`,
      );
    }
  }
  const b = GraphBuilder.fromModel(grad.model);
  b.name = `${evalModel.graph.name}_level_norms`;
  const levelGrads = spec.losses.map(
    (_, l) => grad.gradients.find((g) => g.target === l + 1 && g.parameter === spec.parameter)!.output,
  );
  const drop = new Set(levelGrads);
  const kept = b.outputs.filter((o) => !drop.has(o.name));
  b.outputs.length = 0;
  b.outputs.push(...kept);
  const outputs = levelGrads.map((g, l) => {
    const name = `gradnorm.level${l}.sq`;
    checkFreeName(b, name, 'level-norm step graph');
    // Summed in float64, as the GradNorm probe sums on the host (float32 sums drift with the length).
    const wide = b.op('Cast', [g], { to: DataType.DOUBLE });
    b.op('ReduceSumSquare', [wide], { keepdims: 0 }, { outputs: [name] });
    b.output(name, DataType.DOUBLE, []);
    return name;
  });
  // The same gradient step as buildGradientStepModel makes (its layout shapes are the manifest's already).
  const { model, layout } = buildGradientStepModel(b.build(), manifest, manifest.fusedLayout!);
  if (JSON.stringify(layout.gradientShapes) !== JSON.stringify(manifest.fusedLayout!.gradientShapes)) {
    throw new GraphError('internal: the level-norm step graph shapes its gradient outputs differently');
  }
  return { model, info: { parameter: spec.parameter, losses: [...spec.losses], outputs } };
}

/**
 * Builds the fused step graph from the training graph: the gradients of each parameter group are
 * concatenated into one flat tensor, clipped by the global norm and fed with the group's flat parameter
 * and state blocks to one optimizer update, so the update is a few elementwise ops over long tensors
 * instead of a dozen per parameter.
 */
function buildFusedModel(
  training: OnnxModel,
  manifest: Pick<ArtifactManifest, 'parameters' | 'gradients' | 'stepOutputs'>,
  optimizer: ResolvedOptimizerConfig,
  layout: FusedLayout,
): BuiltGraph {
  const b = GraphBuilder.fromModel(training);
  b.name = `${training.graph.name}_fused_step`;
  const gradOutputs = new Set(Object.values(manifest.gradients));
  const kept = b.outputs.filter((o) => !gradOutputs.has(o.name));
  b.outputs.length = 0;
  b.outputs.push(...kept);
  for (const name of Object.values(OPTIMIZER_INPUTS)) checkFreeName(b, name, 'fused step graph');
  const lr = b.input(OPTIMIZER_INPUTS.learningRate, DataType.FLOAT, []);
  const step = b.input(OPTIMIZER_INPUTS.step, DataType.INT64, []);
  const maxNorm = b.input(OPTIMIZER_INPUTS.maxGradNorm, DataType.FLOAT, []);
  // Clip per parameter (the norm's float32 sums stay as short as in the optimizer graph), then flatten.
  const members = layout.groups.flatMap((group) => group.params);
  const clip = appendGlobalNormClip(
    b,
    members.map((p) => manifest.gradients[p]),
    maxNorm,
  );
  const clipped = new Map(members.map((p, i) => [p, clip.grads[i]]));
  const flatGrads = appendFlatGradients(b, layout, (p) => clipped.get(p)!);
  const slots: UpdateSlot[] = layout.groups.map((group, k) => {
    checkFreeName(b, group.input, 'fused step graph');
    const param = b.input(group.input, DataType.FLOAT, [group.size]);
    const state: Record<string, string> = {};
    for (const [s, name] of Object.entries(group.stateInputs)) {
      checkFreeName(b, name, 'fused step graph');
      state[s] = b.input(name, DataType.FLOAT, [group.size]);
    }
    // The slot carries a member's name, so the update applies (or skips) weight decay for the block.
    return { name: group.params[0], param, grad: flatGrads[k], state };
  });
  const update = appendOptimizerUpdate(b, slots, optimizer, { learningRate: lr, step });
  layout.groups.forEach((group, k) => {
    b.output(update.params[k], DataType.FLOAT, [group.size]);
    for (const s of Object.keys(group.stateInputs))
      b.output(update.states[k][s], DataType.FLOAT, [group.size]);
  });
  b.output(b.op('Identity', [clip.norm], {}, { outputs: [GRAD_NORM_OUTPUT] }), DataType.FLOAT, []);
  return { model: bypassOutputCopies(b.build()).model, layout };
}

/** Builds every artifact in memory. */
function buildArtifacts(source: OnnxModel, options: ArtifactOptions, hash: string): BuiltArtifacts {
  const optimizer = resolveOptimizerConfig(options.optimizer);
  const untie = options.untieSharedInitializers ?? true;
  const untied: Record<string, string> = {};
  let base: OnnxModel;
  let trainable: string[];
  if (options.trainable) {
    const r = untie
      ? untieSharedInitializersDetailed(source, { filter: (g) => g.kind === 'parameter' })
      : { model: source, copies: [] };
    base = r.model;
    for (const c of r.copies) untied[c.name] = c.from;
    trainable = resolveExplicitTrainable(base, options.trainable, untied);
  } else {
    // The same classification (and untying) `rlpkd inspect` reports, so names and counts agree.
    const c = classifyParameters(source, { untie, ...(options.parameters ?? {}) });
    base = c.model;
    for (const copy of c.untiedCopies) untied[copy.name] = copy.from;
    trainable = c.trainable.map((e) => e.name);
  }
  if (trainable.length === 0) {
    throw new RlpkdError(`graph '${source.graph.name}' has no parameters to train`, {
      hint: 'pass the trainable initializers (trainable: [...]) or patterns (parameters: { trainable: [...] })',
    });
  }
  const byName = new Map(base.graph.initializers.map((t) => [t.name, t]));
  const notFloat32 = trainable.filter((n) => byName.get(n)!.dataType !== DataType.FLOAT);
  if (notFloat32.length) {
    throw new RlpkdError(
      `trainable parameters must be float32; not so: ${notFloat32
        .slice(0, 5)
        .map((n) => `'${n}' (${DataType[byName.get(n)!.dataType]})`)
        .join(', ')}`,
      { hint: 'convert the model to float32, or freeze those initializers' },
    );
  }
  const initialParams = toHost(base, trainable);
  if (options.foldFrozenAffine ?? true) base = foldFrozenAffine(base, new Set(trainable)).model;
  const forward = moveInitializersToInputs(base, trainable);
  const modelOutputs = forward.graph.outputs.map((o) => ({ ...o }));

  // Eval graph: forward + loss, outputs [loss, extras..., keepOutputs...], pruned to what those need.
  const b = GraphBuilder.fromModel(forward);
  const loss = appendLoss(b, forward, options.loss);
  const keep = [...(options.keepOutputs ?? [])];
  for (const k of keep) {
    if (!modelOutputs.some((o) => o.name === k) && !b.has(k)) {
      throw new GraphError(`keepOutputs: '${k}' is not a tensor of graph '${forward.graph.name}'`);
    }
  }
  const lossInfo: ValueInfo = { name: loss.loss, dataType: DataType.FLOAT, shape: [] };
  const stepOutputInfos: ValueInfo[] = [lossInfo, ...loss.extraOutputs];
  for (const k of keep) {
    if (!stepOutputInfos.some((o) => o.name === k)) {
      stepOutputInfos.push(modelOutputs.find((o) => o.name === k) ?? { name: k, dataType: DataType.FLOAT });
    }
  }
  const evalModel = pruneToOutputs(b.build(), stepOutputInfos);
  const stepOutputs = stepOutputInfos.map((o) => o.name);

  // Training graph: the autodiff adds `<param>_grad` outputs.
  // Parameters the loss does not read at all (another head, an undistilled level) get no gradient.
  const targetParams = trainable.filter((p) => evalModel.graph.inputs.some((v) => v.name === p));
  const grad = buildGradientGraph(evalModel, {
    targets: [{ loss: loss.loss, wrt: targetParams }],
    keepOutputs: stepOutputs,
    ...(options.inputShapes ? { inputShapes: options.inputShapes } : {}),
  });
  const gradients: Record<string, string> = {};
  for (const g of grad.gradients) gradients[g.parameter] = g.output;
  const training = grad.model;

  const paramSet = new Set(trainable);
  const nonParamInputs = (m: OnnxModel): ValueInfo[] =>
    m.graph.inputs.filter((v) => !paramSet.has(v.name)).map((v) => ({ ...v }));
  const parameters = trainable.map((name) => ({ name, dims: [...initialParams[name].dims] }));
  const manifest: ArtifactManifest = {
    format: ARTIFACTS_FORMAT_VERSION,
    hash,
    parameters,
    gradients,
    inputs: nonParamInputs(training),
    evalInputs: nonParamInputs(evalModel),
    loss: loss.loss,
    stepOutputs,
    modelOutputs,
    optimizer,
    untied,
    files: {},
  };
  const withGrad = parameters.filter((p) => gradients[p.name]);
  const models: Partial<Record<ArtifactGraph, OnnxModel>> = {
    training,
    eval: evalModel,
    optimizer: buildOptimizerModel(withGrad, optimizer, {
      opset: Math.max(13, forward.opsetImports.find((o) => o.domain === '')?.version ?? 17),
      gradName: (p) => gradients[p],
    }),
    forward,
  };
  if (options.fused ?? true) {
    const layout = fusedLayout(parameters, gradients, optimizer);
    models.fused = buildFusedModel(training, manifest, optimizer, layout).model;
    const gradientStep = buildGradientStepModel(training, manifest, layout);
    models.gradientStep = gradientStep.model;
    manifest.fusedLayout = gradientStep.layout;
    if (options.levelGradientNorms) {
      const built = buildLevelNormStepModel(
        evalModel,
        manifest,
        options,
        targetParams,
        options.levelGradientNorms,
      );
      models.levelNormStep = built.model;
      manifest.levelGradientNorms = built.info;
    }
  } else if (options.levelGradientNorms) {
    throw new RlpkdError('levelGradientNorms needs the fused step graphs', { hint: 'leave fused at true' });
  }
  return { manifest, models, checkpoint: initialCheckpoint(initialParams, optimizer) };
}

/**
 * Generates (or finds in `outDir`'s cache) the training, eval, optimizer and fused step graphs plus the
 * initial checkpoint for `model` (an OnnxModel or a path).
 */
export function generateArtifacts(model: OnnxModel | string, options: ArtifactOptions): TrainingArtifacts {
  const source = typeof model === 'string' ? loadModel(model) : model;
  const hash = artifactsHash(modelToBytes(source), options);
  const store = options.outDir ? new ArtifactStore(options.outDir) : undefined;
  if (store) {
    const existing = store.readManifest();
    if (existing?.hash === hash && existing.format === ARTIFACTS_FORMAT_VERSION) {
      try {
        return { ...store.open(), cached: true };
      } catch {
        // incomplete or damaged: rebuild below
      }
    }
  }
  const built = buildArtifacts(source, options, hash);
  return { ...(store ? store.write(built) : built), cached: false };
}

/**
 * The trained model as a plain ONNX graph: the forward graph (of `source`: artifacts, or any model whose
 * parameters are graph inputs or initializers) with `params` embedded as initializers, pruned to
 * `outputs` (default: the original model's outputs). From artifacts, frozen affines folded into Convs
 * for training are unfolded again (the model's own structure and parameter names come back).
 */
export function exportModelForInference(
  source: ArtifactGraphs | OnnxModel,
  params: Record<string, HostTensor>,
  options: { outputs?: readonly string[] } = {},
): OnnxModel {
  if ('graph' in source) {
    const outputs = options.outputs
      ? options.outputs.map((o) => source.graph.outputs.find((m) => m.name === o) ?? o)
      : source.graph.outputs;
    return pruneToOutputs(embedParameters(source, params), outputs);
  }
  const forward = artifactModel(source, 'forward');
  const missing = source.manifest.parameters.filter((p) => !(p.name in params)).map((p) => p.name);
  if (missing.length) {
    throw new RlpkdError(
      `exportModelForInference: no values for parameters ${missing.slice(0, 5).join(', ')}`,
    );
  }
  // The training graph's frozen-affine folds are undone: the export has the source model's structure.
  const embedded = unfoldFrozenAffine(embedParameters(forward, params)).model;
  const outputs = options.outputs
    ? options.outputs.map((o) => source.manifest.modelOutputs.find((m) => m.name === o) ?? o)
    : source.manifest.modelOutputs;
  return pruneToOutputs(embedded, outputs);
}
