/**
 * The policy bundle `rlpkd export-policy` writes and the browser runtime reads: `meta.json` plus ONNX
 * files. Pure types and checks (no fs, no runtime), shared by the Node exporter and src/web/.
 *
 * Files: `policy.onnx` (the deployable step graph, state normalization baked in), `trunk.onnx` (student
 * input → the trunk tensors every image needs), and one `level-<name>.onnx` per pyramid level (trunk
 * tensors → that level's feature map: the part the policy may skip).
 */

/** Version of the bundle layout; the runtime refuses any other. */
export const BUNDLE_FORMAT_VERSION = 1;

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
}

/** Every file the bundle lists (policy, trunk, levels), for hashing and loading. */
export function bundleFiles(meta: BundleMeta): BundleFile[] {
  return [meta.policy, meta.trunk, ...meta.levels];
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
  for (const key of ['versions', 'input', 'trunk', 'levels', 'state', 'policy'] as const) {
    if (m[key] === undefined) problems.push(`meta.json has no '${key}'`);
  }
  if (problems.length === 0 && (!Array.isArray(m.levels) || m.levels.length === 0))
    problems.push('meta.json lists no levels');
  return problems;
}
