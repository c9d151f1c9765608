/**
 * A batch grouped by the pyramid levels each image selects, for updates that compute only what the
 * selected levels need (student-distiller.ts): the images of a group share one pruned gradient graph.
 */
import type { HostTensor } from '../runtime/tensors';

/** Images (batch rows) that select the same levels. */
export interface SubsetGroup {
  /** Selected level indices (level order, finest first); non-empty. */
  levels: number[];
  /** Batch rows of the group, ascending. */
  rows: number[];
}

/**
 * The batch's images grouped by the levels their [N, L] mask row selects (a non-zero entry), in the order
 * each subset first appears; images that select nothing contribute nothing and are in no group.
 */
export function groupBySubset(mask: Float32Array, N: number, L: number): SubsetGroup[] {
  const byKey = new Map<string, SubsetGroup>();
  for (let n = 0; n < N; n++) {
    const levels: number[] = [];
    for (let l = 0; l < L; l++) if (mask[n * L + l] !== 0) levels.push(l);
    if (levels.length === 0) continue;
    const key = levels.join(',');
    let g = byKey.get(key);
    if (!g) {
      g = { levels, rows: [] };
      byKey.set(key, g);
    }
    g.rows.push(n);
  }
  return [...byKey.values()];
}

/** Rows `rows` of a [N, ...] float32 tensor (the tensor itself when they are all of its rows in order). */
export function gatherRows(t: HostTensor, rows: readonly number[]): HostTensor {
  const N = t.dims[0];
  if (rows.length === N && rows.every((r, i) => r === i)) return t;
  const per = t.data.length / N;
  const src = t.data as Float32Array;
  const data = new Float32Array(rows.length * per);
  rows.forEach((r, i) => data.set(src.subarray(r * per, (r + 1) * per), i * per));
  return { data, dims: [rows.length, ...t.dims.slice(1)] };
}

/** The [rows, cols] block of a row-major [N, L] matrix. */
export function gatherBlock(
  m: Float32Array,
  L: number,
  rows: readonly number[],
  cols: readonly number[],
): Float32Array {
  const out = new Float32Array(rows.length * cols.length);
  rows.forEach((r, i) => cols.forEach((c, j) => (out[i * cols.length + j] = m[r * L + c])));
  return out;
}
