/**
 * Image sources for the level-selection environments. `TrainImageStream` hands out training images in the
 * BatchLoader's seeded epoch order (shuffle and flips are a pure function of the epoch), re-chunked to the
 * environment's batch size, and can resume from a saved cursor; it remembers each chunk with its file
 * hashes and flips so the same images can be distilled afterwards (teacher features from the cache).
 * `sequentialImageSource` cycles through fixed held-out images in order.
 */
import type { Batch, BatchLoader } from '../data/batch-loader';
import { RlpkdError } from '../errors';
import type { HostTensor } from '../runtime/tensors';
import type { ImageBatchSource } from '../rl/distillation-env';
import type { ImageBatch } from '../rl/distiller';
import { joinLabels, sliceLabels, type ImageLabels } from './labelled-images';

/** Where a stream stands: the loader epoch (relative to the stream's base), batch, and images used of it. */
export interface StreamCursor {
  epoch: number;
  batch: number;
  offset: number;
}

/** A chunk of images handed to an environment, with what identifies them and their labels. */
export interface DrawnChunk extends ImageBatch, ImageLabels {
  images: HostTensor & { data: Float32Array };
  hashes: string[];
  flipped: boolean[];
}

/** Resumable training-image source (see module doc). */
export class TrainImageStream implements ImageBatchSource {
  private iterator: AsyncGenerator<Batch> | null = null;
  private current: Batch | null = null;
  private pos: StreamCursor;
  private drawn: DrawnChunk[] = [];

  constructor(
    private readonly loader: BatchLoader,
    /** Loader epoch index of the stream's epoch 0 (streams of different phases use different bases). */
    private readonly epochBase: number,
    start: StreamCursor = { epoch: 0, batch: 0, offset: 0 },
  ) {
    this.pos = { ...start };
  }

  /** The position to resume from. */
  cursor(): StreamCursor {
    return { ...this.pos };
  }

  /** Chunks handed out since the last call, oldest first. */
  takeDrawn(): DrawnChunk[] {
    const out = this.drawn;
    this.drawn = [];
    return out;
  }

  /** Forgets drawn chunks. */
  clearDrawn(): void {
    this.drawn = [];
  }

  private async nextBatch(): Promise<Batch> {
    for (;;) {
      if (!this.iterator) this.iterator = this.loader.epoch(this.epochBase + this.pos.epoch, this.pos.batch);
      const r = await this.iterator.next();
      if (!r.done) return r.value;
      // An epoch that ends before yielding anything from its start: every image was skipped.
      if (this.pos.batch === 0 && this.pos.offset === 0) break;
      this.iterator = null;
      this.pos = { epoch: this.pos.epoch + 1, batch: 0, offset: 0 };
    }
    throw new RlpkdError(
      `every image of the '${this.loader.dataset.split}' split was skipped as unreadable`,
      {
        hint: 'check the dataset folder (the warnings name the files)',
      },
    );
  }

  async next(n: number): Promise<DrawnChunk> {
    const parts: { batch: Batch; from: number; count: number }[] = [];
    let need = n;
    while (need > 0) {
      // (a resumed cursor may point into the middle of the first batch: pos.offset says where)
      if (!this.current) this.current = await this.nextBatch();
      const batch = this.current;
      const size = batch.records.length;
      const take = Math.min(need, size - this.pos.offset);
      parts.push({ batch, from: this.pos.offset, count: take });
      this.pos.offset += take;
      need -= take;
      if (this.pos.offset >= size) {
        this.current = null;
        this.pos = { epoch: this.pos.epoch, batch: batch.index + 1, offset: 0 };
      }
    }
    const dims = parts[0].batch.images.dims;
    const per = dims[1] * dims[2] * dims[3];
    const data = new Float32Array(n * per);
    const hashes: string[] = [];
    const flipped: boolean[] = [];
    let o = 0;
    for (const p of parts) {
      data.set(p.batch.images.data.subarray(p.from * per, (p.from + p.count) * per), o * per);
      hashes.push(...p.batch.hashes.slice(p.from, p.from + p.count));
      flipped.push(...p.batch.flipped.slice(p.from, p.from + p.count));
      o += p.count;
    }
    const labels = joinLabels(
      parts.map((p) => sliceLabels(p.batch, p.batch.records.length, p.from, p.from + p.count)),
    );
    const chunk = { images: { data, dims: [n, dims[1], dims[2], dims[3]] }, hashes, flipped, ...labels };
    this.drawn.push(chunk);
    return chunk;
  }
}

/**
 * Cycles through `images` [M, C, H, W] in order, `n` at a time (wrapping around), with the images' file
 * hashes when given (so teacher features come from the feature cache) and their labels when given.
 */
export function sequentialImageSource(
  images: HostTensor,
  hashes?: readonly string[],
  labels?: ImageLabels,
): ImageBatchSource {
  const [M, ...rest] = images.dims;
  const per = rest.reduce((a, b) => a * b, 1);
  const src = images.data as Float32Array;
  let next = 0;
  return {
    next: async (n: number) => {
      const data = new Float32Array(n * per);
      const picked: string[] = [];
      const pickedLabels: ImageLabels[] = [];
      for (let i = 0; i < n; i++) {
        data.set(src.subarray(next * per, (next + 1) * per), i * per);
        if (hashes) picked.push(hashes[next]);
        if (labels) pickedLabels.push(sliceLabels(labels, M, next, next + 1));
        next = (next + 1) % M;
      }
      const batch = { images: { data, dims: [n, ...rest] }, ...(labels ? joinLabels(pickedLabels) : {}) };
      return hashes ? { ...batch, hashes: picked, flipped: new Array<boolean>(n).fill(false) } : batch;
    },
  };
}
