/**
 * Reward scaling for PPO (config `rl.ppo.normalize_reward`), as stable-baselines3's VecNormalize does it:
 * each environment's discounted return ret ← γ·ret + r feeds a running variance, and the agent sees
 * clip(r / sqrt(var + 1e-8), ±10); ret restarts at episode ends. A VecEnv wrapper, so rollouts, PPO and
 * MAML need no change; episode summaries keep the raw rewards for logging. The statistics are saved in
 * checkpoints (`toJSON`/`load`).
 */
import { RunningMeanStd, type RunningMeanStdState } from '../rl/running-mean-std';
import type { StepInfo, VecEnv, VecResetResult, VecStepResult } from '../rl/vec-env';

/** Running statistics of the discounted return, shareable by several wrapped environments. */
export class ReturnScaler {
  readonly rms = new RunningMeanStd(1);
  constructor(
    readonly gamma: number,
    readonly clip = 10,
    readonly epsilon = 1e-8,
  ) {}

  /** Updates the statistics with the returns, then scales the rewards in place. */
  scale(rewards: Float64Array, returns: Float64Array, dones: Uint8Array): void {
    for (let e = 0; e < rewards.length; e++) returns[e] = returns[e] * this.gamma + rewards[e];
    this.rms.update(returns);
    const std = Math.sqrt(this.rms.var[0] + this.epsilon);
    for (let e = 0; e < rewards.length; e++) {
      rewards[e] = Math.max(-this.clip, Math.min(this.clip, rewards[e] / std));
      if (dones[e]) returns[e] = 0;
    }
  }

  toJSON(): RunningMeanStdState {
    return this.rms.toJSON();
  }

  load(state: RunningMeanStdState): void {
    this.rms.load(state);
  }
}

/** A VecEnv whose rewards are scaled by a ReturnScaler (see module doc). */
export class RewardScalingEnv<I extends StepInfo = StepInfo> implements VecEnv<I> {
  private returns: Float64Array;

  constructor(
    readonly inner: VecEnv<I>,
    readonly scaler: ReturnScaler,
  ) {
    this.returns = new Float64Array(inner.numEnvs);
  }

  get numEnvs(): number {
    return this.inner.numEnvs;
  }
  get stateDim(): number {
    return this.inner.stateDim;
  }
  get numLevels(): number {
    return this.inner.numLevels;
  }
  get costs(): readonly number[] {
    return this.inner.costs;
  }
  get levelNames(): readonly string[] {
    return this.inner.levelNames;
  }
  get actionMode(): VecEnv['actionMode'] {
    return this.inner.actionMode;
  }

  async reset(): Promise<VecResetResult> {
    this.returns = new Float64Array(this.inner.numEnvs);
    return this.inner.reset();
  }

  async step(actions: Uint8Array): Promise<VecStepResult<I>> {
    const out = await this.inner.step(actions);
    const rewards = Float64Array.from(out.rewards);
    this.scaler.scale(rewards, this.returns, out.dones);
    return { ...out, rewards };
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
