/** The best classes of a classification head's logits, as probabilities (softmax). */

/** A class and its softmax probability. */
export interface ClassScore {
  label: number;
  score: number;
}

/**
 * The `k` most probable classes of one image's logits [K], best first (ties to the lower class index),
 * with softmax probabilities computed in float64 (shifted by the largest logit).
 */
export function topClasses(logits: ArrayLike<number>, k: number): ClassScore[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const e = Array.from({ length: logits.length }, (_, i) => Math.exp(logits[i] - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e
    .map((v, label) => ({ label, score: v / sum }))
    .sort((a, b) => b.score - a.score || a.label - b.label)
    .slice(0, Math.max(0, k));
}
