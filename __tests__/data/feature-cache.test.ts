import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  FeatureCache,
  decodeFeatureSet,
  encodeFeatureSet,
  featureKey,
  teacherHash,
  type FeatureSet,
} from '../../src/data';
import type { LogSink } from '../../src/logging';
import { Rng } from '../../src/util/rng';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-cache-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function features(seed: number): FeatureSet {
  const rng = new Rng(seed);
  return {
    p2: { data: rng.fillNormal(new Float32Array(2 * 4 * 4)), dims: [1, 2, 4, 4] },
    p3: { data: rng.fillNormal(new Float32Array(2 * 2 * 2)), dims: [1, 2, 2, 2] },
  };
}

/** Bytes one entry of features() takes on disk. */
const ENTRY = encodeFeatureSet(features(0)).reduce((a, c) => a + c.length, 0);

const pre = { height: 64, width: 64, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], flip: false };
const key = (image: string) => featureKey({ teacher: 'f'.repeat(64), image, preprocess: pre });

/** Clock in ms, one second per call, so file mtimes order entries on any file system. */
function clock(): () => number {
  let t = 1_800_000_000_000;
  return () => (t += 1000);
}

describe('feature cache', () => {
  it('round-trips float32 features bit-exactly with their dims', async () => {
    const cache = new FeatureCache(tmp, { maxBytes: 1 << 20 });
    const f = features(1);
    await cache.put(key('a'), f);
    const back = await cache.get(key('a'));
    expect(back!.p2!.dims).toEqual([1, 2, 4, 4]);
    expect(Buffer.from(back!.p2!.data.buffer).equals(Buffer.from(f.p2!.data.buffer))).toBe(true);
    expect(Buffer.from(back!.p3!.data.buffer).equals(Buffer.from(f.p3!.data.buffer))).toBe(true);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 0, writes: 1, entries: 1, bytes: ENTRY });
    expect(await cache.get(key('b'))).toBeUndefined();
    expect(cache.stats().misses).toBe(1);
    const files = fs.readdirSync(tmp, { recursive: true }).map(String);
    expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('keys change with the teacher, the image and any preprocessing value, not with key order', () => {
    const base = { teacher: teacherHash(Buffer.from('teacher-1')), image: 'ab'.repeat(32), preprocess: pre };
    const k = featureKey(base);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(featureKey({ ...base, teacher: teacherHash(Buffer.from('teacher-2')) })).not.toBe(k);
    expect(featureKey({ ...base, image: 'cd'.repeat(32) })).not.toBe(k);
    expect(featureKey({ ...base, preprocess: { ...pre, flip: true } })).not.toBe(k);
    expect(featureKey({ ...base, preprocess: { ...pre, height: 65 } })).not.toBe(k);
    const reordered = { flip: false, std: pre.std, mean: pre.mean, width: 64, height: 64 };
    expect(featureKey({ ...base, preprocess: reordered })).toBe(k);
    const file = path.join(tmp, 't.onnx');
    fs.writeFileSync(file, 'teacher-1');
    expect(teacherHash(file)).toBe(base.teacher);
  });

  it('evicts the least recently used entry when the bound is exceeded', async () => {
    const cache = new FeatureCache(tmp, { maxBytes: 2 * ENTRY, now: clock() });
    await cache.put(key('a'), features(1));
    await cache.put(key('b'), features(2));
    expect(await cache.get(key('a'))).toBeDefined(); // a is now more recent than b
    await cache.put(key('c'), features(3));
    expect(cache.has(key('a'))).toBe(true);
    expect(cache.has(key('b'))).toBe(false);
    expect(cache.has(key('c'))).toBe(true);
    expect(await cache.get(key('b'))).toBeUndefined();
    expect(cache.stats()).toMatchObject({ evictions: 1, entries: 2, bytes: 2 * ENTRY });
    expect(
      fs
        .readdirSync(tmp, { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('.feat')),
    ).toHaveLength(2);
  });

  it('keeps recency across instances through file times, and applies a smaller bound on open', async () => {
    const now = clock();
    const first = new FeatureCache(tmp, { maxBytes: 10 * ENTRY, now });
    await first.put(key('a'), features(1));
    await first.put(key('b'), features(2));
    await first.put(key('c'), features(3));
    await first.get(key('a')); // order by last use: b, c, a
    const reopened = new FeatureCache(tmp, { maxBytes: 10 * ENTRY, now });
    expect(reopened.stats()).toMatchObject({ entries: 3, bytes: 3 * ENTRY });
    expect(await reopened.get(key('c'))).toBeDefined(); // a hit from a fresh instance: order b, a, c
    const smaller = new FeatureCache(tmp, { maxBytes: 2 * ENTRY, now });
    expect([key('a'), key('b'), key('c')].map((k) => smaller.has(k))).toEqual([true, false, true]);
    expect(smaller.stats().evictions).toBe(1);
  });

  it('treats a damaged entry as a miss, removes it, and recomputes through getOrCompute', async () => {
    const warnings: string[] = [];
    const log: LogSink = { debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} };
    const cache = new FeatureCache(tmp, { maxBytes: 1 << 20, log });
    await cache.put(key('a'), features(1));
    const file = path.join(tmp, key('a').slice(0, 2), `${key('a')}.feat`);
    fs.truncateSync(file, fs.statSync(file).size - 3);
    expect(await cache.get(key('a'))).toBeUndefined();
    expect(warnings).toEqual([
      expect.stringMatching(
        /^feature cache entry '.*' is damaged \(truncated data for 'p3'\); recomputing it$/,
      ),
    ]);
    expect(fs.existsSync(file)).toBe(false);
    let computed = 0;
    const compute = () => {
      computed++;
      return features(1);
    };
    await cache.getOrCompute(key('a'), compute);
    const again = await cache.getOrCompute(key('a'), compute);
    expect(computed).toBe(1);
    expect([...again.p3!.data]).toEqual([...features(1).p3!.data]);
  });

  it('does not store an entry bigger than the whole bound, and rejects inconsistent dims', async () => {
    const cache = new FeatureCache(tmp, { maxBytes: ENTRY - 1 });
    await cache.put(key('a'), features(1));
    expect(cache.stats()).toMatchObject({ writes: 0, entries: 0 });
    await expect(cache.put(key('b'), { p2: { data: new Float32Array(3), dims: [2, 2] } })).rejects.toThrow(
      "feature 'p2': dims [2, 2] need 4 values, got 3",
    );
    expect(() => decodeFeatureSet(Buffer.from('nope'))).toThrow('bad magic');
  });
});
