/** float64 references of the per-image level distances, written from the papers' formulas. */
import type { DistillLossKind } from '../../src/training/level-distances';

/** d(S_n, T_n) for every image n of two [N, C, H, W] maps (flat, row-major). */
export function levelDistanceReference(
  kind: DistillLossKind,
  s: ArrayLike<number>,
  t: ArrayLike<number>,
  dims: readonly [number, number, number, number],
  tau = 1,
): number[] {
  const [N, C, H, W] = dims;
  const hw = H * W;
  const channel = (x: ArrayLike<number>, n: number, c: number) =>
    Array.from({ length: hw }, (_, i) => x[(n * C + c) * hw + i]);
  const out: number[] = [];
  for (let n = 0; n < N; n++) {
    let acc = 0;
    for (let c = 0; c < C; c++) {
      const sv = channel(s, n, c);
      const tv = channel(t, n, c);
      if (kind === 'mse') acc += sv.reduce((a, x, i) => a + (x - tv[i]) ** 2, 0) / hw;
      if (kind === 'pkd') {
        const norm = (v: number[]) => {
          const m = v.reduce((a, b) => a + b, 0) / hw;
          const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(hw - 1, 1) + 1e-10);
          return v.map((x) => (x - m) / (sd + 1e-6));
        };
        const a = norm(sv);
        const b = norm(tv);
        acc += a.reduce((q, x, i) => q + (x - b[i]) ** 2, 0) / hw / 2;
      }
      if (kind === 'cwd') {
        const logSoftmax = (v: number[]) => {
          const z = v.map((x) => x / tau);
          const mx = Math.max(...z);
          const lse = mx + Math.log(z.reduce((a, x) => a + Math.exp(x - mx), 0));
          return z.map((x) => x - lse);
        };
        const ls = logSoftmax(sv);
        const lt = logSoftmax(tv);
        acc += tau * tau * lt.reduce((q, x, i) => q + Math.exp(x) * (x - ls[i]), 0);
      }
    }
    out.push(acc / C);
  }
  return out;
}
