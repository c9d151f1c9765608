/**
 * The project's one seeded random number generator: xoshiro128** (32-bit arithmetic, fast in JS, period
 * 2^128 − 1) seeded through murmur3/splitmix32 mixing. Every component takes its own stream with `fork(label)`, derived
 * from the run seed and the label only, so adding a component never shifts another's numbers; the full
 * state round-trips through `getState()`/`setState()` so resumed runs continue exactly.
 */
import { RlpkdError } from '../errors';

/** Serializable generator state (plain JSON). */
export interface RngState {
  /** Identity of the stream (from the seed and fork labels); what `fork` derives children from. */
  key: [number, number, number, number];
  /** xoshiro128** state words. */
  s: [number, number, number, number];
  /** The second Box–Muller normal, kept for the next `normal()` call; null when none is pending. */
  spare: number | null;
}

/** A seed: an integer (up to 2^53) or a string. */
export type Seed = number | string;

const TWO_POW_32 = 4294967296;
// Module-local references: inside jest's vm context every global lookup (Math) goes through a slow
// interceptor, which made sampling ~20x slower there than in plain Node.
const imul = Math.imul;
const log = Math.log;
const sqrt = Math.sqrt;
const cos = Math.cos;
const sin = Math.sin;
const TWO_PI = 2 * Math.PI;

/** 32-bit rotate left; the result is an int32 (callers convert with >>> 0 where they need unsigned). */
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** One splitmix32 output for a given state (a seeding mixer; the state itself is not advanced here). */
function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) >>> 0;
  z = imul(z ^ (z >>> 16), 0x21f0aaad);
  z = imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** murmur3's 32-bit finalizer: a bijection with full avalanche. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h = imul(h ^ (h >>> 16), 0x85ebca6b);
  h = imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const LANES = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a];

/** Hashes 32-bit words into four well-mixed words (four independent lanes; never all zero). */
function expand(words: readonly number[]): [number, number, number, number] {
  const out: number[] = LANES.map((init, lane) => {
    let h = init;
    for (const w of words) h = fmix32((imul(h ^ (w >>> 0), 0x9e3779b1) + 0x7f4a7c15 + lane) >>> 0);
    return splitmix32(h);
  });
  if (!out.some((w) => w !== 0)) out[0] = 1;
  return out as [number, number, number, number];
}

function stringWords(text: string): number[] {
  const words: number[] = [text.length];
  for (let i = 0; i < text.length; i++) words.push(text.charCodeAt(i));
  return words;
}

function seedWords(seed: Seed): number[] {
  if (typeof seed === 'string') return [0x5eed, ...stringWords(seed)];
  if (!Number.isSafeInteger(seed)) {
    throw new RlpkdError(`RNG seed must be an integer or a string, got ${seed}`, {
      hint: 'use a whole number such as 0 or 42',
    });
  }
  const neg = seed < 0 ? 1 : 0;
  const a = Math.abs(seed);
  return [0x5eed1, neg, a >>> 0, Math.floor(a / TWO_POW_32) >>> 0];
}

function isWordArray(v: unknown): v is [number, number, number, number] {
  return (
    Array.isArray(v) &&
    v.length === 4 &&
    v.every((w) => typeof w === 'number' && Number.isInteger(w) && w >= 0 && w < TWO_POW_32)
  );
}

/** A seedable pseudo-random generator (see module doc). Not for cryptography. */
export class Rng {
  private key: [number, number, number, number];
  /** xoshiro128** state; a typed array so updates never box numbers (10x faster than object fields). */
  private readonly s = new Uint32Array(4);
  private hasSpare = false;
  private spare = 0;

  constructor(seed: Seed = 0) {
    this.key = expand(seedWords(seed));
    this.s.set(expand([0x57a7e, ...this.key]));
  }

  /** A generator restored from `getState()` output. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  /** Next output as a signed 32-bit integer (the fast path for the other draws). */
  private nextInt32(): number {
    const s = this.s;
    const s1 = s[1];
    const result = imul(rotl(imul(s1, 5), 7), 9);
    const t = s1 << 9;
    s[2] ^= s[0];
    s[3] ^= s1;
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Next raw 32-bit unsigned integer. */
  nextUint32(): number {
    return this.nextInt32() >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.nextInt32() >>> 5; // 27 bits
    const b = this.nextInt32() >>> 6; // 26 bits
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform double in [low, high). */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.next();
  }

  /** Normal sample (Box–Muller; the second value of each pair is kept for the next call). */
  normal(mean = 0, std = 1): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return mean + std * this.spare;
    }
    const u1 = 1 - this.next(); // (0, 1]: log is finite
    const u2 = this.next();
    const r = sqrt(-2 * log(u1));
    const theta = TWO_PI * u2;
    this.spare = r * sin(theta);
    this.hasSpare = true;
    return mean + std * r * cos(theta);
  }

  /** Uniform integer in [0, n), without modulo bias; n a positive integer ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RlpkdError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let u = this.nextInt32() >>> 0;
    while (u >= limit) u = this.nextInt32() >>> 0;
    return u % n;
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** Shuffles `array` in place (Fisher–Yates) and returns it. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** Fills `out` with normal samples (model initialization). */
  fillNormal<A extends Float32Array | Float64Array>(out: A, mean = 0, std = 1): A {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** Fills `out` with uniform samples in [low, high). */
  fillUniform<A extends Float32Array | Float64Array>(out: A, low = 0, high = 1): A {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform(low, high);
    return out;
  }

  /**
   * An independent child stream for a component. It depends only on this stream's identity and the label
   * (not on how many numbers were drawn), so `fork('policy')` is the same stream every time.
   */
  fork(label: string | number): Rng {
    const child = new Rng(0);
    child.key = expand([0xf02c, ...this.key, ...stringWords(String(label))]);
    child.s.set(expand([0x57a7e, ...child.key]));
    return child;
  }

  /** The full state, as plain JSON-serializable data. */
  getState(): RngState {
    const [s0, s1, s2, s3] = this.s;
    return { key: [...this.key], s: [s0, s1, s2, s3], spare: this.hasSpare ? this.spare : null };
  }

  /** Restores a state from `getState()`; throws on malformed input. */
  setState(state: RngState): void {
    const ok =
      typeof state === 'object' &&
      state !== null &&
      isWordArray(state.key) &&
      isWordArray(state.s) &&
      !state.s.every((w) => w === 0) &&
      (state.spare === null || (typeof state.spare === 'number' && Number.isFinite(state.spare)));
    if (!ok) {
      throw new RlpkdError(
        'RNG state is malformed (expected {key: 4 uint32, s: 4 uint32 not all 0, spare})',
        {
          hint: 'the checkpoint holding the RNG state may be corrupt; restart the run from a seed',
        },
      );
    }
    this.key = [...state.key];
    this.s.set(state.s);
    this.hasSpare = state.spare !== null;
    this.spare = state.spare ?? 0;
  }
}

/** Convenience: `new Rng(seed)`. */
export function createRng(seed: Seed = 0): Rng {
  return new Rng(seed);
}
