/** ‖got − ref‖ / ‖ref‖ (0 when both are zero, Infinity for a length mismatch or a zero reference). */
export function relativeL2(got: Float32Array, ref: Float32Array): number {
  if (got.length !== ref.length) return Infinity;
  let d2 = 0;
  let r2 = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i] - ref[i];
    d2 += d * d;
    r2 += ref[i] * ref[i];
  }
  return r2 > 0 ? Math.sqrt(d2 / r2) : Math.sqrt(d2) > 0 ? Infinity : 0;
}
