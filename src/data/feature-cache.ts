/**
 * Disk cache of the frozen teacher's pyramid features. Entries are content-addressed: the key hashes the
 * teacher model bytes, the image file bytes and every preprocessing parameter (size, mean/std, flip), so a
 * changed teacher, image or pipeline can never be served stale features. The total size is bounded; the
 * least recently used entries (file mtime, refreshed on every hit, so recency survives across runs) are
 * evicted first. Writes are atomic, and a damaged entry counts as a miss and is removed.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fg from 'fast-glob';
import { silentLog, type LogSink } from '../logging/logger';
import { writeFileAtomic } from '../onnx/model-io';

/** One cached feature map. */
export interface CachedTensor {
  data: Float32Array;
  dims: number[];
}

/** The features of one image: level name -> tensor. */
export type FeatureSet = Record<string, CachedTensor>;

/** What identifies one cache entry. */
export interface FeatureKeyParts {
  /** teacherHash(): sha256 of the teacher ONNX bytes. */
  teacher: string;
  /** sha256 of the image file (Batch.hashes). */
  image: string;
  /** Everything that changes the teacher's input: size, mean/std, flip, ... */
  preprocess: Readonly<Record<string, unknown>>;
}

/** Options of a FeatureCache. */
export interface FeatureCacheOptions {
  /** Size bound in bytes. */
  maxBytes: number;
  log?: LogSink;
  /** Clock in milliseconds (tests use a counter so recency is exact). */
  now?: () => number;
}

/** Hit/miss/eviction counters. */
export interface FeatureCacheStats {
  hits: number;
  misses: number;
  writes: number;
  evictions: number;
  entries: number;
  bytes: number;
}

const MAGIC = Buffer.from('RLPKDFC1');
const EXT = '.feat';

/** sha256 of the teacher model's bytes (or of a file's bytes). */
export function teacherHash(modelBytesOrFile: Uint8Array | string): string {
  const bytes = typeof modelBytesOrFile === 'string' ? fs.readFileSync(modelBytesOrFile) : modelBytesOrFile;
  return createHash('sha256').update(bytes).digest('hex');
}

/** The content address of an entry. */
export function featureKey(parts: FeatureKeyParts): string {
  const pre = Object.keys(parts.preprocess)
    .sort()
    .map((k) => [k, parts.preprocess[k]]);
  return createHash('sha256')
    .update(JSON.stringify(['rlpkd-features-v1', parts.teacher, parts.image, pre]))
    .digest('hex');
}

/** Serializes a feature set: magic, u32 header length, JSON header, zero pad to 4 bytes, float32 LE data. */
export function encodeFeatureSet(features: FeatureSet): Buffer[] {
  const names = Object.keys(features).sort();
  const header = Buffer.from(JSON.stringify(names.map((n) => ({ name: n, dims: features[n]!.dims }))));
  const headLen = MAGIC.length + 4 + header.length;
  const pad = (4 - (headLen % 4)) % 4;
  const head = Buffer.alloc(headLen + pad);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(header.length, MAGIC.length);
  header.copy(head, MAGIC.length + 4);
  const chunks = [head];
  for (const n of names) {
    const t = features[n]!;
    const expected = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== expected) {
      throw new RangeError(
        `feature '${n}': dims [${t.dims.join(', ')}] need ${expected} values, got ${t.data.length}`,
      );
    }
    const le = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    chunks.push(Buffer.from(le)); // copy: the caller may reuse its array
  }
  return chunks;
}

/** Parses encodeFeatureSet output; throws on any inconsistency. */
export function decodeFeatureSet(buf: Buffer): FeatureSet {
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC))
    throw new Error('bad magic');
  const headerLen = buf.readUInt32LE(MAGIC.length);
  const headEnd = MAGIC.length + 4 + headerLen;
  if (headEnd > buf.length) throw new Error('truncated header');
  const entries = JSON.parse(buf.subarray(MAGIC.length + 4, headEnd).toString('utf8')) as {
    name: string;
    dims: number[];
  }[];
  let off = headEnd + ((4 - (headEnd % 4)) % 4);
  const out: FeatureSet = {};
  for (const e of entries) {
    const n = e.dims.reduce((a, b) => a * b, 1);
    if (off + 4 * n > buf.length) throw new Error(`truncated data for '${e.name}'`);
    const data = new Float32Array(n);
    new Uint8Array(data.buffer).set(buf.subarray(off, off + 4 * n));
    out[e.name] = { data, dims: e.dims };
    off += 4 * n;
  }
  if (off !== buf.length) throw new Error(`${buf.length - off} trailing bytes`);
  return out;
}

/** Bounded, content-addressed, LRU teacher feature cache in a folder (may be shared by runs). */
export class FeatureCache {
  private readonly index = new Map<string, { size: number; used: number }>();
  private total = 0;
  private readonly counters = { hits: 0, misses: 0, writes: 0, evictions: 0 };
  private readonly log: LogSink;
  private readonly now: () => number;
  readonly maxBytes: number;

  constructor(
    readonly dir: string,
    options: FeatureCacheOptions,
  ) {
    this.maxBytes = options.maxBytes;
    this.log = options.log ?? silentLog;
    this.now = options.now ?? Date.now;
    fs.mkdirSync(dir, { recursive: true });
    for (const rel of fg.sync(`*/*${EXT}`, { cwd: dir, onlyFiles: true, stats: true })) {
      const key = path.basename(rel.path, EXT);
      this.index.set(key, { size: rel.stats!.size, used: rel.stats!.mtimeMs });
      this.total += rel.stats!.size;
    }
    this.evict();
  }

  /** Counters and current size. */
  stats(): FeatureCacheStats {
    return { ...this.counters, entries: this.index.size, bytes: this.total };
  }

  /** Whether an entry is present (does not count as a use). */
  has(key: string): boolean {
    return this.index.has(key);
  }

  /** The features stored under `key`, or undefined (a miss). A hit marks the entry most recently used. */
  async get(key: string): Promise<FeatureSet | undefined> {
    const file = this.file(key);
    let buf: Buffer;
    try {
      buf = await fs.promises.readFile(file);
    } catch {
      this.drop(key);
      this.counters.misses++;
      return undefined;
    }
    try {
      const features = decodeFeatureSet(buf);
      this.touch(key, file, buf.length);
      this.counters.hits++;
      return features;
    } catch (err) {
      this.log.warn(`feature cache entry '${file}' is damaged (${(err as Error).message}); recomputing it`);
      this.remove(key);
      this.counters.misses++;
      return undefined;
    }
  }

  /** Stores features under `key` atomically, then evicts least recently used entries beyond the bound. */
  async put(key: string, features: FeatureSet): Promise<void> {
    const chunks = encodeFeatureSet(features);
    const size = chunks.reduce((a, c) => a + c.length, 0);
    if (size > this.maxBytes) {
      this.log.debug(
        `feature cache: entry of ${size} bytes exceeds the bound (${this.maxBytes}); not cached`,
      );
      return;
    }
    const file = this.file(key);
    writeFileAtomic(file, chunks);
    this.drop(key);
    this.touch(key, file, size);
    this.counters.writes++;
    this.evict(key);
  }

  /** Cached features, or computes, stores and returns them. */
  async getOrCompute(key: string, compute: () => Promise<FeatureSet> | FeatureSet): Promise<FeatureSet> {
    const hit = await this.get(key);
    if (hit) return hit;
    const features = await compute();
    await this.put(key, features);
    return features;
  }

  private file(key: string): string {
    if (!/^[0-9a-f]{16,}$/.test(key))
      throw new RangeError(`feature cache key must be a hex digest, got '${key}'`);
    return path.join(this.dir, key.slice(0, 2), `${key}${EXT}`);
  }

  private touch(key: string, file: string, size: number): void {
    const t = this.now();
    const old = this.index.get(key);
    if (old) this.total -= old.size;
    this.index.set(key, { size, used: t });
    this.total += size;
    try {
      fs.utimesSync(file, t / 1000, t / 1000);
    } catch {
      // recency on disk is best effort; the in-memory order is what evicts
    }
  }

  private drop(key: string): void {
    const e = this.index.get(key);
    if (!e) return;
    this.total -= e.size;
    this.index.delete(key);
  }

  private remove(key: string): void {
    this.drop(key);
    fs.rmSync(this.file(key), { force: true });
  }

  private evict(keep?: string): void {
    if (this.total <= this.maxBytes) return;
    const byAge = [...this.index.entries()].filter(([k]) => k !== keep).sort((a, b) => a[1].used - b[1].used);
    for (const [key] of byAge) {
      if (this.total <= this.maxBytes) break;
      this.remove(key);
      this.counters.evictions++;
    }
  }
}
