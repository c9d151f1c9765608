/**
 * The policy bundle `rlpkd export-policy` writes and the browser runtime reads: `meta.json` plus ONNX
 * files. Pure types and checks (no fs, no runtime), shared by the Node exporter and src/web/.
 *
 * Files: `policy.onnx` (the deployable step graph, state normalization baked in), `trunk.onnx` (student
 * input → the trunk tensors every image needs), and one `level-<name>.onnx` per pyramid level (trunk
 * tensors → that level's feature map: the part the policy may skip). When the run has a task head:
 * one `head-<name>.onnx` per level the head reads (that level's feature map → its share of the head's
 * output) and, for a head that sums per-level branches, `head-merge.onnx` (src/heads/split-head.ts).
 */

/** Version of the bundle layout; the runtime refuses any other. */
export const BUNDLE_FORMAT_VERSION = 2;

/** Name of the bundle's description file. */
export const BUNDLE_META_FILE = 'meta.json';

/** One ONNX file of the bundle. */
export interface BundleFile {
  file: string;
  bytes: number;
  /** Hex sha-256 of the file's bytes. */
  sha256: string;
}

/** A tensor a graph reads or writes: its name and shape (a string for a symbolic dimension). */
export interface BundleTensor {
  name: string;
  dims: (number | string)[];
}

/** One pyramid level's skippable part. */
export interface BundleLevel extends BundleFile {
  /** Level name (P2, ...). */
  name: string;
  stride: number;
  /** The level's feature-map output (the student graph's output name). */
  output: string;
  /** Trunk tensors it reads. */
  inputs: string[];
  /** [C, H, W] of the level's feature map. */
  shape: [number, number, number];
  /** Multiply-accumulates of the part per image (cost model). */
  macs: number;
  /** Share of the full pyramid's MACs that skipping the part saves (macs / total). */
  saving: number;
}

/** The policy's state layout ('deploy' kind, src/rl/policy-state.ts). */
export interface BundleState {
  kind: 'deploy';
  dim: number;
  /** Pooled (avg ‖ max) first: the coarsest trunk tensor. */
  coarsest: string;
  /** Then avg-pooled, in order: the trunk tensors (name and channels). */
  sources: { name: string; channels: number }[];
  /** Then the L selected-so-far flags (decision order), then the budget left. */
  selectedOffset: number;
  budgetIndex: number;
}

/** The policy: how to drive its step graph. */
export interface BundlePolicy extends BundleFile {
  mode: 'sequential' | 'independent';
  hiddenSize: number;
  /** Level names in decision order. */
  decisionOrder: string[];
  /** Level costs in decision order (the training environment's budget units). */
  costs: number[];
  minLevels: number;
  /** The budgets the policy was trained on (rl.environment.budget; min = max for a fixed one). */
  trainingBudget: { min: number; max: number };
  /** Step graph tensor names. */
  io: {
    state: string;
    logits: string;
    value: string;
    prevAction?: string;
    h?: string;
    c?: string;
    levelOneHot?: string;
    hOut?: string;
    cOut?: string;
  };
}

/** How the head's output is decoded (src/heads/fcos-decode.ts for detection). */
export interface BundleDecode {
  /** Detection: least class probability of a candidate. */
  scoreThreshold: number;
  /** Detection: candidates kept before NMS. */
  preNmsTopK: number;
  /** Detection: per-class NMS IoU. */
  nmsIou: number;
  /** Detection: detections kept per image. */
  maxDetections: number;
  /** Classification: classes reported, best first. */
  topK: number;
}

/** The task head's part on one level. */
export interface BundleHeadPart extends BundleFile {
  /** The bundle level it reads (its feature map is the part's only input). */
  level: string;
  /** The level tensor's name (the part's input). */
  input: string;
  stride: number;
  height: number;
  width: number;
  /**
   * Its outputs by what they feed: 'concat', head output → the level's rows of it; 'merge', merge input
   * → the same name.
   */
  outputs: Record<string, string>;
  /** Shape of each output (by tensor name) for one image. */
  dims: Record<string, number[]>;
  macs: number;
}

/** The run's task head, split by level. */
export interface BundleHead {
  task: 'detection' | 'segmentation' | 'classification';
  numClasses: number;
  /** Where the head came from: the checkpoint's own task model, models.teacher_head, or --head. */
  source: 'student-task-model' | 'teacher-head' | 'file';
  /** Head outputs by role (detection: cls, box, centerness; segmentation/classification: logits). */
  outputs: Record<string, string>;
  /**
   * 'concat': the computed levels' rows are concatenated (finest first); 'merge': `merge` sums the
   * levels' branches, a skipped level fed as zeros (absent).
   */
  combine: 'concat' | 'merge';
  /** One per level the head reads, finest first. */
  parts: BundleHeadPart[];
  merge: (BundleFile & { inputs: string[]; macs: number }) | null;
  decode: BundleDecode;
}

/** meta.json. */
export interface BundleMeta {
  format: number;
  /** What wrote it: the rl-pyramidkd version and the onnxruntime-web version it targets. */
  versions: { rlpkd: string; onnxruntimeWeb: string };
  /** Where it came from (run directory and checkpoint label). */
  source: { run: string; checkpoint: string };
  input: {
    name: string;
    height: number;
    width: number;
    /** Normalization of [0, 1] RGB: (x − mean) / std per channel. */
    mean: [number, number, number];
    std: [number, number, number];
  };
  /** Class names of the task, when the run names them (null otherwise). */
  classNames: string[] | null;
  trunk: BundleFile & { outputs: string[]; macs: number };
  /** Levels in the student graph's output order (finest first). */
  levels: BundleLevel[];
  /** MACs of the full pyramid (trunk + every level part). */
  totalMacs: number;
  state: BundleState;
  policy: BundlePolicy;
  /** The task head, or null when the run has none (the result is then the level features only). */
  head: BundleHead | null;
}

/** Every file the bundle lists (policy, trunk, levels, head parts), for hashing and loading. */
export function bundleFiles(meta: BundleMeta): BundleFile[] {
  const head = meta.head ? [...meta.head.parts, ...(meta.head.merge ? [meta.head.merge] : [])] : [];
  return [meta.policy, meta.trunk, ...meta.levels, ...head];
}

/**
 * Problems of a parsed meta.json (empty when it is usable by this runtime): wrong format version,
 * missing fields. The runtime shows them as one clear error.
 */
export function bundleMetaProblems(meta: unknown): string[] {
  if (!meta || typeof meta !== 'object') return ['meta.json is not a JSON object'];
  const m = meta as Partial<BundleMeta>;
  if (m.format !== BUNDLE_FORMAT_VERSION) {
    return [
      `meta.json is bundle format ${String(m.format)}; this runtime reads format ${BUNDLE_FORMAT_VERSION} ` +
        '(export the bundle again with this rl-pyramidkd version)',
    ];
  }
  const problems: string[] = [];
  for (const key of ['versions', 'input', 'trunk', 'levels', 'state', 'policy', 'head'] as const) {
    if (m[key] === undefined) problems.push(`meta.json has no '${key}'`);
  }
  if (problems.length === 0 && (!Array.isArray(m.levels) || m.levels.length === 0))
    problems.push('meta.json lists no levels');
  return problems;
}
