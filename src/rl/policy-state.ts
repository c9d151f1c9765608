/**
 * The policy's state, one formula for every caller (the environment, the config's state size, the
 * policy's dimensions), parameterized by a state kind.
 *
 * 'train' (SPEC.md's training-time state): [avg-pool ‖ max-pool of the coarsest level (2·C),
 * avg-pool of each level (Σ C_l, decision order), L_before / L_ref (1), levels selected so far (L,
 * decision order), budget left (1)] — 1542 for 4 levels × 256 channels.
 *
 * 'deploy' (what the student has computed when it decides, at inference, where no teacher exists): the
 * same parts without the loss feature, and pooled over the trunk's boundary tensors instead of the
 * level outputs (the levels' own parts are what the decision may skip): [avg-pool ‖ max-pool of the
 * coarsest trunk tensor (2·C), avg-pool of each trunk tensor a level part reads (Σ C_s), levels
 * selected so far (L), budget left (1)]. src/rl/deploy-state.ts finds those tensors in a student graph.
 */
import { RlpkdError } from '../errors';
import type { HostTensor } from '../runtime/tensors';

/** Which state: 'train' is the training-time state of SPEC.md, 'deploy' the inference-time one. */
export type PolicyStateKind = 'train' | 'deploy';

/** The state kinds, in the order the config lists them. */
export const POLICY_STATE_KINDS: readonly PolicyStateKind[] = ['train', 'deploy'];

/** A level (or, for the 'deploy' kind, a trunk tensor) as the state formula needs it. */
export interface StateLevel {
  /** Level name; for a 'deploy' source, the trunk tensor's name in the student graph. */
  name: string;
  stride: number;
  channels: number;
}

/** Where each part of a state sits. */
export interface StateLayout {
  kind: PolicyStateKind;
  dim: number;
  /** Values of the pooled features (they come first). */
  pooledWidth: number;
  /** Index of L_before / L_ref (null for the 'deploy' kind, which has none). */
  lossIndex: number | null;
  /** First index of the L selected-so-far flags. */
  selectedOffset: number;
  /** Index of the budget left. */
  budgetIndex: number;
  /** Levels in the order the state lists them (decision order). */
  levels: readonly StateLevel[];
  /** The coarsest pooled source (largest stride): a level ('train') or a trunk tensor ('deploy'). */
  coarsest: StateLevel;
  /** What is avg-pooled after the coarsest source's avg ‖ max, in order (features are read by name). */
  sources: readonly StateLevel[];
}

/**
 * The layout of `kind` states over `levels` (decision order). The 'deploy' kind pools `trunkSources`
 * (the trunk tensors the level parts read, deploy-state.ts); the 'train' kind pools the levels.
 */
export function stateLayout(
  kind: PolicyStateKind,
  levels: readonly StateLevel[],
  trunkSources?: readonly StateLevel[],
): StateLayout {
  if (levels.length === 0) throw new RlpkdError('policy state: the student has no pyramid levels');
  const sources = kind === 'train' ? levels : (trunkSources ?? []);
  if (sources.length === 0) {
    throw new RlpkdError('policy state: the deploy state kind needs the trunk tensors the levels read', {
      hint: 'a student whose levels share no trunk (a single level) cannot use rl.policy.state: deploy',
    });
  }
  const coarsest = sources.reduce((a, b) => (b.stride > a.stride ? b : a));
  const pooledWidth = 2 * coarsest.channels + sources.reduce((n, l) => n + l.channels, 0);
  const L = levels.length;
  const loss = kind === 'train' ? 1 : 0;
  return {
    kind,
    dim: pooledWidth + loss + L + 1,
    pooledWidth,
    lossIndex: loss ? pooledWidth : null,
    selectedOffset: pooledWidth + loss,
    budgetIndex: pooledWidth + loss + L,
    levels,
    coarsest,
    sources,
  };
}

/** The non-feature parts of one image's state. */
export interface StateScalars {
  /** L_before / L_ref (ignored by the 'deploy' kind). */
  loss: number;
  /** [L] levels selected so far (decision order). */
  selected: ArrayLike<number>;
  /** Budget left. */
  budgetLeft: number;
}

/** Per-channel average (or max) over H·W of image n of a [N, C, H, W] tensor into dst[at..at+C). */
function poolChannels(t: HostTensor, n: number, kind: 'avg' | 'max', dst: Float32Array, at: number): number {
  const [, C, H, W] = t.dims;
  const d = t.data as Float32Array;
  const hw = H * W;
  for (let c = 0; c < C; c++) {
    const base = (n * C + c) * hw;
    let acc = kind === 'avg' ? 0 : -Infinity;
    for (let i = 0; i < hw; i++) acc = kind === 'avg' ? acc + d[base + i] : Math.max(acc, d[base + i]);
    dst[at + c] = kind === 'avg' ? acc / hw : acc;
  }
  return at + C;
}

/** [N, pooledWidth]: the pooled features of N images (features by source name: level or trunk tensor). */
export function pooledStateFeatures(
  layout: StateLayout,
  features: Readonly<Record<string, HostTensor>>,
  N: number,
): Float32Array {
  const out = new Float32Array(N * layout.pooledWidth);
  const level = (l: StateLevel): HostTensor => {
    const t = features[l.name];
    if (!t || t.dims.length !== 4 || t.dims[0] !== N || t.dims[1] !== l.channels) {
      throw new RlpkdError(
        `policy state: ${layout.kind === 'train' ? 'level' : 'trunk tensor'} ${l.name} features are [${t?.dims.join(', ') ?? 'missing'}], expected [${N}, ${l.channels}, H, W]`,
      );
    }
    return t;
  };
  for (let n = 0; n < N; n++) {
    let o = n * layout.pooledWidth;
    o = poolChannels(level(layout.coarsest), n, 'avg', out, o);
    o = poolChannels(level(layout.coarsest), n, 'max', out, o);
    for (const l of layout.sources) o = poolChannels(level(l), n, 'avg', out, o);
  }
  return out;
}

/** Writes the state of image n (pooled features from `pooled`, then the scalars) into dst[at..at+dim). */
export function writeState(
  layout: StateLayout,
  pooled: Float32Array,
  scalars: StateScalars,
  n: number,
  dst: Float32Array,
  at = 0,
): void {
  const w = layout.pooledWidth;
  const L = layout.levels.length;
  dst.set(pooled.subarray(n * w, (n + 1) * w), at);
  if (layout.lossIndex !== null) dst[at + layout.lossIndex] = scalars.loss;
  for (let k = 0; k < L; k++) dst[at + layout.selectedOffset + k] = scalars.selected[k];
  dst[at + layout.budgetIndex] = scalars.budgetLeft;
}
