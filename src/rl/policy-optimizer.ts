/**
 * The bridge between a PolicyNetwork and the training engine: builds the PPO loss graph's artifacts
 * (generateArtifacts) once, holds a TrainingSession on them, and turns stored episodes into its feeds.
 * PPO and MAML both train the policy through it.
 */
import { RlpkdError } from '../errors';
import type { ExecutionProviderName } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import { generateArtifacts, type TrainingArtifacts } from '../training/artifacts';
import type { LrScheduleConfig } from '../training/lr-schedules';
import type { OptimizerConfig } from '../training/optimizers';
import { TrainingSession, type OptimizerStepResult } from '../training/training-session';
import { DecisionKind } from './bernoulli';
import type { EpisodeBatch } from './episode-batch';
import { buildPpoLossModel, PPO_IO } from './ppo-loss-graph';
import type { PolicyNetwork } from './policy';
import { policyParameterSpecs, type PolicyParameter } from './policy-graph';
import { previousDecisions } from './policy';
import { duplicateRows } from './row-padding';

export interface PolicyOptimizerOptions {
  optimizer: OptimizerConfig;
  /** Global gradient-norm bound (default: none). */
  maxGradNorm?: number;
  lrSchedule?: LrScheduleConfig;
  /** Build the loss with SB3-style value clipping. */
  clipValue?: boolean;
  /** Also build the fused step graph (forward, backward, clipping and update in one run). */
  fused?: boolean;
  /** Folder to cache the generated artifacts in (default: in memory). */
  artifactsDir?: string;
  /** Default: the policy's (so the update reproduces the rollout's logits exactly). */
  executionProvider?: ExecutionProviderName;
  /** Default: the policy's (1). */
  intraOpNumThreads?: number;
}

/** Coefficients of the PPO loss for one run. */
export interface PpoCoefficients {
  clipRange: number;
  clipRangeVf?: number;
  entCoef: number;
  vfCoef: number;
  /** Multiplies the whole loss (default 1). */
  lossScale?: number;
  /** Normalize the advantages over the minibatch's steps that have a free decision (default true). */
  normalizeAdvantage?: boolean;
}

/** Feeds of one minibatch and how many episodes they hold (before any padding). */
export interface MinibatchFeeds {
  feeds: Record<string, HostTensor>;
  episodes: number;
  steps: number;
}

/** Loss outputs of one training run, decoded. */
export interface PpoStepOutputs {
  loss: number;
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  /** [m, S] log r_t. */
  logRatio: Float32Array;
}

/** 1 where the step of episode row m has at least one free decision. */
export function freeSteps(batch: EpisodeBatch, rows: ArrayLike<number>): Uint8Array {
  const { steps: S, decisions: A } = batch;
  const out = new Uint8Array(rows.length * S);
  for (let i = 0; i < rows.length; i++) {
    for (let s = 0; s < S; s++) {
      for (let a = 0; a < A; a++) {
        if (batch.kinds[(rows[i] * S + s) * A + a] === DecisionKind.Free) out[i * S + s] = 1;
      }
    }
  }
  return out;
}

/** Trains a policy's parameters with the engine (see module doc). */
export class PolicyOptimizer {
  private constructor(
    readonly policy: PolicyNetwork,
    readonly session: TrainingSession,
    readonly artifacts: TrainingArtifacts,
    private readonly clipValue: boolean,
  ) {}

  /** Generates the loss artifacts for `policy`'s architecture and opens a session at its current weights. */
  static async create(policy: PolicyNetwork, options: PolicyOptimizerOptions): Promise<PolicyOptimizer> {
    const params = policy.getParameters();
    const model = buildPpoLossModel(policy.arch, params, { clipValue: options.clipValue ?? false });
    const names = policyParameterSpecs(policy.arch).map((s) => s.name);
    const artifacts = generateArtifacts(model, {
      trainable: names,
      loss: {
        type: 'output',
        output: PPO_IO.loss,
        extraOutputs: [PPO_IO.policyLoss, PPO_IO.valueLoss, PPO_IO.entropy, PPO_IO.logRatio],
      },
      optimizer: options.optimizer,
      fused: options.fused ?? false,
      untieSharedInitializers: false,
      ...(options.artifactsDir ? { outDir: options.artifactsDir } : {}),
    });
    const missing = names.filter((n) => !artifacts.manifest.gradients[n]);
    if (missing.length) {
      throw new RlpkdError(`policy loss: no gradient reaches ${missing.join(', ')}`, {
        hint: 'every policy parameter should influence the PPO loss; this is a bug in the loss graph',
      });
    }
    const session = await TrainingSession.create({
      artifacts,
      ...(options.maxGradNorm !== undefined ? { maxGradNorm: options.maxGradNorm } : {}),
      ...(options.lrSchedule ? { lrSchedule: options.lrSchedule } : {}),
      ...(options.executionProvider || policy.runtimeOptions.executionProvider
        ? { executionProvider: options.executionProvider ?? policy.runtimeOptions.executionProvider }
        : {}),
      intraOpNumThreads: options.intraOpNumThreads ?? policy.runtimeOptions.intraOpNumThreads,
    });
    const opt = new PolicyOptimizer(policy, session, artifacts, options.clipValue ?? false);
    await opt.loadParameters(params);
    return opt;
  }

  /**
   * Feeds of the loss graph for episode rows `rows` of `batch`. A single episode is fed twice with half
   * the policy weight each (same loss, same gradient; see row-padding.ts).
   */
  feeds(batch: EpisodeBatch, rows: ArrayLike<number>, coef: PpoCoefficients): MinibatchFeeds {
    const arch = this.policy.arch;
    const { steps: S, decisions: A, stateDim: D } = batch;
    const L = S * A;
    if (L !== arch.numLevels || D !== arch.stateDim) {
      throw new RlpkdError(
        `episodes of ${S} steps × ${A} decisions × ${D} state dims do not fit a ${arch.mode} policy with ${arch.numLevels} levels and stateDim ${arch.stateDim}`,
      );
    }
    const m = rows.length;
    const states = new Float32Array(m * S * D);
    const actions = new Float32Array(m * L);
    const free = new Float32Array(m * L);
    const oldLogits = new Float32Array(m * L);
    const oldValues = new Float32Array(m * S);
    const adv = new Float64Array(m * S);
    const returns = new Float32Array(m * S);
    for (let i = 0; i < m; i++) {
      const r = rows[i];
      states.set(batch.states.subarray(r * S * D, (r + 1) * S * D), i * S * D);
      for (let k = 0; k < L; k++) {
        actions[i * L + k] = batch.actions[r * L + k];
        free[i * L + k] = batch.kinds[r * L + k] === DecisionKind.Free ? 1 : 0;
        oldLogits[i * L + k] = batch.logits[r * L + k];
      }
      for (let s = 0; s < S; s++) {
        oldValues[i * S + s] = batch.values[r * S + s];
        adv[i * S + s] = batch.advantages[r * S + s];
        returns[i * S + s] = batch.returns[r * S + s];
      }
    }
    const isFree = freeSteps(batch, rows);
    let count = 0;
    for (const f of isFree) count += f;
    const weight = new Float32Array(m * S);
    if (count > 0) for (let j = 0; j < m * S; j++) weight[j] = isFree[j] / count;
    const advantages = new Float32Array(m * S);
    if ((coef.normalizeAdvantage ?? true) && count > 1) {
      let mean = 0;
      for (let j = 0; j < m * S; j++) if (isFree[j]) mean += adv[j];
      mean /= count;
      let v = 0;
      for (let j = 0; j < m * S; j++) if (isFree[j]) v += (adv[j] - mean) ** 2;
      const std = Math.sqrt(v / (count - 1));
      for (let j = 0; j < m * S; j++) advantages[j] = isFree[j] ? (adv[j] - mean) / (std + 1e-8) : 0;
    } else advantages.set(adv);
    const scalar = (x: number): HostTensor => ({ data: Float32Array.of(x), dims: [] });
    const pad = m === 1;
    const rowsOf = (a: Float32Array): Float32Array => (pad ? duplicateRows(a) : a);
    if (pad) for (let j = 0; j < weight.length; j++) weight[j] /= 2;
    const n = pad ? 2 : m;
    const feeds: Record<string, HostTensor> = {
      states: { data: rowsOf(states), dims: [n, S, D] },
      [PPO_IO.actions]: { data: rowsOf(actions), dims: [n, L] },
      [PPO_IO.free]: { data: rowsOf(free), dims: [n, L] },
      [PPO_IO.oldLogits]: { data: rowsOf(oldLogits), dims: [n, L] },
      [PPO_IO.oldValues]: { data: rowsOf(oldValues), dims: [n, S] },
      [PPO_IO.advantages]: { data: rowsOf(advantages), dims: [n, S] },
      [PPO_IO.returns]: { data: rowsOf(returns), dims: [n, S] },
      [PPO_IO.policyWeight]: { data: rowsOf(weight), dims: [n, S] },
      [PPO_IO.clipRange]: scalar(coef.clipRange),
      [PPO_IO.entCoef]: scalar(coef.entCoef),
      [PPO_IO.vfCoef]: scalar(coef.vfCoef),
      [PPO_IO.lossScale]: scalar(coef.lossScale ?? 1),
    };
    if (this.clipValue) {
      if (coef.clipRangeVf === undefined)
        throw new RlpkdError('PPO: the loss clips values but clipRangeVf is not set');
      feeds[PPO_IO.clipRangeVf] = scalar(coef.clipRangeVf);
    }
    if (arch.mode === 'sequential') {
      const H = arch.hiddenSize;
      feeds.prev_actions = { data: rowsOf(previousDecisions(actions, m, L)), dims: [n, L] };
      feeds.h0 = { data: new Float32Array(n * H), dims: [n, H] };
      feeds.c0 = { data: new Float32Array(n * H), dims: [n, H] };
    }
    return { feeds, episodes: m, steps: S };
  }

  /** Forward + backward on the feeds; gradients are added to the accumulated ones. */
  async trainStep(mb: MinibatchFeeds): Promise<PpoStepOutputs> {
    return decode(await this.session.trainStep(mb.feeds), mb);
  }

  /** Forward only (no gradients). */
  async evalStep(mb: MinibatchFeeds): Promise<PpoStepOutputs> {
    return decode(await this.session.evalStep(mb.feeds), mb);
  }

  /** Forward, backward, gradient clipping and the optimizer update in one run (needs `fused`). */
  async fusedStep(mb: MinibatchFeeds): Promise<PpoStepOutputs & { gradNorm: number }> {
    const r = await this.session.fusedStep(mb.feeds);
    return { ...decode(r.outputs, mb), gradNorm: r.gradNorm };
  }

  lazyResetGrad(): Promise<void> {
    return this.session.lazyResetGrad();
  }

  optimizerStep(): Promise<OptimizerStepResult> {
    return this.session.optimizerStep();
  }

  /** The session's current weights as policy parameters. */
  async getParameters(): Promise<PolicyParameter[]> {
    const p = await this.session.getParameters();
    return policyParameterSpecs(this.policy.arch).map((s) => ({
      name: s.name,
      dims: [...s.dims],
      data: (p[s.name].data as Float32Array).slice(),
    }));
  }

  /** Accumulated gradients as policy parameters (zeros where none). */
  async getGradients(): Promise<PolicyParameter[]> {
    const g = await this.session.getGradients();
    return policyParameterSpecs(this.policy.arch).map((s) => ({
      name: s.name,
      dims: [...s.dims],
      data: g[s.name]
        ? (g[s.name].data as Float32Array).slice()
        : new Float32Array(s.dims.reduce((a, b) => a * b, 1)),
    }));
  }

  /** Puts weights into the session (not into the policy). */
  async loadParameters(params: readonly PolicyParameter[]): Promise<void> {
    const feeds: Record<string, HostTensor> = {};
    for (const p of params) feeds[p.name] = { data: p.data, dims: p.dims };
    await this.session.loadParameters(feeds);
  }

  /** Copies the session's weights into the policy (its inference graphs are rebuilt). */
  async syncPolicy(): Promise<void> {
    await this.policy.setParameters(await this.getParameters());
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function decode(out: Record<string, HostTensor>, mb: MinibatchFeeds): PpoStepOutputs {
  const scalar = (name: string): number => (out[name].data as Float32Array)[0];
  return {
    loss: scalar(PPO_IO.loss),
    policyLoss: scalar(PPO_IO.policyLoss),
    valueLoss: scalar(PPO_IO.valueLoss),
    entropy: scalar(PPO_IO.entropy),
    // Padding rows (a single episode fed twice) are dropped.
    logRatio: (out[PPO_IO.logRatio].data as Float32Array).slice(0, mb.episodes * mb.steps),
  };
}
