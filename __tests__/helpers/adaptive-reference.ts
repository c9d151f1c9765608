/**
 * The Node side of the deployment checks: one image's adaptive inference recomputed with
 * onnxruntime-node from the run's own files (the full student with its trunk tensors as extra outputs,
 * the checkpoint's PolicyNetwork deciding deterministically), not from the bundle's split graphs.
 */
import * as path from 'node:path';
import { loadModel } from '../../src/onnx/model-io';
import { PolicyNetwork } from '../../src/rl/policy';
import { pooledStateFeatures, stateLayout, writeState } from '../../src/rl/policy-state';
import { createSession, type HostTensor } from '../../src/runtime';
import type { BundleMeta } from '../../src/web/bundle-format';

/** What the Node runtime computes for one image. */
export interface ReferenceResult {
  /** Computed levels, student output order. */
  levels: string[];
  /** Logits in decision order. */
  logits: number[];
  /** Feature maps of every level (the full student). */
  features: Record<string, HostTensor>;
}

/** Reference inference for the images [M, 3, H, W] of a bundle exported from `runDir`. */
export async function referenceInference(
  runDir: string,
  meta: BundleMeta,
  images: Float32Array,
  budget: number,
): Promise<ReferenceResult[]> {
  const ckpt = path.join(runDir, 'checkpoints', meta.source.checkpoint);
  const student = loadModel(path.join(ckpt, 'student.onnx'));
  const extra = meta.state.sources.map((s) => ({ name: s.name, dataType: 1 }));
  const session = await createSession({
    ...student,
    graph: { ...student.graph, outputs: [...student.graph.outputs, ...extra] },
  });
  const policy = await PolicyNetwork.load(path.join(ckpt, 'policy.onnx'));
  const order = meta.policy.decisionOrder;
  const layout = stateLayout(
    'deploy',
    order.map((name) => ({ name, stride: 1, channels: 1 })),
    policy.config.stateSources!,
  );
  const { height: H, width: W } = meta.input;
  const M = images.length / (3 * H * W);
  const results: ReferenceResult[] = [];
  for (let m = 0; m < M; m++) {
    const image = { data: images.slice(m * 3 * H * W, (m + 1) * 3 * H * W), dims: [1, 3, H, W] };
    const out = await session.run({ [meta.input.name]: image });
    const pooled = pooledStateFeatures(layout, out, 1);
    const memory = policy.newMemory([budget]);
    const selected = new Float32Array(order.length);
    const logits: number[] = [];
    const steps = meta.policy.mode === 'sequential' ? order.length : 1;
    for (let s = 0; s < steps; s++) {
      const state = new Float32Array(layout.dim);
      const used = order.reduce((n, _, k) => n + selected[k] * meta.policy.costs[k], 0);
      writeState(layout, pooled, { loss: 0, selected, budgetLeft: budget - used }, 0, state);
      const r = await policy.selectAction(state, { deterministic: true, memory });
      const A = r.actions.length;
      for (let j = 0; j < A; j++) {
        selected[s + j] = r.actions[j];
        logits.push(r.logits[j]);
      }
    }
    results.push({
      levels: meta.levels.map((l) => l.name).filter((n) => selected[order.indexOf(n)] === 1),
      logits,
      features: Object.fromEntries(meta.levels.map((l) => [l.name, out[l.output]])),
    });
  }
  await Promise.all([session.release(), policy.release()]);
  return results;
}

/** One image's adaptive result as the runtime reports it (the part the checks compare). */
export interface RuntimeResult {
  levels: string[];
  decisions: { level: string; logit: number; selected: boolean }[];
  features: Record<string, { data: ArrayLike<number>; dims: readonly number[] }>;
}

/** How a runtime's results agree with the Node reference. */
export interface Agreement {
  images: number;
  /** Images whose computed levels equal the reference's. */
  sameLevels: number;
  /** Decisions that differ where the reference logit is within 1e-4 of the threshold (allowed). */
  nearThreshold: number;
  /** Decisions that differ elsewhere (must be 0). */
  disagreements: number;
  /** Largest |logit − reference logit|. */
  maxLogitDiff: number;
  /**
   * Largest |x − ref| / max(|ref|, 0.01·max|ref|) over the feature maps both computed: relative per
   * element, with elements under 1% of their map's largest magnitude measured against that 1%
   * (float32 noise on values near zero is not a relative error of the output).
   */
  maxRelDiff: number;
  /** Largest |x − ref|. */
  maxAbsDiff: number;
}

/** Compares runtime results with the reference, image by image. */
export function agreement(results: readonly RuntimeResult[], refs: readonly ReferenceResult[]): Agreement {
  const a: Agreement = {
    images: results.length,
    sameLevels: 0,
    nearThreshold: 0,
    disagreements: 0,
    maxLogitDiff: 0,
    maxRelDiff: 0,
    maxAbsDiff: 0,
  };
  results.forEach((r, m) => {
    const ref = refs[m];
    if (r.levels.join() === ref.levels.join()) a.sameLevels++;
    let diverged = false;
    r.decisions.forEach((d, k) => {
      if (diverged) return; // later states depend on the earlier decisions
      if (Number.isFinite(d.logit))
        a.maxLogitDiff = Math.max(a.maxLogitDiff, Math.abs(d.logit - ref.logits[k]));
      if (d.selected !== ref.levels.includes(d.level)) {
        if (Math.abs(ref.logits[k]) < 1e-4) a.nearThreshold++;
        else a.disagreements++;
        diverged = true;
      }
    });
    for (const level of r.levels) {
      const want = ref.features[level];
      const got = r.features[level];
      if (!want || got.dims.join() !== want.dims.join()) {
        a.disagreements++;
        continue;
      }
      const w = want.data as Float32Array;
      const floor = 0.01 * w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      for (let i = 0; i < w.length; i++) {
        const d = Math.abs(got.data[i] - w[i]);
        a.maxAbsDiff = Math.max(a.maxAbsDiff, d);
        a.maxRelDiff = Math.max(a.maxRelDiff, d / Math.max(Math.abs(w[i]), floor, 1e-30));
      }
    }
  });
  return a;
}
