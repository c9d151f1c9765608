import { Rng, createRng, type RngState } from '../../src/util/rng';
import { RlpkdError } from '../../src/errors';

/** Independent reference: xoshiro128** written with BigInt and explicit 32-bit masks. */
function referenceXoshiro(seed: [number, number, number, number], n: number): number[] {
  const M = 0xffffffffn;
  const rotl = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & M;
  let [s0, s1, s2, s3] = seed.map(BigInt);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(Number((rotl((s1 * 5n) & M, 7n) * 9n) & M));
    const t = (s1 << 9n) & M;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11n);
  }
  return out;
}

function stats(xs: ArrayLike<number>): { mean: number; variance: number } {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m += xs[i];
  m /= xs.length;
  let v = 0;
  for (let i = 0; i < xs.length; i++) v += (xs[i] - m) ** 2;
  return { mean: m, variance: v / (xs.length - 1) };
}

describe('Rng (xoshiro128**)', () => {
  it('matches hand-computed outputs and a BigInt reference from a known state', () => {
    const r = createRng(0);
    r.setState({ key: [0, 0, 0, 1], s: [1, 2, 3, 4], spare: null });
    const got = Array.from({ length: 1000 }, () => r.nextUint32());
    // First three by hand: rotl(2*5,7)*9 = 11520; then s1 becomes 0; then rotl(1029*5,7)*9 = 5927040.
    expect(got.slice(0, 3)).toEqual([11520, 0, 5927040]);
    expect(got).toEqual(referenceXoshiro([1, 2, 3, 4], 1000));
  });

  it('is deterministic per seed and differs between seeds', () => {
    const seq = (seed: number | string): number[] => {
      const r = new Rng(seed);
      return Array.from({ length: 20 }, () => r.next());
    };
    expect(seq(42)).toEqual(seq(42));
    expect(seq('run-a')).toEqual(seq('run-a'));
    expect(seq(42)).not.toEqual(seq(43));
    expect(seq(0)).not.toEqual(seq(-0 - 1));
    expect(seq(2 ** 40)).not.toEqual(seq(0));
    expect(seq('a')).not.toEqual(seq('b'));
    expect(() => new Rng(1.5)).toThrow(RlpkdError);
  });

  it('draws uniforms in [0,1) with mean 1/2 and variance 1/12', () => {
    const r = new Rng(7);
    const xs = new Float64Array(200000);
    r.fillUniform(xs);
    expect(xs.reduce((a, b) => Math.min(a, b))).toBeGreaterThanOrEqual(0);
    expect(xs.reduce((a, b) => Math.max(a, b))).toBeLessThan(1);
    const { mean, variance } = stats(xs);
    // Standard errors: 0.00065 for the mean, 0.0002 for the variance.
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.004);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.0015);
    const u = r.uniform(-3, -1);
    expect(u).toBeGreaterThanOrEqual(-3);
    expect(u).toBeLessThan(-1);
  });

  it('draws normals with the requested mean and standard deviation', () => {
    const r = new Rng(11);
    const xs = new Float64Array(200000);
    r.fillNormal(xs, 2, 3);
    const { mean, variance } = stats(xs);
    expect(Math.abs(mean - 2)).toBeLessThan(0.03); // se 0.0067
    expect(Math.abs(variance - 9)).toBeLessThan(0.15); // se 0.028
    let within = 0;
    for (const x of xs) if (Math.abs(x - 2) < 3) within++;
    expect(Math.abs(within / xs.length - 0.6827)).toBeLessThan(0.006); // se 0.001
  });

  it('draws unbiased integers and rejects bad ranges', () => {
    const r = new Rng(3);
    const counts = new Array(7).fill(0);
    const n = 70000;
    for (let i = 0; i < n; i++) counts[r.int(7)]++;
    // Chi-square with 6 degrees of freedom: 22.5 is the 0.999 quantile.
    const chi2 = counts.reduce((s, c) => s + (c - n / 7) ** 2 / (n / 7), 0);
    expect(chi2).toBeLessThan(22.5);
    expect(r.int(1)).toBe(0);
    expect(r.int(2 ** 32)).toBeLessThan(2 ** 32);
    expect(() => r.int(0)).toThrow(/n must be an integer/);
    expect(() => r.int(2.5)).toThrow(RlpkdError);
  });

  it('shuffles into every permutation with similar frequency', () => {
    const r = new Rng(5);
    const seen = new Map<string, number>();
    for (let i = 0; i < 6000; i++) {
      const p = r.shuffle([0, 1, 2]).join('');
      seen.set(p, (seen.get(p) ?? 0) + 1);
    }
    expect(seen.size).toBe(6);
    for (const c of seen.values()) expect(Math.abs(c - 1000)).toBeLessThan(150); // se 29
    const a = Array.from({ length: 50 }, (_, i) => i);
    const b = new Rng(9).shuffle([...a]);
    expect([...b].sort((x, y) => x - y)).toEqual(a);
    expect(b).toEqual(new Rng(9).shuffle([...a]));
    expect(b).not.toEqual(a);
  });

  it('forks independent child streams that depend only on the seed and the label', () => {
    const parent = new Rng(1234);
    const a1 = parent.fork('policy');
    parent.next();
    parent.normal();
    const a2 = parent.fork('policy');
    const b = parent.fork('data');
    const take = (r: Rng, n = 2000): number[] => Array.from({ length: n }, () => r.next());
    const xa = take(a1);
    expect(take(a2)).toEqual(xa);
    const xb = take(b);
    expect(xb).not.toEqual(xa);
    expect(take(new Rng(1234))).not.toEqual(xa);
    expect(take(new Rng(1235).fork('policy'))).not.toEqual(xa);
    expect(take(a1.fork('x'), 5)).toEqual(take(new Rng(1234).fork('policy').fork('x'), 5));
    // Sample correlation of two independent uniform streams: |r| < 4/sqrt(n) with high probability.
    const ma = stats(xa).mean;
    const mb = stats(xb).mean;
    let cov = 0;
    for (let i = 0; i < xa.length; i++) cov += (xa[i] - ma) * (xb[i] - mb);
    const corr = cov / (xa.length - 1) / Math.sqrt(stats(xa).variance * stats(xb).variance);
    expect(Math.abs(corr)).toBeLessThan(4 / Math.sqrt(xa.length));
  });

  it('round-trips its state through JSON, including a pending Box-Muller value', () => {
    const r = new Rng('resume');
    for (let i = 0; i < 17; i++) r.next();
    r.normal(); // leaves the pair's second value pending
    const saved = JSON.parse(JSON.stringify(r.getState())) as RngState;
    expect(saved.spare).not.toBeNull();
    const after = [r.normal(), r.next(), r.int(1000), r.normal()];
    const resumed = Rng.fromState(saved);
    expect([resumed.normal(), resumed.next(), resumed.int(1000), resumed.normal()]).toEqual(after);
    expect(resumed.fork('k').next()).toEqual(r.fork('k').next());
    expect(() => resumed.setState({ key: [0, 0, 0, 0], s: [0, 0, 0, 0], spare: null })).toThrow(/malformed/);
    expect(() => resumed.setState({ key: [1, 2, 3, 4], s: [1, 2, 3, 2 ** 32], spare: null })).toThrow(
      RlpkdError,
    );
  });
});
