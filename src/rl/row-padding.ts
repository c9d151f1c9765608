/**
 * The one-row workaround, in one place. onnxruntime multiplies a one-row matrix on another code path
 * (GEMV) whose last bits differ from the GEMM every other batch size uses; the policy's step and sequence
 * runs and the PPO update's loss graph all feed a lone row twice, so a rollout's logits and the update's
 * logits stay bit-identical whatever the batch size.
 */

/** [a, a]: the rows of `a` followed by the same rows again. */
export function duplicateRows(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length * 2);
  out.set(a, 0);
  out.set(a, a.length);
  return out;
}
