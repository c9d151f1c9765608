/**
 * The bundle's task head in the runtime: its part runs on each computed level the head reads, the parts'
 * outputs are combined (the computed levels' rows concatenated finest first, or the merge graph with a
 * skipped level fed as zeros: absent from the sum, src/heads/split-head.ts) and decoded with the
 * training code's decoders: detections (FCOS decoding over the computed levels' locations, per-class
 * NMS), a label map (arg-max), or the top classes (softmax).
 */
import type * as OrtWeb from 'onnxruntime-web';
import { topClasses, type ClassScore } from '../heads/classification-decode';
import { decodeFcos, type Detection } from '../heads/fcos-decode';
import { segmentationLabelMaps } from '../heads/segmentation-decode';
import type { BundleHead, BundleHeadPart, BundleMeta } from './bundle-format';
import type { OrtWebModule } from './ort-web';

/** A dense float tensor. */
export interface HeadTensor {
  data: Float32Array;
  dims: number[];
}

/** What the head gives for one image. */
export type TaskOutput =
  | { task: 'detection'; detections: Detection[] }
  | { task: 'segmentation'; labels: Int32Array; height: number; width: number }
  | { task: 'classification'; classes: ClassScore[] };

/** One image's head result. */
export interface HeadResult {
  /** The decoded output, or null when no level the head reads was computed (`skipped` says why). */
  output: TaskOutput | null;
  skipped?: string;
  /** The combined head outputs by name (before decoding). */
  raw: Record<string, HeadTensor>;
  /** Levels the head ran on, finest first. */
  levels: string[];
  /** ms per head part (by level), the merge, the decoding. */
  times: { parts: Record<string, number>; merge: number; decode: number };
  /** MACs of the head parts (and merge) run, and of the head on every level. */
  macs: { used: number; total: number };
}

type Session = OrtWeb.InferenceSession;

const now = (): number => globalThis.performance.now();

/** Concatenates [1, A_l, ...] blocks along axis 1. */
function concatRows(blocks: HeadTensor[]): HeadTensor {
  const data = new Float32Array(blocks.reduce((n, b) => n + b.data.length, 0));
  let o = 0;
  for (const b of blocks) {
    data.set(b.data, o);
    o += b.data.length;
  }
  return { data, dims: [1, blocks.reduce((n, b) => n + b.dims[1], 0), ...blocks[0].dims.slice(2)] };
}

/** A bundle's head with its sessions (see module doc). */
export class TaskHead {
  constructor(
    private readonly ort: OrtWebModule,
    readonly head: BundleHead,
    private readonly meta: BundleMeta,
    private readonly parts: Map<string, Session>,
    private readonly merge: Session | undefined,
  ) {}

  /** MACs of the head on every level it reads (+ merge). */
  get totalMacs(): number {
    return this.head.parts.reduce((n, p) => n + p.macs, 0) + (this.head.merge?.macs ?? 0);
  }

  /** Runs the head on the computed levels' feature maps (by level name) and decodes. */
  async run(features: Record<string, HeadTensor>): Promise<HeadResult> {
    const { head } = this;
    const ran = head.parts.filter((p) => features[p.level] !== undefined);
    const times = { parts: {} as Record<string, number>, merge: 0, decode: 0 };
    const base = { levels: ran.map((p) => p.level), times, raw: {} };
    const total = this.totalMacs;
    if (ran.length === 0) {
      const needs = head.parts.map((p) => p.level).join(', ');
      return {
        ...base,
        output: null,
        skipped: `the ${head.task} head reads ${needs}, which the policy skipped`,
        macs: { used: 0, total },
      };
    }
    const outs = new Map<BundleHeadPart, Record<string, HeadTensor>>();
    for (const p of ran) {
      const f = features[p.level];
      const t = now();
      const r = await this.parts
        .get(p.level)!
        .run({ [p.input]: new this.ort.Tensor('float32', f.data, f.dims) });
      times.parts[p.level] = now() - t;
      outs.set(
        p,
        Object.fromEntries(
          Object.values(p.outputs).map((name) => [
            name,
            { data: r[name].data as Float32Array, dims: [...r[name].dims] },
          ]),
        ),
      );
    }
    let raw: Record<string, HeadTensor>;
    let used = ran.reduce((n, p) => n + p.macs, 0);
    if (head.combine === 'concat') {
      raw = Object.fromEntries(
        Object.values(head.outputs).map((o) => [o, concatRows(ran.map((p) => outs.get(p)![p.outputs[o]]))]),
      );
    } else {
      const feeds: Record<string, OrtWeb.Tensor> = {};
      for (const p of head.parts) {
        for (const name of Object.values(p.outputs)) {
          const got = outs.get(p)?.[name];
          const dims = p.dims[name];
          const data = got?.data ?? new Float32Array(dims.reduce((a, b) => a * b, 1));
          feeds[name] = new this.ort.Tensor('float32', data, got?.dims ?? dims);
        }
      }
      const t = now();
      const r = await this.merge!.run(feeds);
      times.merge = now() - t;
      used += head.merge!.macs;
      raw = Object.fromEntries(
        Object.values(head.outputs).map((o) => [
          o,
          { data: r[o].data as Float32Array, dims: [...r[o].dims] },
        ]),
      );
    }
    const t = now();
    const output = this.decode(raw, ran);
    times.decode = now() - t;
    return { ...base, raw, output, macs: { used, total } };
  }

  private decode(raw: Record<string, HeadTensor>, ran: readonly BundleHeadPart[]): TaskOutput {
    const { head, meta } = this;
    const d = head.decode;
    if (head.task === 'detection') {
      const levels = ran.map((p) => ({
        name: p.input,
        channels: meta.levels.find((l) => l.name === p.level)?.shape[0] ?? 1,
        stride: p.stride,
        height: p.height,
        width: p.width,
      }));
      const [detections] = decodeFcos(
        {
          cls: raw[head.outputs.cls].data,
          box: raw[head.outputs.box].data,
          centerness: raw[head.outputs.centerness].data,
        },
        {
          levels,
          numClasses: head.numClasses,
          imageHeight: meta.input.height,
          imageWidth: meta.input.width,
          scoreThreshold: d.scoreThreshold,
          preNmsTopK: d.preNmsTopK,
          nmsIou: d.nmsIou,
          maxDetections: d.maxDetections,
        },
      );
      return { task: 'detection', detections };
    }
    const logits = raw[head.outputs.logits];
    if (head.task === 'segmentation') {
      const [labels] = segmentationLabelMaps(logits.data, logits.dims);
      return { task: 'segmentation', labels, height: logits.dims[2], width: logits.dims[3] };
    }
    return { task: 'classification', classes: topClasses(logits.data, d.topK) };
  }

  /** Releases the head's sessions. */
  async release(): Promise<void> {
    await Promise.all([...this.parts.values(), ...(this.merge ? [this.merge] : [])].map((s) => s.release()));
  }
}
