/**
 * Orthogonal weight initialization (Saxe et al. 2014) as PyTorch's `nn.init.orthogonal_` does it, in plain
 * TypeScript with the seeded RNG: a Gaussian matrix made orthonormal by Gram–Schmidt (the Q of its QR
 * decomposition with a positive diagonal in R), scaled by a gain.
 */
import { RlpkdError } from '../errors';
import type { Rng } from '../util/rng';

/**
 * A rows × cols matrix (row-major) whose rows (rows ≤ cols) or columns (rows > cols) are orthonormal,
 * times `gain`.
 */
export function orthogonalMatrix(rows: number, cols: number, gain: number, rng: Rng): Float32Array {
  if (!(rows > 0 && cols > 0)) throw new RlpkdError(`orthogonalMatrix: bad shape ${rows}×${cols}`);
  // Orthonormalize the k = min(rows, cols) vectors of length n = max(rows, cols).
  const n = Math.max(rows, cols);
  const k = Math.min(rows, cols);
  const v = new Float64Array(k * n);
  rng.fillNormal(v);
  for (let j = 0; j < k; j++) {
    const vj = v.subarray(j * n, (j + 1) * n);
    // Modified Gram–Schmidt, applied twice ("twice is enough") for orthogonality to rounding level.
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < j; i++) {
        const vi = v.subarray(i * n, (i + 1) * n);
        let dot = 0;
        for (let x = 0; x < n; x++) dot += vi[x] * vj[x];
        for (let x = 0; x < n; x++) vj[x] -= dot * vi[x];
      }
    }
    let norm = 0;
    for (let x = 0; x < n; x++) norm += vj[x] * vj[x];
    norm = Math.sqrt(norm);
    if (!(norm > 1e-12)) throw new RlpkdError('orthogonalMatrix: degenerate random draw');
    for (let x = 0; x < n; x++) vj[x] /= norm;
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      // rows ≤ cols: vector r is row r; rows > cols: vector c is column c.
      out[r * cols + c] = gain * (rows <= cols ? v[r * n + c] : v[c * n + r]);
    }
  }
  return out;
}
