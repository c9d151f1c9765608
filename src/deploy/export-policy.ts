/**
 * `rlpkd export-policy`: a run's learned policy and trained student as a bundle the browser runtime
 * (src/web/) loads: the policy's deployable step graph, the student split by `splitPyramid` into the
 * trunk every image needs and one skippable part per level, and meta.json (src/web/bundle-format.ts:
 * levels, each part's MACs and saving from the cost model, the state layout, input size and
 * normalization, versions, sha-256 of every file) and, when the run has a task head, the head split by
 * level (src/deploy/bundle-head.ts) with the task's class names and decoding settings.
 *
 * Only a policy trained on the 'deploy' state kind is exported: the 'train' state holds the image's
 * distillation loss against the teacher, which does not exist at inference.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { computeCostModel } from '../analysis/cost-model';
import { findPyramidLevels, inferAtSize, imageInput } from '../analysis/pyramid';
import { loadConfig, packageRoot } from '../config/load-config';
import type { RunConfig } from '../config/schema';
import { preprocessFromConfig } from '../data/batch-loader';
import { DEFAULT_SPLITS, openDataset } from '../data/dataset';
import { CHECKPOINT_FILES, readRunCheckpoint } from '../distill/run-checkpoint';
import { RlpkdError } from '../errors';
import { openRunDir } from '../logging/run-dir';
import { splitPyramid } from '../onnx/level-pruning';
import { encodeModel } from '../onnx/codec';
import { loadModel, writeFileAtomic } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import { deployStateSources } from '../rl/deploy-state';
import { PolicyNetwork } from '../rl/policy';
import { STEP_IO } from '../rl/policy-graph';
import { stateLayout } from '../rl/policy-state';
import { contentHash } from '../util/content-hash';
import { bundleHead } from './bundle-head';
import { deployHead } from './deploy-head';
import {
  BUNDLE_FORMAT_VERSION,
  BUNDLE_META_FILE,
  bundleFiles,
  type BundleDecode,
  type BundleFile,
  type BundleHead,
  type BundleLevel,
  type BundleMeta,
} from '../web/bundle-format';

/** What to export. */
export interface ExportPolicyOptions {
  /** Run directory written by `rlpkd train`. */
  run: string;
  /** Bundle folder to write (created; an earlier bundle there is replaced). */
  out: string;
  /** Checkpoint label under <run>/checkpoints (default: the latest). */
  checkpoint?: string;
  /**
   * A head graph (levels in, task outputs out) to deploy instead of the run's own (default: the
   * checkpoint's student-task-model.onnx, else models.teacher_head; src/deploy/deploy-head.ts).
   */
  head?: string;
  /** Decoding settings other than FCOS's test settings (bundle-head.ts DEFAULT_DECODE). */
  decode?: Partial<BundleDecode>;
}

/** What was written. */
export interface ExportPolicyResult {
  dir: string;
  meta: BundleMeta;
  /** Bytes of every file, meta.json included. */
  totalBytes: number;
}

/** The version in the package.json of the package folder `from`. */
function packageVersion(from: string): string {
  return (JSON.parse(fs.readFileSync(path.join(from, 'package.json'), 'utf8')) as { version: string })
    .version;
}

/** The installed folder of a dependency (its `exports` may not list package.json): up from its entry. */
function dependencyDir(name: string): string {
  let dir = path.dirname(require.resolve(name));
  while (path.basename(dir) !== name || !fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new RlpkdError(`cannot find the folder of the installed package '${name}'`);
    dir = up;
  }
  return dir;
}

/** Writes a model into the bundle and returns its entry (size, hash). */
function writeBundleModel(dir: string, file: string, model: OnnxModel): BundleFile {
  const bytes = encodeModel(model);
  writeFileAtomic(path.join(dir, file), [bytes]);
  return { file, bytes: bytes.byteLength, sha256: contentHash([bytes]) };
}

/** The configured budget as a range. */
function trainingBudget(b: number | [number, number]): { min: number; max: number } {
  return typeof b === 'number' ? { min: b, max: b } : { min: b[0], max: b[1] };
}

/** Level part file name: its level name, safe for a URL. */
function levelFile(name: string): string {
  return `level-${name.replace(/[^A-Za-z0-9_-]/g, '_')}.onnx`;
}

/**
 * The class names of the run's training split when it has `numClasses` of them, else null (a dataset
 * that cannot be opened here only loses the names).
 */
async function classNames(config: RunConfig, numClasses: number): Promise<string[] | null> {
  try {
    const split = config.data.split ?? DEFAULT_SPLITS[config.data.type][0];
    const classes = (await openDataset(config.data, split)).classes;
    return classes.length === numClasses ? [...classes] : null;
  } catch (err) {
    if (err instanceof RlpkdError) return null;
    throw err;
  }
}

/** Exports a run's policy and student as a browser bundle (see module doc). */
export async function exportPolicy(options: ExportPolicyOptions): Promise<ExportPolicyResult> {
  const run = openRunDir(options.run);
  const ckpt = readRunCheckpoint(run, options.checkpoint, 'eval');
  if (!ckpt.policyFile) {
    throw new RlpkdError(`checkpoint '${ckpt.dir}' holds no policy`, {
      hint: 'export a run that trained its policy (distill.selection: rl, phase 2 enabled)',
    });
  }
  const policy = await PolicyNetwork.load(ckpt.policyFile);
  const pc = policy.config;
  if ((pc.stateKind ?? 'train') !== 'deploy' || !pc.stateLevels || !pc.stateSources) {
    throw new RlpkdError(
      `the policy of run '${run.root}' was trained on the '${pc.stateKind ?? 'train'}' state, whose loss ` +
        "feature needs the teacher (the image's distillation loss), which a deployed student does not have",
      { hint: 'train the run with rl.policy.state: deploy to export its policy' },
    );
  }
  const config = loadConfig(run.configFile);
  const pre = preprocessFromConfig(config.data);
  const size = { height: pre.height, width: pre.width };
  const student = loadModel(path.join(ckpt.dir, CHECKPOINT_FILES.student));
  const sources = deployStateSources(student, pc.stateLevels, size);
  if (JSON.stringify(sources) !== JSON.stringify(pc.stateSources)) {
    throw new RlpkdError(
      `the student of checkpoint '${ckpt.dir}' does not give the trunk tensors its policy was trained on`,
      { hint: 'export a checkpoint whose student and policy were saved together' },
    );
  }
  const levelsInDecisionOrder = pc.stateLevels.map((l) => ({ name: l.name, stride: 0, channels: 0 }));
  const layout = stateLayout('deploy', levelsInDecisionOrder, sources);
  if (layout.dim !== policy.arch.stateDim) {
    throw new RlpkdError(
      `the policy takes ${policy.arch.stateDim} state values, the student's deploy state has ${layout.dim}`,
    );
  }

  const info = inferAtSize(student, size);
  const outputs = pc.stateLevels.map((l) => l.output);
  const pyramid = findPyramidLevels(student, size, info).filter((l) => outputs.includes(l.output));
  const cost = computeCostModel(student, size, { info, levels: pyramid });
  const split = splitPyramid(student, outputs);

  const dir = path.resolve(options.out);
  if (
    fs.existsSync(dir) &&
    fs.readdirSync(dir).length > 0 &&
    !fs.existsSync(path.join(dir, BUNDLE_META_FILE))
  ) {
    throw new RlpkdError(`'${dir}' exists and is not a policy bundle`, {
      hint: 'pass --out a new or empty folder (an earlier bundle there is replaced)',
    });
  }
  // Written beside the target, then swapped in: a reader never sees half a bundle.
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const policyFile = writeBundleModel(tmp, 'policy.onnx', policy.exportForInference());
    const trunkFile = writeBundleModel(tmp, 'trunk.onnx', split.trunk);
    const levels: BundleLevel[] = split.parts.map((part) => {
      const l = cost.levels.find((c) => c.output === part.output)!;
      const name = pc.stateLevels!.find((s) => s.output === part.output)!.name;
      return {
        ...writeBundleModel(tmp, levelFile(name), part.model),
        name,
        stride: l.stride,
        output: part.output,
        inputs: part.inputs,
        shape: [l.channels, l.height, l.width],
        macs: l.macs,
        saving: cost.totalMacs > 0 ? l.macs / cost.totalMacs : 0,
      };
    });
    const deployed = deployHead({
      ...(options.head !== undefined ? { headFile: options.head } : {}),
      checkpointDir: ckpt.dir,
      config,
      levels: levels.map((l) => ({ name: l.name, output: l.output, channels: l.shape[0] })),
      size,
    });
    const head: BundleHead | null = deployed
      ? bundleHead(deployed, student, levels, size, (f, m) => writeBundleModel(tmp, f, m), options.decode)
      : null;
    const seq = policy.arch.mode === 'sequential';
    const root = packageRoot();
    const meta: BundleMeta = {
      format: BUNDLE_FORMAT_VERSION,
      versions: {
        rlpkd: packageVersion(root),
        onnxruntimeWeb: packageVersion(dependencyDir('onnxruntime-web')),
      },
      source: { run: run.root, checkpoint: ckpt.state.label },
      input: {
        name: imageInput(student).name,
        height: pre.height,
        width: pre.width,
        mean: [...pre.mean],
        std: [...pre.std],
      },
      classNames: head ? await classNames(config, head.numClasses) : null,
      trunk: { ...trunkFile, outputs: split.boundary, macs: cost.sharedMacs },
      levels,
      totalMacs: cost.totalMacs,
      state: {
        kind: 'deploy',
        dim: layout.dim,
        coarsest: layout.coarsest.name,
        sources: sources.map((s) => ({ name: s.name, channels: s.channels })),
        selectedOffset: layout.selectedOffset,
        budgetIndex: layout.budgetIndex,
      },
      policy: {
        ...policyFile,
        mode: policy.arch.mode,
        hiddenSize: policy.arch.hiddenSize,
        decisionOrder: pc.stateLevels.map((l) => l.name),
        costs: [...pc.costs],
        minLevels: policy.constraints.minLevels,
        trainingBudget: trainingBudget(config.rl.environment.budget),
        io: seq ? { ...STEP_IO } : { state: STEP_IO.state, logits: STEP_IO.logits, value: STEP_IO.value },
      },
      head,
    };
    const metaText = `${JSON.stringify(meta, null, 2)}\n`;
    writeFileAtomic(path.join(tmp, BUNDLE_META_FILE), metaText);
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true });
    fs.renameSync(tmp, dir);
    const totalBytes = bundleFiles(meta).reduce((n, f) => n + f.bytes, 0) + Buffer.byteLength(metaText);
    return { dir, meta, totalBytes };
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
