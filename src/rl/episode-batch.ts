/**
 * Whole episodes in the layout the policy graph evaluates in one run: M episodes × S steps × A decisions
 * (sequential: S = L levels, A = 1; independent: S = 1, A = L). Rollout buffers produce it, PPO and MAML
 * minibatch it, the replay buffer stores it.
 */
import { RlpkdError } from '../errors';

/** M episodes, row-major (episode, step, ...). */
export interface EpisodeBatch {
  count: number;
  steps: number;
  decisions: number;
  stateDim: number;
  /** [M, S, D] states as fed to the policy graph (already normalized). */
  states: Float32Array;
  /** [M, S, A] 0/1 decisions. */
  actions: Uint8Array;
  /** [M, S, A] DecisionKind of each decision (Free / ForcedOn / ForcedOff). */
  kinds: Uint8Array;
  /** [M, S, A] logits the policy produced when it acted (float32, exactly as the graph returned them). */
  logits: Float32Array;
  /** [M, S] log π(action of the step) at acting time (float64, Σ over the step's decisions). */
  logProbs: Float64Array;
  /** [M, S] V(s) at acting time. */
  values: Float64Array;
  /** [M, S] rewards. */
  rewards: Float64Array;
  /** [M, S] GAE advantages (zeros until computed). */
  advantages: Float64Array;
  /** [M, S] value targets (zeros until computed). */
  returns: Float64Array;
  /** [M] budget of each episode. */
  budgets: Float64Array;
}

/** Sizes of an EpisodeBatch's rows. */
export interface EpisodeShape {
  steps: number;
  decisions: number;
  stateDim: number;
}

/** A zero-filled batch of `count` episodes. */
export function allocateEpisodes(count: number, shape: EpisodeShape): EpisodeBatch {
  const { steps: S, decisions: A, stateDim: D } = shape;
  return {
    count,
    steps: S,
    decisions: A,
    stateDim: D,
    states: new Float32Array(count * S * D),
    actions: new Uint8Array(count * S * A),
    kinds: new Uint8Array(count * S * A),
    logits: new Float32Array(count * S * A),
    logProbs: new Float64Array(count * S),
    values: new Float64Array(count * S),
    rewards: new Float64Array(count * S),
    advantages: new Float64Array(count * S),
    returns: new Float64Array(count * S),
    budgets: new Float64Array(count),
  };
}

type Field = Exclude<keyof EpisodeBatch, 'count' | 'steps' | 'decisions' | 'stateDim'>;

/** Per-episode element count of each array field. */
function rowSizes(b: EpisodeShape): Record<Field, number> {
  const { steps: S, decisions: A, stateDim: D } = b;
  return {
    states: S * D,
    actions: S * A,
    kinds: S * A,
    logits: S * A,
    logProbs: S,
    values: S,
    rewards: S,
    advantages: S,
    returns: S,
    budgets: 1,
  };
}

/** Names of the array fields (for serialization). */
export const EPISODE_FIELDS: readonly Field[] = [
  'states',
  'actions',
  'kinds',
  'logits',
  'logProbs',
  'values',
  'rewards',
  'advantages',
  'returns',
  'budgets',
];

/** The arrays that hold one row per step (states and decision arrays several values per step). */
export type StepRows = Pick<
  EpisodeBatch,
  'states' | 'actions' | 'kinds' | 'logits' | 'logProbs' | 'values' | 'rewards' | 'advantages' | 'returns'
>;

/**
 * Copies step `from` of `src` into step `to` of `dst` (flat step indices; `stateDim` state values and
 * `decisions` actions, kinds and logits per step, one of each other value). Budgets are per episode and
 * not copied.
 */
export function copyStep(
  src: StepRows,
  from: number,
  dst: StepRows,
  to: number,
  shape: Pick<EpisodeShape, 'stateDim' | 'decisions'>,
): void {
  const { stateDim: D, decisions: A } = shape;
  dst.states.set(src.states.subarray(from * D, (from + 1) * D), to * D);
  dst.actions.set(src.actions.subarray(from * A, (from + 1) * A), to * A);
  dst.kinds.set(src.kinds.subarray(from * A, (from + 1) * A), to * A);
  dst.logits.set(src.logits.subarray(from * A, (from + 1) * A), to * A);
  dst.logProbs[to] = src.logProbs[from];
  dst.values[to] = src.values[from];
  dst.rewards[to] = src.rewards[from];
  dst.advantages[to] = src.advantages[from];
  dst.returns[to] = src.returns[from];
}

/** Copies episode `from` of `src` into row `to` of `dst` (same shape). */
export function copyEpisode(src: EpisodeBatch, from: number, dst: EpisodeBatch, to: number): void {
  const sizes = rowSizes(src);
  for (const f of EPISODE_FIELDS) {
    const n = sizes[f];
    const s = src[f] as Float32Array;
    (dst[f] as Float32Array).set(s.subarray(from * n, (from + 1) * n), to * n);
  }
}

/** The episodes at `indices`, as a new batch (copies). */
export function selectEpisodes(src: EpisodeBatch, indices: ArrayLike<number>): EpisodeBatch {
  const out = allocateEpisodes(indices.length, src);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!(j >= 0 && j < src.count))
      throw new RlpkdError(`selectEpisodes: index ${j} outside 0..${src.count - 1}`);
    copyEpisode(src, j, out, i);
  }
  return out;
}

/** All episodes of several batches of the same shape, in order. */
export function concatEpisodes(batches: readonly EpisodeBatch[]): EpisodeBatch {
  if (batches.length === 0) throw new RlpkdError('concatEpisodes: no batches');
  const first = batches[0];
  for (const b of batches) {
    if (b.steps !== first.steps || b.decisions !== first.decisions || b.stateDim !== first.stateDim) {
      throw new RlpkdError(
        `concatEpisodes: shape ${b.steps}×${b.decisions}×${b.stateDim} differs from ${first.steps}×${first.decisions}×${first.stateDim}`,
      );
    }
  }
  const out = allocateEpisodes(
    batches.reduce((n, b) => n + b.count, 0),
    first,
  );
  let row = 0;
  for (const b of batches) for (let i = 0; i < b.count; i++) copyEpisode(b, i, out, row++);
  return out;
}

/** Mean undiscounted return per episode (Σ rewards / M). */
export function meanEpisodeReturn(b: EpisodeBatch): number {
  let s = 0;
  for (let i = 0; i < b.rewards.length; i++) s += b.rewards[i];
  return b.count ? s / b.count : Number.NaN;
}
