/**
 * Batches for the engine: a seeded order per epoch (shuffle and flips drawn from `rng.fork('epoch-<e>')`, so
 * epoch e is the same whether or not the run was resumed), images decoded concurrently by sharp while the
 * consumer works on earlier batches, and corrupt or missing images reported by path and skipped or fatal.
 */
import { InputFileError } from '../errors';
import { silentLog, type LogSink } from '../logging/logger';
import type { HostTensor } from '../runtime/tensors';
import type { Rng } from '../util/rng';
import { loadImageInto, loadMaskInto, type DecodedImage, type Preprocess } from './image-loader';
import type { BoxAnnotation, Dataset, ImageRecord } from './types';

/** A float32 NCHW tensor (structurally a runtime HostTensor). */
export type ImageTensor = HostTensor & { data: Float32Array; dims: [number, number, number, number] };

/** One batch of preprocessed images with their labels. */
export interface Batch {
  epoch: number;
  /** Position of the batch in the epoch. */
  index: number;
  images: ImageTensor;
  records: ImageRecord[];
  /** Whether each image was flipped horizontally. */
  flipped: boolean[];
  /** sha256 of each image file (identity for the teacher feature cache). */
  hashes: string[];
  /** Class indices, when every record has one. */
  labels?: Int32Array;
  /** Label masks N*H*W (255 = ignore), when the dataset has masks. */
  masks?: Uint8Array;
  /** Boxes in model-input pixels (scaled, flipped), when the dataset has them. */
  boxes?: BoxAnnotation[][];
  /** Each image's size before resizing (maps predictions back to original pixels; see boxToOriginal). */
  originalSizes?: { width: number; height: number }[];
}

/** An image that could not be used. */
export interface SkippedImage {
  file: string;
  reason: string;
}

/** Options of a BatchLoader. */
export interface BatchLoaderOptions {
  batchSize: number;
  preprocess: Preprocess;
  /** Seeded stream; each epoch uses `rng.fork('epoch-<e>')`, the rng itself is never advanced. */
  rng: Rng;
  shuffle?: boolean;
  /** Probability of a horizontal flip per image (0 = none). */
  hflip?: number;
  /** Images decoded at once. */
  numWorkers?: number;
  /** Batches prepared ahead of the one being consumed. */
  prefetch?: number;
  onCorrupt?: 'skip' | 'fatal';
  /** Keep the last, smaller batch (default true). */
  keepLast?: boolean;
  log?: LogSink;
  /** What the images are, named in warnings (e.g. "held-out evaluation split 'val'"); default "split '<split>'". */
  name?: string;
}

/** Limits how many async jobs run at once. */
class Limiter {
  private running = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running++;
    try {
      return await job();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
}

/** Seeded, prefetching batch iterator over a Dataset. */
export class BatchLoader {
  /** Every image skipped so far (each reported once). */
  readonly skipped: SkippedImage[] = [];
  /** Batches fully decoded so far (shows prefetching at work in logs and tests). */
  loadedBatches = 0;
  private readonly bad = new Set<string>();
  private readonly limiter: Limiter;
  private readonly opts: Required<Omit<BatchLoaderOptions, 'log' | 'name'>> & { log: LogSink; name: string };

  constructor(
    readonly dataset: Dataset,
    options: BatchLoaderOptions,
  ) {
    this.opts = {
      shuffle: true,
      hflip: 0,
      numWorkers: 4,
      prefetch: 2,
      onCorrupt: 'skip',
      keepLast: true,
      log: silentLog,
      name: `split '${dataset.split}'`,
      ...options,
    };
    if (!Number.isInteger(this.opts.batchSize) || this.opts.batchSize < 1) {
      throw new RangeError(`BatchLoader: batchSize must be a positive integer, got ${this.opts.batchSize}`);
    }
    this.limiter = new Limiter(Math.max(1, this.opts.numWorkers));
  }

  /** Batches per epoch (before any image is skipped). */
  get batchesPerEpoch(): number {
    const n = this.dataset.records.length;
    const b = this.opts.batchSize;
    return this.opts.keepLast ? Math.ceil(n / b) : Math.floor(n / b);
  }

  /** The epoch's image order (record indices) and flip flags; a pure function of the rng and the epoch. */
  plan(epoch: number): { order: number[]; flips: boolean[] } {
    const rng = this.opts.rng.fork(`epoch-${epoch}`);
    const order = this.dataset.records.map((_, i) => i);
    if (this.opts.shuffle) rng.shuffle(order);
    const flips = order.map(() => this.opts.hflip > 0 && rng.next() < this.opts.hflip);
    return { order, flips };
  }

  /** Iterates the batches of `epoch` from `startBatch` (resume), keeping `prefetch` batches in flight. */
  async *epoch(epoch: number, startBatch = 0): AsyncGenerator<Batch> {
    const { order, flips } = this.plan(epoch);
    const total = this.batchesPerEpoch;
    const b = this.opts.batchSize;
    const pending: Promise<Batch | undefined>[] = [];
    let next = startBatch;
    const launch = () => {
      if (next >= total) return;
      const i = next++;
      const p = this.loadBatch(epoch, i, order.slice(i * b, (i + 1) * b), flips.slice(i * b, (i + 1) * b));
      p.catch(() => {}); // a failure surfaces when consumed; never as an unhandled rejection
      pending.push(p);
    };
    for (let k = 0; k <= this.opts.prefetch; k++) launch();
    while (pending.length > 0) {
      const batch = await pending.shift()!;
      launch();
      if (batch) yield batch;
    }
  }

  private async loadBatch(
    epoch: number,
    index: number,
    idx: number[],
    flips: boolean[],
  ): Promise<Batch | undefined> {
    const { height: h, width: w } = this.opts.preprocess;
    const plane = 3 * h * w;
    const hasMasks = this.dataset.maskConvention !== undefined;
    const slots = idx.map((i) => this.dataset.records[i]!);
    const staging = new Float32Array(slots.length * plane);
    const maskStaging = hasMasks ? new Uint8Array(slots.length * h * w) : undefined;
    const results = await Promise.all(
      slots.map((rec, k) =>
        this.limiter.run(async () => {
          if (this.bad.has(rec.file)) return undefined;
          try {
            return await loadRecordInto(rec, this.opts.preprocess, flips[k]!, staging, k, maskStaging);
          } catch (err) {
            this.reject(rec, err);
            return undefined;
          }
        }),
      ),
    );
    this.loadedBatches++;
    const keep = results.map((r, k) => (r ? k : -1)).filter((k) => k >= 0);
    if (keep.length === 0) {
      this.opts.log.warn(
        `${this.opts.name}: every image of batch ${index + 1}/${this.batchesPerEpoch} was skipped`,
      );
      return undefined;
    }
    const n = keep.length;
    const images = keep.length === slots.length ? staging : new Float32Array(n * plane);
    if (images !== staging)
      keep.forEach((k, j) => images.set(staging.subarray(k * plane, (k + 1) * plane), j * plane));
    const records = keep.map((k) => slots[k]!);
    const batch: Batch = {
      epoch,
      index,
      images: { data: images, dims: [n, 3, h, w] },
      records,
      flipped: keep.map((k) => flips[k]!),
      hashes: keep.map((k) => results[k]!.hash),
      originalSizes: keep.map((k) => ({ width: results[k]!.width, height: results[k]!.height })),
    };
    if (records.every((r) => r.label !== undefined)) batch.labels = Int32Array.from(records, (r) => r.label!);
    if (maskStaging) {
      const masks = new Uint8Array(n * h * w);
      keep.forEach((k, j) => masks.set(maskStaging.subarray(k * h * w, (k + 1) * h * w), j * h * w));
      batch.masks = masks;
    }
    if (records.some((r) => r.boxes)) {
      batch.boxes = keep.map((k) => {
        const info = results[k]!;
        const sx = w / info.width;
        const sy = h / info.height;
        return (slots[k]!.boxes ?? []).map((bx) => {
          const [x, y, bw, bh] = bx.bbox;
          const nx = flips[k] ? w - (x + bw) * sx : x * sx;
          return { ...bx, bbox: [nx, y * sy, bw * sx, bh * sy], area: bx.area * sx * sy };
        });
      });
    }
    return batch;
  }

  private reject(rec: ImageRecord, err: unknown): void {
    const { what, reason } = describeFailure(rec, err);
    if (this.opts.onCorrupt === 'fatal') throw corruptImageError(what, reason);
    this.bad.add(rec.file);
    this.skipped.push({ file: rec.file, reason });
    this.opts.log.warn(`skipping corrupt or missing image ${what} in the ${this.opts.name}: ${reason}`);
  }
}

/**
 * Decodes one record into slot `slot` of a batch buffer (3*H*W floats per slot), its label mask too when
 * `masks` is given and the record has one. Throws on a bad file (see describeFailure).
 */
export async function loadRecordInto(
  rec: ImageRecord,
  pre: Preprocess,
  flip: boolean,
  images: Float32Array,
  slot: number,
  masks?: Uint8Array,
): Promise<DecodedImage> {
  const { height: h, width: w } = pre;
  const info = await loadImageInto(rec.file, pre, flip, images, slot * 3 * h * w);
  if (masks && rec.mask) await loadMaskInto(rec.mask, h, w, flip, true, masks, slot * h * w);
  return info;
}

/** Which file of a record failed (image or mask) and why, in one line. */
export function describeFailure(rec: ImageRecord, err: unknown): { what: string; reason: string } {
  const e = err as NodeJS.ErrnoException;
  const reason = e.code === 'ENOENT' ? 'file does not exist' : (e.message ?? String(err)).split('\n')[0]!;
  const what =
    rec.mask && e.path === rec.mask ? `label mask of '${rec.file}' ('${rec.mask}')` : `'${rec.file}'`;
  return { what, reason };
}

/** The data.on_corrupt: fatal error for one image. */
export function corruptImageError(what: string, reason: string): InputFileError {
  return new InputFileError(`corrupt or missing image ${what}: ${reason}`, {
    hint: 'remove or replace the file, or set data.on_corrupt: skip to skip such images with a warning',
  });
}

/** The Preprocess of a run config's data section. */
export function preprocessFromConfig(data: {
  image_size: number | [number, number];
  normalize: { mean: [number, number, number]; std: [number, number, number] };
}): Preprocess {
  const [height, width] =
    typeof data.image_size === 'number' ? [data.image_size, data.image_size] : data.image_size;
  return { height, width, mean: data.normalize.mean, std: data.normalize.std };
}
