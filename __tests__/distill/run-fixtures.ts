/**
 * A tiny training project in a temporary folder for pipeline tests: 32×32 ResNet-FPN teacher and student
 * (the project's builder), a small synthetic dataset, and a run config sized to finish in seconds.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { configFromObject } from '../../src/config/load-config';
import type { RunConfig } from '../../src/config/schema';
import { saveModel } from '../../src/onnx/model-io';
import { loadModel } from '../../src/onnx/model-io';
import { tensorValuesAsNumbers } from '../../src/onnx/tensor-data';
import { tinyFpn } from './fixtures';

/** A fresh temporary folder. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `rlpkd-${prefix}-`));
}

/** Writes teacher.onnx / student.onnx (32×32 input, P2..P5) into `dir`; returns their paths. */
export function writeTinyModels(
  dir: string,
  options: { teacherChannels?: number; studentChannels?: number; studentSize?: number } = {},
): { teacher: string; student: string } {
  const teacher = path.join(dir, 'teacher.onnx');
  const student = path.join(dir, 'student.onnx');
  saveModel(tinyFpn({ arch: 'resnet34-fpn', seed: 1, fpnChannels: options.teacherChannels ?? 8 }), teacher);
  const size = options.studentSize ?? 32;
  saveModel(
    tinyFpn({ seed: 2, fpnChannels: options.studentChannels ?? 8, height: size, width: size }),
    student,
  );
  return { teacher, student };
}

/** Deep-merges plain objects (arrays and scalars of `b` replace those of `a`). */
export function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? merge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** The tiny run config as a plain object (paths inside `dir`). */
export function tinyConfigObject(
  dir: string,
  models: { teacher: string; student: string },
): Record<string, unknown> {
  return {
    run: { name: 'tiny', output_dir: path.join(dir, 'runs'), seed: 3 },
    models,
    data: {
      type: 'synthetic',
      root: path.join(dir, 'data'),
      image_size: 32,
      batch_size: 4,
      num_workers: 2,
      synthetic: { train_images: 16, val_images: 8, image_size: 32, max_shapes: 2 },
    },
    distill: {
      optimizer: { type: 'sgd', lr: 1e-3, momentum: 0.9 },
      feature_cache: { dir: path.join(dir, 'cache'), max_size_mb: 64 },
    },
    rl: {
      policy: { hidden_dim: 16 },
      ppo: { rollout_episodes: 8, minibatch_size: 16, ppo_epochs: 2, lr: 1e-3 },
      environment: { num_parallel_envs: 4, lambda_tradeoff: 0.05 },
    },
    phases: {
      pretrain: { epochs: 2 },
      policy: { epochs: 2 },
      joint: { epochs: 2 },
      meta: { epochs: 1 },
    },
    maml: {
      inner_steps: 1,
      support_episodes: 4,
      query_episodes: 4,
      tasks: [
        { name: 'low-lambda', lambda_tradeoff: 0.01 },
        { name: 'low-budget', budget: [0.3, 0.9] },
      ],
    },
    logging: { every_steps: 1, progress: 'lines' },
    checkpoint: { keep_last: 2 },
  };
}

/** The tiny run config, validated. */
export function tinyConfig(
  dir: string,
  models: { teacher: string; student: string },
  overrides: Record<string, unknown> = {},
): RunConfig {
  return configFromObject(merge(tinyConfigObject(dir, models), overrides), { cwd: dir });
}

/** Float32 initializers of an ONNX file by name. */
export function initializers(file: string): Record<string, number[]> {
  const m = loadModel(file);
  return Object.fromEntries(m.graph.initializers.map((t) => [t.name, tensorValuesAsNumbers(t)]));
}
