/** Seeded inputs for the head tests: pyramid features and FCOS target feeds. */
import { HEAD_LOSS_NAMES, type FcosTargets, type HeadLevel } from '../../src/heads';
import type { HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';

/** Standard-normal features for each level, batch `n`. */
export function levelFeeds(
  levels: readonly HeadLevel[],
  n: number,
  seed: number,
): Record<string, HostTensor> {
  const rng = new Rng(seed);
  return Object.fromEntries(
    levels.map((l) => {
      const dims = [n, l.channels, l.height, l.width];
      const data = Float32Array.from({ length: n * l.channels * l.height * l.width }, () => rng.normal(0, 1));
      return [l.name, { data, dims }];
    }),
  );
}

/** The head loss's detection target inputs for targets of `n` images and `k` classes. */
export function fcosTargetFeeds(t: FcosTargets, n: number, k: number): Record<string, HostTensor> {
  const A = t.locations;
  return {
    [HEAD_LOSS_NAMES.clsTargets]: { data: t.cls, dims: [n, A, k] },
    [HEAD_LOSS_NAMES.boxTargets]: { data: t.box, dims: [n, A, 4] },
    [HEAD_LOSS_NAMES.centernessTargets]: { data: t.centerness, dims: [n, A] },
    [HEAD_LOSS_NAMES.positive]: { data: t.positive, dims: [n, A] },
  };
}

/** int64 labels. */
export function int64Feed(values: readonly number[], dims: number[]): HostTensor {
  return { data: BigInt64Array.from(values.map((v) => BigInt(v))), dims };
}
