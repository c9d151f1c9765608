/**
 * The task head's entry of a policy bundle: the head graph (src/deploy/deploy-head.ts) split by level
 * (src/heads/split-head.ts) into `head-<level>.onnx` parts and, for a summing head, `head-merge.onnx`;
 * each part's MACs (the cost model's per-node rule at batch 1), the task read off the head's outputs
 * (describeTaskModel) and the decoding settings (FCOS's test settings, src/heads/fcos-decode.ts).
 */
import { nodeCost } from '../analysis/cost-model';
import type { InputSize } from '../analysis/pyramid';
import { describeTaskModel } from '../distill/score-task-model';
import { RlpkdError } from '../errors';
import { composeTaskModel } from '../heads/compose-task-model';
import { splitHeadByLevel } from '../heads/split-head';
import type { HeadModel } from '../heads/types';
import { inferShapes } from '../onnx/shape-inference';
import type { Dim, OnnxModel } from '../onnx/types';
import type { BundleDecode, BundleFile, BundleHead, BundleHeadPart } from '../web/bundle-format';
import type { DeployHead } from './deploy-head';

/** FCOS's test settings (fcos-decode.ts defaults) and five classes for classification. */
export const DEFAULT_DECODE: Readonly<BundleDecode> = {
  scoreThreshold: 0.05,
  preNmsTopK: 1000,
  nmsIou: 0.6,
  maxDetections: 100,
  topK: 5,
};

/** A bundle level as the head needs it. */
export interface HeadBundleLevel {
  name: string;
  output: string;
  stride: number;
  /** [C, H, W] of the level's feature map. */
  shape: [number, number, number];
}

/** Writes one model into the bundle and returns its entry. */
export type WriteBundleModel = (file: string, model: OnnxModel) => BundleFile;

/** MACs of a graph for one image, its inputs at the given shapes. */
function graphMacs(model: OnnxModel, shapes: Record<string, Dim[]>): number {
  const info = inferShapes(model, shapes);
  return model.graph.nodes.reduce((n, node) => n + nodeCost(node, info).macs, 0);
}

/** Head part file name: its level name, safe for a URL. */
function headFile(level: string): string {
  return `head-${level.replace(/[^A-Za-z0-9_-]/g, '_')}.onnx`;
}

/** Splits the head, writes its parts with `write` and returns the bundle entry. */
export function bundleHead(
  head: DeployHead,
  student: OnnxModel,
  levels: readonly HeadBundleLevel[],
  size: InputSize,
  write: WriteBundleModel,
  decode: Partial<BundleDecode> = {},
): BundleHead {
  const bare: HeadModel = {
    task: 'classification',
    model: head.graph,
    levels: [],
    outputs: {},
    numClasses: 0,
    imageHeight: size.height,
    imageWidth: size.width,
  };
  const described = describeTaskModel(composeTaskModel(student, bare), student, { size });
  const shapes: Record<string, Dim[]> = {};
  const levelOf = new Map<string, HeadBundleLevel>();
  for (const input of head.graph.graph.inputs) {
    const level = levels.find((l) => l.output === input.name);
    if (!level) continue; // an initializer listed as an input
    levelOf.set(input.name, level);
    shapes[input.name] = [1, ...level.shape];
  }
  const split = splitHeadByLevel(head.graph, shapes);
  if (described.task === 'detection' && split.combine !== 'concat') {
    throw new RlpkdError(`the detection head '${head.file}' does not concatenate per-level outputs`, {
      hint: 'deploy an FCOS head as src/heads/fcos-head.ts builds it (rlpkd teach)',
    });
  }
  const parts = split.parts
    .map((p) => ({ p, level: levelOf.get(p.input)! }))
    .sort((a, b) => a.level.stride - b.level.stride)
    .map(({ p, level }): BundleHeadPart => ({
      ...write(headFile(level.name), p.model),
      level: level.name,
      input: p.input,
      stride: level.stride,
      height: level.shape[1],
      width: level.shape[2],
      outputs: p.outputs,
      dims: p.dims,
      macs: graphMacs(p.model, { [p.input]: shapes[p.input] }),
    }));
  let merge: BundleHead['merge'] = null;
  if (split.merge) {
    const inputs = split.merge.graph.inputs.map((v) => v.name);
    const dims = Object.assign({}, ...parts.map((p) => p.dims)) as Record<string, number[]>;
    merge = {
      ...write('head-merge.onnx', split.merge),
      inputs,
      macs: graphMacs(split.merge, Object.fromEntries(inputs.map((i) => [i, dims[i]]))),
    };
  }
  return {
    task: described.task,
    numClasses: described.numClasses,
    source: head.source,
    outputs: described.outputs,
    combine: split.combine,
    parts,
    merge,
    decode: { ...DEFAULT_DECODE, ...decode },
  };
}
