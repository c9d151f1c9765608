/**
 * Policy decision throughput: how long one decision step takes for a batch of environments, i.e. one
 * `selectAction` call (graph run plus masking and sampling in TypeScript), reported per state. The
 * default is the product's shape: 64 states of 1542 dims (4 levels × 256 channels), hidden 256.
 */
import { Rng } from '../util/rng';
import { SEED_LEVEL_COSTS } from './bandit-env';
import { PolicyNetwork } from './policy';

export interface PolicyBenchOptions {
  mode?: 'sequential' | 'independent';
  batch?: number;
  stateDim?: number;
  numLevels?: number;
  hiddenSize?: number;
  /** Timed decision steps (default 200), after `warmup` untimed ones (default 20). */
  iterations?: number;
  warmup?: number;
  intraOpNumThreads?: number;
}

export interface PolicyBenchResult {
  mode: 'sequential' | 'independent';
  batch: number;
  stateDim: number;
  hiddenSize: number;
  iterations: number;
  /** Median wall time of one decision step for the whole batch. */
  medianMsPerBatch: number;
  /** medianMsPerBatch / batch. */
  msPerState: number;
}

/** Times `selectAction` on random states (see module doc). */
export async function benchPolicyThroughput(options: PolicyBenchOptions = {}): Promise<PolicyBenchResult> {
  const mode = options.mode ?? 'sequential';
  const batch = options.batch ?? 64;
  const stateDim = options.stateDim ?? 1542;
  const numLevels = options.numLevels ?? 4;
  const hiddenSize = options.hiddenSize ?? 256;
  const iterations = options.iterations ?? 200;
  const warmup = options.warmup ?? 20;
  const costs = numLevels === 4 ? SEED_LEVEL_COSTS : new Array<number>(numLevels).fill(1 / numLevels);
  const policy = await PolicyNetwork.create(
    { mode, stateDim, numLevels, hiddenSize, costs },
    { seed: 0, ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}) },
  );
  const rng = new Rng(0);
  const states = Float32Array.from({ length: batch * stateDim }, () => rng.normal());
  const budgets = new Float64Array(batch).fill(0.6);
  const steps = mode === 'sequential' ? numLevels : 1;
  const times: number[] = [];
  let memory = policy.newMemory(budgets);
  for (let i = 0; i < warmup + iterations; i++) {
    if (memory.step >= steps) memory = policy.newMemory(budgets);
    const t0 = process.hrtime.bigint();
    await policy.selectAction(states, { memory });
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i >= warmup) times.push(dt);
  }
  await policy.release();
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  return {
    mode,
    batch,
    stateDim,
    hiddenSize,
    iterations,
    medianMsPerBatch: median,
    msPerState: median / batch,
  };
}
