/**
 * Fixed-capacity storage of whole episodes (oldest evicted first) with uniform sampling of episodes or
 * single transitions, disjoint support/query splits for MAML, and a JSON form saved with a run's
 * checkpoint so a resumed run samples exactly as an uninterrupted one.
 */
import { RlpkdError } from '../errors';
import type { Rng } from '../util/rng';
import {
  allocateEpisodes,
  copyEpisode,
  copyStep,
  EPISODE_FIELDS,
  selectEpisodes,
  type EpisodeBatch,
  type EpisodeShape,
} from './episode-batch';

/**
 * Single steps drawn from stored episodes: EpisodeBatch's fields with one row per transition ([n, D]
 * states, [n, A] actions/kinds/logits, [n] for the per-step values), plus where each step sat.
 */
export type TransitionBatch = Omit<EpisodeBatch, 'steps'> & {
  /** 1 on an episode's last step. */
  dones: Uint8Array;
  /** Position of the step in its episode. */
  stepIndex: Int32Array;
};

/** JSON form of a replay buffer (typed arrays as base64 of their little-endian bytes). */
export interface ReplayBufferState {
  version: 1;
  capacity: number;
  shape: EpisodeShape;
  size: number;
  next: number;
  fields: Record<string, string>;
}

export interface ReplayBufferOptions {
  /** Maximum number of episodes kept. */
  capacity: number;
  shape: EpisodeShape;
}

/** Fixed-capacity episode store (see module doc). */
export class ReplayBuffer {
  readonly capacity: number;
  readonly shape: EpisodeShape;
  private readonly store: EpisodeBatch;
  private count = 0;
  /** Row the next episode is written to. */
  private next = 0;

  constructor(options: ReplayBufferOptions) {
    if (!(Number.isInteger(options.capacity) && options.capacity > 0)) {
      throw new RlpkdError(`ReplayBuffer: capacity must be a positive integer, got ${options.capacity}`);
    }
    this.capacity = options.capacity;
    this.shape = { ...options.shape };
    this.store = allocateEpisodes(this.capacity, this.shape);
  }

  /** Episodes stored. */
  get size(): number {
    return this.count;
  }

  /** Transitions stored. */
  get transitions(): number {
    return this.count * this.shape.steps;
  }

  clear(): void {
    this.count = 0;
    this.next = 0;
  }

  /** Appends episodes; when full, the oldest are overwritten. */
  addEpisodes(batch: EpisodeBatch): void {
    const s = this.shape;
    if (batch.steps !== s.steps || batch.decisions !== s.decisions || batch.stateDim !== s.stateDim) {
      throw new RlpkdError(
        `ReplayBuffer: episodes of shape ${batch.steps}×${batch.decisions}×${batch.stateDim} do not fit a buffer of ${s.steps}×${s.decisions}×${s.stateDim} (steps×decisions×stateDim)`,
      );
    }
    for (let i = 0; i < batch.count; i++) {
      copyEpisode(batch, i, this.store, this.next);
      this.next = (this.next + 1) % this.capacity;
      this.count = Math.min(this.count + 1, this.capacity);
    }
  }

  /** Row of the i-th stored episode, oldest first. */
  private row(i: number): number {
    return this.count < this.capacity ? i : (this.next + i) % this.capacity;
  }

  /** Every stored episode, oldest first. */
  all(): EpisodeBatch {
    return selectEpisodes(
      this.store,
      Array.from({ length: this.count }, (_, i) => this.row(i)),
    );
  }

  /** n episodes drawn uniformly; without replacement unless `replace` (then n may exceed the size). */
  sampleEpisodes(n: number, rng: Rng, options: { replace?: boolean } = {}): EpisodeBatch {
    return selectEpisodes(this.store, this.drawRows(n, rng, options.replace ?? false));
  }

  /** n single steps drawn uniformly (with replacement) from all stored transitions. */
  sampleTransitions(n: number, rng: Rng): TransitionBatch {
    if (this.count === 0) throw new RlpkdError('ReplayBuffer.sampleTransitions: the buffer is empty');
    const { steps: S, decisions: A, stateDim: D } = this.shape;
    const out: TransitionBatch = {
      count: n,
      decisions: A,
      stateDim: D,
      states: new Float32Array(n * D),
      actions: new Uint8Array(n * A),
      kinds: new Uint8Array(n * A),
      logits: new Float32Array(n * A),
      logProbs: new Float64Array(n),
      values: new Float64Array(n),
      rewards: new Float64Array(n),
      advantages: new Float64Array(n),
      returns: new Float64Array(n),
      budgets: new Float64Array(n),
      dones: new Uint8Array(n),
      stepIndex: new Int32Array(n),
    };
    const st = this.store;
    for (let i = 0; i < n; i++) {
      const flat = rng.int(this.count * S);
      const ep = this.row(Math.floor(flat / S));
      const s = flat % S;
      const j = ep * S + s;
      copyStep(st, j, out, i, st);
      out.budgets[i] = st.budgets[ep];
      out.dones[i] = s === S - 1 ? 1 : 0;
      out.stepIndex[i] = s;
    }
    return out;
  }

  /**
   * A uniform disjoint split of the stored episodes into `supportSize` support episodes and the rest (or
   * `querySize` of the rest) as query episodes, as MAML's inner and outer losses need.
   */
  split(supportSize: number, rng: Rng, querySize?: number): { support: EpisodeBatch; query: EpisodeBatch } {
    const q = querySize ?? this.count - supportSize;
    if (supportSize < 1 || q < 1 || supportSize + q > this.count) {
      throw new RlpkdError(
        `ReplayBuffer.split: ${supportSize} support + ${q} query episodes do not fit the ${this.count} stored`,
      );
    }
    const rows = this.drawRows(supportSize + q, rng, false);
    return {
      support: selectEpisodes(this.store, rows.slice(0, supportSize)),
      query: selectEpisodes(this.store, rows.slice(supportSize)),
    };
  }

  private drawRows(n: number, rng: Rng, replace: boolean): number[] {
    if (this.count === 0) throw new RlpkdError('ReplayBuffer: the buffer is empty');
    if (replace) return Array.from({ length: n }, () => this.row(rng.int(this.count)));
    if (n > this.count)
      throw new RlpkdError(`ReplayBuffer: cannot draw ${n} distinct episodes from ${this.count}`);
    const idx = Array.from({ length: this.count }, (_, i) => i);
    // Partial Fisher–Yates: the first n positions are a uniform sample without replacement.
    for (let i = 0; i < n; i++) {
      const j = i + rng.int(this.count - i);
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return idx.slice(0, n).map((i) => this.row(i));
  }

  /** The buffer as JSON-serializable data. */
  toJSON(): ReplayBufferState {
    const fields: Record<string, string> = {};
    for (const f of EPISODE_FIELDS) {
      const a = this.store[f];
      fields[f] = Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
    }
    return {
      version: 1,
      capacity: this.capacity,
      shape: { ...this.shape },
      size: this.count,
      next: this.next,
      fields,
    };
  }

  /** Restores a buffer saved with `toJSON()`. */
  static fromJSON(state: ReplayBufferState): ReplayBuffer {
    if (state?.version !== 1)
      throw new RlpkdError('ReplayBuffer.fromJSON: unknown format (expected version 1)');
    const buf = new ReplayBuffer({ capacity: state.capacity, shape: state.shape });
    if (!(
      state.size >= 0 &&
      state.size <= state.capacity &&
      state.next >= 0 &&
      state.next < state.capacity
    )) {
      throw new RlpkdError('ReplayBuffer.fromJSON: size/next out of range');
    }
    for (const f of EPISODE_FIELDS) {
      const target = buf.store[f];
      const text = state.fields[f];
      if (typeof text !== 'string') throw new RlpkdError(`ReplayBuffer.fromJSON: field '${f}' is missing`);
      const bytes = Buffer.from(text, 'base64');
      if (bytes.byteLength !== target.byteLength) {
        throw new RlpkdError(
          `ReplayBuffer.fromJSON: field '${f}' has ${bytes.byteLength} bytes, expected ${target.byteLength}`,
        );
      }
      new Uint8Array(target.buffer, target.byteOffset, target.byteLength).set(bytes);
    }
    buf.count = state.size;
    buf.next = state.next;
    return buf;
  }
}
