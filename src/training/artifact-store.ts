/**
 * Training artifacts on disk: a folder of ONNX graphs, the initial checkpoint and manifest.json, written
 * manifest last so a crash never leaves a folder that claims files it lacks. Building them is
 * artifacts.ts's job; this module only writes, validates and reads folders.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputFileError, RlpkdError } from '../errors';
import { loadModel, saveModel, writeFileAtomic } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import type { ArtifactGraphs, ArtifactManifest, BuiltArtifacts, TrainingArtifacts } from './artifacts';
import { loadCheckpoint, saveCheckpoint, type CheckpointState } from './checkpoint';

/** Bumped whenever generated graphs change for the same inputs, so cached artifacts are rebuilt. */
export const ARTIFACTS_FORMAT_VERSION = 7;

/** File names inside an artifacts folder. */
export const ARTIFACT_FILES = {
  training: 'training_model.onnx',
  eval: 'eval_model.onnx',
  optimizer: 'optimizer_model.onnx',
  fused: 'fused_step_model.onnx',
  gradientStep: 'gradient_step_model.onnx',
  levelNormStep: 'gradient_step_level_norms_model.onnx',
  forward: 'forward_model.onnx',
  checkpoint: 'checkpoint.onnx',
  manifest: 'manifest.json',
} as const;

export type ArtifactGraph =
  'training' | 'eval' | 'optimizer' | 'fused' | 'gradientStep' | 'levelNormStep' | 'forward';

const CREATE_HINT = 'create them with `rlpkd artifacts --model M.onnx --out DIR` or generateArtifacts()';

/** One artifacts folder (see the module doc). */
export class ArtifactStore {
  constructor(readonly dir: string) {}

  /** The folder's manifest, or undefined when it is missing or unreadable. */
  readManifest(): ArtifactManifest | undefined {
    const file = path.join(this.dir, ARTIFACT_FILES.manifest);
    if (!fs.existsSync(file)) return undefined;
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as ArtifactManifest;
    } catch {
      return undefined;
    }
  }

  /** The folder's manifest, checked for this version's format; a clear error otherwise. */
  manifest(): ArtifactManifest {
    const manifest = this.readManifest();
    if (!manifest) {
      throw new InputFileError(
        `'${this.dir}' holds no training artifacts (manifest.json missing or unreadable)`,
        { hint: CREATE_HINT },
      );
    }
    if (manifest.format !== ARTIFACTS_FORMAT_VERSION) {
      throw new InputFileError(
        `'${this.dir}' holds artifacts of format ${manifest.format}; this version needs format ${ARTIFACTS_FORMAT_VERSION}`,
        { hint: 'regenerate them (generateArtifacts rebuilds them automatically)' },
      );
    }
    return manifest;
  }

  /**
   * The folder's artifacts, every listed file checked to be there. Graphs are read when first needed;
   * the checkpoint (parameters plus zero optimizer state: three times the model) only by readCheckpoint.
   */
  open(): TrainingArtifacts {
    const manifest = this.manifest();
    for (const f of Object.values(manifest.files)) {
      if (f && !fs.existsSync(path.join(this.dir, f))) {
        throw new InputFileError(`training artifacts in '${this.dir}' are incomplete: '${f}' is missing`, {
          hint: 'regenerate them',
        });
      }
    }
    return { manifest, dir: this.dir, models: {} };
  }

  /** The initial checkpoint written with the artifacts. */
  readCheckpoint(): CheckpointState {
    return loadCheckpoint(path.join(this.dir, ARTIFACT_FILES.checkpoint));
  }

  /**
   * Writes artifacts built in memory (graphs, checkpoint, manifest last, replacing what the folder held);
   * returns them as stored: the same graphs and checkpoint, the manifest listing the files, `dir` set.
   */
  write(built: BuiltArtifacts): BuiltArtifacts {
    fs.mkdirSync(this.dir, { recursive: true });
    // A stale manifest must not vouch for files being replaced: remove it first, write it last.
    fs.rmSync(path.join(this.dir, ARTIFACT_FILES.manifest), { force: true });
    const files: ArtifactManifest['files'] = {};
    for (const [graph, model] of Object.entries(built.models) as [ArtifactGraph, OnnxModel][]) {
      saveModel(model, path.join(this.dir, ARTIFACT_FILES[graph]));
      files[graph] = ARTIFACT_FILES[graph];
    }
    saveCheckpoint(path.join(this.dir, ARTIFACT_FILES.checkpoint), built.checkpoint);
    files.checkpoint = ARTIFACT_FILES.checkpoint;
    const manifest = { ...built.manifest, files };
    writeFileAtomic(path.join(this.dir, ARTIFACT_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
    return { ...built, manifest, dir: this.dir };
  }
}

/** Reads artifacts written by generateArtifacts; graphs are loaded from the folder when needed. */
export function loadArtifacts(dir: string): TrainingArtifacts {
  return new ArtifactStore(dir).open();
}

/** The initial checkpoint of a set of artifacts: the one built in memory, or the one in their folder. */
export function readCheckpoint(artifacts: TrainingArtifacts): CheckpointState {
  if (artifacts.checkpoint) return artifacts.checkpoint;
  if (!artifacts.dir) {
    throw new RlpkdError('these training artifacts have neither a checkpoint in memory nor a folder', {
      hint: 'pass artifacts from generateArtifacts() or loadArtifacts()',
    });
  }
  return new ArtifactStore(artifacts.dir).readCheckpoint();
}

/** One graph of a set of artifacts, from memory or from its file (kept in `models` once read). */
export function artifactModel(artifacts: ArtifactGraphs, graph: ArtifactGraph): OnnxModel {
  const m = artifacts.models[graph];
  if (m) return m;
  const file = artifacts.manifest.files[graph];
  if (!file || !artifacts.dir) {
    throw new RlpkdError(`these training artifacts have no ${graph} graph`, {
      hint:
        graph === 'fused' || graph === 'gradientStep'
          ? 'generate them with fused: true (the default)'
          : graph === 'levelNormStep'
            ? 'generate them with levelGradientNorms'
            : 'regenerate the artifacts',
    });
  }
  const model = loadModel(path.join(artifacts.dir, file));
  artifacts.models[graph] = model;
  return model;
}

/** Path of a graph's file when the artifacts are on disk (sessions load big graphs faster from paths). */
export function artifactPath(artifacts: ArtifactGraphs, graph: ArtifactGraph): string | undefined {
  const file = artifacts.manifest.files[graph];
  return file && artifacts.dir ? path.join(artifacts.dir, file) : undefined;
}
