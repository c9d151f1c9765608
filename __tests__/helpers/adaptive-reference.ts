/**
 * The Node side of the deployment checks: one image's adaptive inference recomputed with
 * onnxruntime-node from the run's own files (the full student with its trunk tensors as extra outputs,
 * the checkpoint's PolicyNetwork deciding deterministically), not from the bundle's split graphs. With a
 * head file, the task head composed onto the full student (composeTaskModel) gives the detection
 * outputs of every level; the rows of the chosen levels are decoded (decodeFcos) as the reference task
 * output.
 */
import * as path from 'node:path';
import { composeTaskModel } from '../../src/heads/compose-task-model';
import { decodeFcos, type Detection } from '../../src/heads/fcos-decode';
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
  /** Detection head only: the chosen levels' rows of each head output, and their decoding. */
  task?: ReferenceDetections;
}

/** The reference task output of a detection head. */
export interface ReferenceDetections {
  raw: Record<string, Float32Array>;
  detections: Detection[];
  /** Candidates whose class probability is within 1e-4 of the score threshold (their count may differ). */
  borderline: number;
}

/** The chosen levels' rows of [1, A, ...] head outputs (rows finest first, as meta.head.parts). */
function chosenRows(meta: BundleMeta, out: HostTensor, levels: readonly string[]): Float32Array {
  const parts = meta.head!.parts;
  const A = parts.reduce((n, p) => n + p.height * p.width, 0);
  const per = out.data.length / A;
  const blocks: Float32Array[] = [];
  let row = 0;
  for (const p of parts) {
    const rows = p.height * p.width;
    if (levels.includes(p.level))
      blocks.push((out.data as Float32Array).slice(row * per, (row + rows) * per));
    row += rows;
  }
  const data = new Float32Array(blocks.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of blocks) {
    data.set(b, o);
    o += b.length;
  }
  return data;
}

/** Decodes the chosen levels' detection rows as the bundle says (decode settings, locations). */
function referenceDetections(
  meta: BundleMeta,
  out: Record<string, HostTensor>,
  levels: readonly string[],
): ReferenceDetections {
  const h = meta.head!;
  const raw = Object.fromEntries(Object.values(h.outputs).map((o) => [o, chosenRows(meta, out[o], levels)]));
  const cls = raw[h.outputs.cls];
  const thr = h.decode.scoreThreshold;
  let borderline = 0;
  for (const v of cls) if (Math.abs(1 / (1 + Math.exp(-v)) - thr) < 1e-4) borderline++;
  const chosen = h.parts.filter((p) => levels.includes(p.level));
  const [detections] = decodeFcos(
    { cls, box: raw[h.outputs.box], centerness: raw[h.outputs.centerness] },
    {
      levels: chosen.map((p) => ({
        name: p.input,
        channels: 1,
        stride: p.stride,
        height: p.height,
        width: p.width,
      })),
      numClasses: h.numClasses,
      imageHeight: meta.input.height,
      imageWidth: meta.input.width,
      scoreThreshold: thr,
      preNmsTopK: h.decode.preNmsTopK,
      nmsIou: h.decode.nmsIou,
      maxDetections: h.decode.maxDetections,
    },
  );
  return { raw, detections, borderline };
}

/**
 * Reference inference for the images [M, 3, H, W] of a bundle exported from `runDir`; `headFile` (a
 * detection head graph whose inputs are named like the student's levels) adds the task output.
 */
export async function referenceInference(
  runDir: string,
  meta: BundleMeta,
  images: Float32Array,
  budget: number,
  headFile?: string,
): Promise<ReferenceResult[]> {
  const ckpt = path.join(runDir, 'checkpoints', meta.source.checkpoint);
  const student = loadModel(path.join(ckpt, 'student.onnx'));
  const extra = meta.state.sources.map((s) => ({ name: s.name, dataType: 1 }));
  let full = { ...student, graph: { ...student.graph, outputs: [...student.graph.outputs, ...extra] } };
  if (headFile) {
    const head = loadModel(headFile);
    const bare = {
      task: 'detection' as const,
      levels: [],
      outputs: {},
      numClasses: 0,
      imageHeight: 0,
      imageWidth: 0,
    };
    full = composeTaskModel(full, { ...bare, model: head }, { keepBackboneOutputs: true });
  }
  const session = await createSession(full);
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
    const levels = meta.levels.map((l) => l.name).filter((n) => selected[order.indexOf(n)] === 1);
    results.push({
      levels,
      logits,
      features: Object.fromEntries(meta.levels.map((l) => [l.name, out[l.output]])),
      ...(headFile ? { task: referenceDetections(meta, out, levels) } : {}),
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
  /** The task head's result (detection bundles). */
  task?: {
    raw: Record<string, { data: ArrayLike<number>; dims: readonly number[] }>;
    output: { task: string; detections?: Detection[] } | null;
  } | null;
}

/** How a runtime's detections agree with the reference, over the images whose levels agree. */
export interface TaskAgreement {
  images: number;
  /** Images with as many detections as the reference. */
  sameCount: number;
  /** Images with another count where the reference has candidates within 1e-4 of the threshold. */
  nearThreshold: number;
  /** Images with another count elsewhere, or no task output (must be 0). */
  disagreements: number;
  /** Detections compared (reference side). */
  detections: number;
  /** Largest |Δ| / max(|ref|, 1) over box corners (pixels) of paired detections, labels equal. */
  maxBoxRelDiff: number;
  /** Largest |Δ| / |ref| over the paired detections' scores. */
  maxScoreRelDiff: number;
  /** Largest relative difference of the raw head outputs (the feature measure). */
  maxRawRelDiff: number;
  /** Paired detections with another label (must be 0). */
  labelMismatches: number;
}

/** Relative difference measure of `agreement` (see maxRelDiff) folded into `acc`. */
function relDiff(got: ArrayLike<number>, want: ArrayLike<number>, acc: { rel: number; abs: number }): void {
  let floor = 0;
  for (let i = 0; i < want.length; i++) floor = Math.max(floor, Math.abs(want[i]));
  floor *= 0.01;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    acc.abs = Math.max(acc.abs, d);
    acc.rel = Math.max(acc.rel, d / Math.max(Math.abs(want[i]), floor, 1e-30));
  }
}

/** Detections in a canonical order (label, then corners): runtimes may order near-equal scores apart. */
function canonical(ds: readonly Detection[]): Detection[] {
  return [...ds].sort(
    (a, b) =>
      a.label - b.label ||
      a.box[0] - b.box[0] ||
      a.box[1] - b.box[1] ||
      a.box[2] - b.box[2] ||
      a.box[3] - b.box[3],
  );
}

/** Compares detection results with the reference on the images whose levels agree. */
export function taskAgreement(
  results: readonly RuntimeResult[],
  refs: readonly ReferenceResult[],
): TaskAgreement {
  const a: TaskAgreement = {
    images: 0,
    sameCount: 0,
    nearThreshold: 0,
    disagreements: 0,
    detections: 0,
    maxBoxRelDiff: 0,
    maxScoreRelDiff: 0,
    maxRawRelDiff: 0,
    labelMismatches: 0,
  };
  results.forEach((r, m) => {
    const ref = refs[m].task!;
    if (r.levels.join() !== refs[m].levels.join()) return; // a decision within 1e-4 of its threshold
    a.images++;
    const got = r.task?.output?.detections;
    if (!r.task || !got) {
      a.disagreements++;
      return;
    }
    const acc = { rel: a.maxRawRelDiff, abs: 0 };
    for (const [name, want] of Object.entries(ref.raw)) relDiff(r.task.raw[name].data, want, acc);
    a.maxRawRelDiff = acc.rel;
    if (got.length !== ref.detections.length) {
      if (ref.borderline > 0) a.nearThreshold++;
      else a.disagreements++;
      return;
    }
    a.sameCount++;
    a.detections += got.length;
    const [g, w] = [canonical(got), canonical(ref.detections)];
    w.forEach((d, i) => {
      if (g[i].label !== d.label) a.labelMismatches++;
      for (let k = 0; k < 4; k++)
        a.maxBoxRelDiff = Math.max(
          a.maxBoxRelDiff,
          Math.abs(g[i].box[k] - d.box[k]) / Math.max(Math.abs(d.box[k]), 1),
        );
      a.maxScoreRelDiff = Math.max(a.maxScoreRelDiff, Math.abs(g[i].score - d.score) / Math.abs(d.score));
    });
  });
  return a;
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
