/**
 * The live state of a training run and the operations every phase shares: the distillation step (the one
 * code path for uniform, fixed-selection and RL-selected levels), the level-selection environments, PPO
 * updates, metrics/TensorBoard logging, checkpoints and the Ctrl-C check between units of work.
 *
 * Resuming exactly. Every random choice is a pure function of the seed and the position in the run, or
 * lives in saved state: the data order (BatchLoader epoch plans), the policy's sampling RNG and normalizer
 * (saved with the policy), the image streams (saved cursors), and the trainers: one PPOTrainer (phases 2
 * and 3) and one MAMLTrainer (phase 4) live for the whole run, as stable-baselines3's PPO object does, and
 * their state (optimizer moments, RNG streams) is saved with every checkpoint and restored on resume.
 * The environment's budget draws are reseeded from the position each iteration. Phase 4's unit of
 * resumption is the epoch (its environments are made per epoch). The position itself is a RunProgress, moved only by its methods.
 */
import * as path from 'node:path';
import type { RunConfig } from '../config/schema';
import { RlpkdError } from '../errors';
import type { Logger } from '../logging/logger';
import type { MetricsWriter } from '../logging/metrics';
import type { RunDir } from '../logging/run-dir';
import type { TensorBoardWriter } from '../logging/tfevents';
import type { EpisodeBatch } from '../rl/episode-batch';
import type { DistillationStepInfo, ParallelDistillationEnv } from '../rl/distillation-env';
import { MAMLTrainer, type MamlConfig } from '../rl/maml';
import { PolicyNetwork } from '../rl/policy';
import { PPOTrainer, type PpoUpdateStats } from '../rl/ppo';
import type { OnnxModel } from '../onnx/types';
import type { CheckpointState } from '../training/checkpoint';
import type { LabelsOnlyBaseline } from './labels-only-baseline';
import { TASK_CHECKPOINT_FILES } from './task-checkpoint-files';
import type { DistillStepResult, ImageBatch, StudentDistiller } from './student-distiller';
import { GradNorm } from './gradnorm';
import { RewardScalingEnv, type ReturnScaler } from './reward-scaling';
import {
  writeRunCheckpoint,
  type LoadedRunCheckpoint,
  type RunCheckpoint,
  type TaskCheckpoint,
} from './run-checkpoint';
import type { RunProgress } from './run-progress';
import { createSelectionEnv, decisionCosts, type SelectionEnvOptions } from './selection-env';
import type { DistillSetup } from './setup';
import { StepTimings } from './step-timings';
import { subsetWorkShares } from './subset-shares';

/** Thrown by a phase after Ctrl-C once the checkpoint is saved. */
export class TrainingInterrupted extends Error {
  constructor(readonly checkpointDir: string) {
    super(`training interrupted; checkpoint saved in ${checkpointDir}`);
    this.name = 'TrainingInterrupted';
  }
}

/** Phase names (index 0 = phase 1). */
export const PHASE_NAMES = ['pretrain', 'policy', 'joint', 'meta'] as const;

/** An environment over the distillation MDP with scaled rewards. */
export type SelectionEnv = RewardScalingEnv<DistillationStepInfo> & { inner: ParallelDistillationEnv };

/** A run checkpoint without the students (the run state, policy, trainers, GradNorm). */
export type StudentlessCheckpoint = Omit<RunCheckpoint, 'student' | 'studentTrain' | 'task'>;

/** Everything a phase works on (see module doc). */
export class RunContext {
  private gn: GradNorm | null = null;
  private policyNet: PolicyNetwork | null = null;
  private ppo: PPOTrainer | null = null;
  private maml: MAMLTrainer | null = null;
  /** The meta-learned policy before the final fast adaptation (phase 4), as the policy saves itself. */
  private policyMeta: OnnxModel | undefined;
  /** Run state to write instead of the live one when interrupted (phase 4: the epoch start). */
  private interruptSnapshot: StudentlessCheckpoint | null = null;
  private lastLogged = -1;
  /** Wall time of steps, per-subset graph runs and episodes, logged at every epoch end. */
  readonly timings: StepTimings;

  constructor(
    readonly setup: DistillSetup,
    readonly run: RunDir,
    readonly log: Logger,
    readonly metrics: MetricsWriter,
    readonly tb: TensorBoardWriter | null,
    readonly distiller: StudentDistiller,
    readonly scaler: ReturnScaler,
    readonly progress: RunProgress,
    readonly signal: AbortSignal | undefined,
    /** The labels-only student trained beside the distilled one (distill.labels_only_baseline). */
    readonly baseline: LabelsOnlyBaseline | null = null,
  ) {
    this.timings = new StepTimings(setup.levelNames, subsetWorkShares(setup));
    // Every student update, the environments' trial updates included, reports its graph runs.
    distiller.onUpdate = (groups) => this.timings.recordGroups(groups);
  }

  /** GradNorm's level weights, once phase 3 (or a resumed checkpoint) has created them. */
  get gradnorm(): GradNorm | null {
    return this.gn;
  }

  /** The policy, once created (or restored). */
  get policy(): PolicyNetwork | null {
    return this.policyNet;
  }

  /** GradNorm per the config (created on first use). */
  ensureGradNorm(): GradNorm {
    if (!this.gn) {
      const g = this.config.gradnorm;
      this.gn = new GradNorm({ levels: this.setup.levelNames, alpha: g.alpha, lr: g.lr_weights });
    }
    return this.gn;
  }

  /** Restores the state a checkpoint holds besides the student and the cursor. */
  async restore(ckpt: LoadedRunCheckpoint): Promise<void> {
    if (ckpt.gradnorm) this.ensureGradNorm().load(ckpt.gradnorm);
    if (ckpt.policyFile) {
      this.policyNet = await PolicyNetwork.load(ckpt.policyFile, { executionProvider: this.setup.ep });
    }
    if (ckpt.ppo) await (await this.ppoTrainer()).setState(ckpt.ppo);
    if (ckpt.maml) await (await this.mamlTrainer()).setState(ckpt.maml);
    if (ckpt.state.returnScaler) this.scaler.load(ckpt.state.returnScaler);
  }

  get config(): RunConfig {
    return this.setup.config;
  }

  get L(): number {
    return this.setup.levelNames.length;
  }

  /** Seed string for a component at a position of the run (a pure function of both). */
  seed(...parts: (string | number)[]): string {
    return [this.config.run.seed, ...parts].join(':');
  }

  // ---------------------------------------------------------------------------------------------------
  // Logging
  // ---------------------------------------------------------------------------------------------------

  /** Writes scalars to metrics.jsonl and TensorBoard at the current global step (every N steps unless forced). */
  logScalars(
    values: Readonly<Record<string, number>>,
    options: { force?: boolean; extra?: Record<string, unknown> } = {},
  ): void {
    const step = this.progress.globalStep;
    const every = this.config.logging.every_steps;
    if (!options.force) {
      if (this.lastLogged >= 0 && step - this.lastLogged < every) return;
      this.lastLogged = step;
    }
    const clean: Record<string, number | null> = {};
    for (const [k, v] of Object.entries(values)) clean[k] = Number.isFinite(v) ? v : null;
    this.metrics.write({ step, phase: this.progress.phase, ...clean, ...(options.extra ?? {}) });
    this.tb?.addScalars(values, step);
  }

  // ---------------------------------------------------------------------------------------------------
  // The distillation step (phases 1 and 3, every selection variant)
  // ---------------------------------------------------------------------------------------------------

  /** [N, L] mask of `rows` selected level-name lists (level order). */
  maskFromSelections(selections: readonly (readonly string[])[]): Float32Array {
    const mask = new Float32Array(selections.length * this.L);
    selections.forEach((sel, n) => {
      for (const name of sel) {
        const l = this.setup.levelNames.indexOf(name);
        if (l < 0) throw new RlpkdError(`internal: unknown level '${name}' in a selection`);
        mask[n * this.L + l] = 1;
      }
    });
    return mask;
  }

  /** The fixed selection's mask for n images (phase 1 with rl selection: every level). */
  fixedMask(n: number, levels: readonly string[]): Float32Array {
    return this.maskFromSelections(Array.from({ length: n }, () => levels));
  }

  /**
   * One student update on a batch: teacher features (cached per image), the masked loss weighted by
   * uniform weights or GradNorm's (plus the task loss when the student has its own head), and — with
   * GradNorm — its weight update from the same step; then the labels-only baseline's update on the same
   * batch, when the run trains one.
   */
  async distillStep(batch: ImageBatch, mask: Float32Array, useGradNorm: boolean): Promise<DistillStepResult> {
    const gn = useGradNorm ? this.gradnorm : null;
    const weights = gn ? gn.weightsFloat32() : new Float32Array(this.L).fill(1 / this.L);
    const t0 = performance.now();
    // Teacher features once for both students.
    const taught = this.baseline ? await this.distiller.prepare(batch) : batch;
    const r = await this.distiller.step(taught, mask, weights, { measureGradNorms: gn !== null });
    const ms = performance.now() - t0;
    this.timings.recordStep(ms);
    this.progress.recordUpdate(this.progress.phase, {
      hashes: batch.hashes ?? [],
      flipped: batch.flipped ?? [],
      cost: maskCost(mask, this.setup.costs),
      seconds: ms / 1000,
    });
    if (!Number.isFinite(r.loss)) {
      throw new RlpkdError(`the distillation loss became ${r.loss} at step ${this.progress.globalStep}`, {
        hint: 'lower distill.optimizer.lr or set distill.grad_clip',
      });
    }
    const values: Record<string, number> = { 'distill/loss': r.loss, 'distill/grad_norm': r.gradNorm };
    if (r.taskLoss !== undefined) values['task/loss'] = r.taskLoss;
    if (this.baseline) {
      const b = await this.baseline.step(taught, mask, weights);
      values['labels_only/task_loss'] = b.taskLoss;
      values['labels_only/grad_norm'] = b.gradNorm;
    }
    this.setup.levelNames.forEach((n, l) => (values[`distill/level_loss/${n}`] = r.levelLosses[l]));
    const N = batch.images.dims[0];
    const active = this.setup.levelNames.map((_, l) => {
      for (let n = 0; n < N; n++) if (mask[n * this.L + l]) return true;
      return false;
    });
    // Training rate per level: its mean distance over the images that selected it (GradNorm's L_l(t);
    // logged for every selection, so the ablation's stability figure reads the same quantity).
    const rateLoss = this.setup.levelNames.map((_, l) => {
      let s = 0;
      let c = 0;
      for (let n = 0; n < N; n++) {
        if (mask[n * this.L + l]) {
          s += r.perSample[n * this.L + l];
          c++;
        }
      }
      return c ? s / c : 0;
    });
    this.setup.levelNames.forEach((n, l) => {
      if (active[l]) values[`distill/selected_level_loss/${n}`] = rateLoss[l];
    });
    if (gn) {
      const u = gn.update({ gradNorms: r.levelGradNorms!, losses: rateLoss, active });
      values['gradnorm/loss_grad'] = u.lossGrad;
      this.setup.levelNames.forEach((n, l) => {
        values[`gradnorm/weight/${n}`] = u.updated[l];
        if (Number.isFinite(u.gradNorms[l])) values[`gradnorm/G/${n}`] = u.gradNorms[l];
      });
    }
    this.logScalars(values);
    return r;
  }

  // ---------------------------------------------------------------------------------------------------
  // Level-selection environments and the policy
  // ---------------------------------------------------------------------------------------------------

  /** Costs in the environment's decision order. */
  decisionCosts(): number[] {
    return decisionCosts(this.setup);
  }

  /**
   * A level-selection environment (trial updates rolled back) over `images` on the run's distiller, with
   * the current GradNorm weights; see selection-env.ts. Training wraps it with `scaled`.
   */
  async createEnv(
    options: Omit<SelectionEnvOptions, 'weights' | 'lossReference'>,
  ): Promise<ParallelDistillationEnv> {
    return createSelectionEnv(this.setup, this.distiller, {
      ...options,
      ...(this.gradnorm ? { weights: this.gradnorm.weights } : {}),
      ...(this.progress.lossReference !== undefined ? { lossReference: this.progress.lossReference } : {}),
    });
  }

  /** Gives an environment the current GradNorm weights (the student it trials is the distiller's own). */
  refreshEnv(env: ParallelDistillationEnv): void {
    if (this.gradnorm) env.setLevelWeights(this.gradnorm.weights);
  }

  /** The environment as training sees it: rewards scaled when rl.ppo.normalize_reward is on. */
  scaled(env: ParallelDistillationEnv): SelectionEnv | ParallelDistillationEnv {
    return this.config.rl.ppo.normalize_reward
      ? (new RewardScalingEnv(env, this.scaler) as SelectionEnv)
      : env;
  }

  /** The policy for the environment's dimensions (created on first use). */
  async ensurePolicy(): Promise<PolicyNetwork> {
    if (this.policyNet) return this.policyNet;
    const c = this.config;
    this.policyNet = await PolicyNetwork.create(
      {
        mode: c.rl.policy.mode,
        stateDim: this.setup.dims.stateDim,
        numLevels: this.L,
        hiddenSize: c.rl.policy.hidden_dim,
        costs: this.decisionCosts(),
        minLevels: c.rl.environment.min_levels,
        normalizeStates: c.rl.policy.normalize_state,
        stateKind: c.rl.policy.state,
        ...(this.setup.stateSources
          ? {
              stateLevels: this.setup.decisionOrder.map((name) => ({
                name,
                output: this.setup.pairs.find((p) => p.name === name)!.student.output,
              })),
              stateSources: this.setup.stateSources,
            }
          : {}),
      },
      { seed: this.seed('policy'), executionProvider: this.setup.ep },
    );
    return this.policyNet;
  }

  /** Episodes (lockstep steps per environment) that one PPO rollout collects. */
  rolloutSteps(numEnvs: number): { nSteps: number; episodes: number } {
    const S = this.config.rl.policy.mode === 'sequential' ? this.L : 1;
    const batches = Math.max(1, Math.ceil(this.config.rl.ppo.rollout_episodes / numEnvs));
    return { nSteps: batches * S, episodes: batches * numEnvs };
  }

  /** The run's PPO trainer (phases 2 and 3; created on first use, then kept, see module doc). */
  async ppoTrainer(): Promise<PPOTrainer> {
    if (!this.ppo) {
      const p = this.config.rl.ppo;
      this.ppo = new PPOTrainer(await this.ensurePolicy(), {
        learningRate: p.lr,
        adamEps: p.adam_eps,
        clipRange: p.clip_epsilon,
        gamma: p.gamma,
        gaeLambda: p.gae_lambda,
        vfCoef: p.value_coef,
        entCoef: p.entropy_coef,
        maxGradNorm: p.max_grad_norm,
        nEpochs: p.ppo_epochs,
        batchSize: Math.max(2, p.minibatch_size),
        normalizeAdvantage: p.normalize_advantage,
        ...(p.target_kl !== null ? { targetKl: p.target_kl } : {}),
        seed: this.seed('ppo'),
      });
    }
    return this.ppo;
  }

  /** One PPO update of the policy on a rollout by the run's PPO trainer. */
  async ppoUpdate(episodes: EpisodeBatch): Promise<PpoUpdateStats> {
    return (await this.ppoTrainer()).trainStep(episodes);
  }

  /** The run's MAML trainer (phase 4 and the final adaptation; created on first use, then kept). */
  async mamlTrainer(): Promise<MAMLTrainer> {
    if (!this.maml)
      this.maml = new MAMLTrainer(await this.ensurePolicy(), mamlConfig(this.config, this.seed('maml')));
    return this.maml;
  }

  /** Keeps the meta-learned policy (before the final adaptation) for the final checkpoint. */
  keepMetaPolicy(policy: PolicyNetwork): void {
    this.policyMeta = policy.exportForInference();
  }

  /**
   * What an interruption saves until `clearInterruptSnapshot`: the given checkpoint instead of the live
   * state (phase 4 saves its epoch's start, its unit of resumption).
   */
  setInterruptSnapshot(ckpt: StudentlessCheckpoint): void {
    this.interruptSnapshot = ckpt;
  }

  clearInterruptSnapshot(): void {
    this.interruptSnapshot = null;
  }

  // ---------------------------------------------------------------------------------------------------
  // Checkpoints and interruption
  // ---------------------------------------------------------------------------------------------------

  /** Everything of a checkpoint of the live state but the student (copies). */
  checkpointParts(label?: string): StudentlessCheckpoint {
    const state = this.progress.toState({
      label: label ?? this.progress.label(),
      returnScaler: this.scaler.toJSON(),
      savedAt: new Date().toISOString(),
      metricsRecords: this.metrics.records,
    });
    return {
      state,
      ...(this.policyNet ? { policy: this.policyNet.exportForInference() } : {}),
      ...(this.policyMeta ? { policyMeta: this.policyMeta } : {}),
      ...(this.ppo ? { ppo: this.ppo.getState() } : {}),
      ...(this.maml ? { maml: this.maml.getState() } : {}),
      ...(this.gn ? { gradnorm: this.gn.toJSON() } : {}),
    };
  }

  /**
   * Writes a checkpoint of the live student with the given run state (default: the live one, labelled
   * `label`); returns its folder. The student is written from views of the distiller's storage, without
   * copying it first.
   */
  async saveCheckpoint(parts?: StudentlessCheckpoint, label?: string): Promise<string> {
    const write = (labelsOnly?: Readonly<CheckpointState>) =>
      this.distiller.withCheckpointViews(this.setup.studentOutputs, (s) => {
        const task = this.taskCheckpoint(s.studentTrain, labelsOnly);
        return writeRunCheckpoint(
          this.run,
          { ...(parts ?? this.checkpointParts(label)), ...s, ...(task ? { task } : {}) },
          this.config.checkpoint,
        );
      });
    const dir = this.baseline
      ? await this.baseline.session.withCheckpointViews((b) => write(b))
      : await write();
    this.log.debug(`checkpoint ${path.basename(dir)} written`);
    return dir;
  }

  /**
   * The task files of a checkpoint (TASK_CHECKPOINT_FILES): the student's task model when it has its own
   * head; the labels-only student, its task model and its training state when the run trains one.
   */
  private taskCheckpoint(
    student: Readonly<CheckpointState>,
    labelsOnly: Readonly<CheckpointState> | undefined,
  ): TaskCheckpoint | undefined {
    const head = this.setup.task?.studentHead;
    if (!head) return undefined;
    const F = TASK_CHECKPOINT_FILES;
    const models: Record<string, OnnxModel> = {
      [F.studentTaskModel]: this.distiller.studentModel(student.parameters, head.outputs),
    };
    if (labelsOnly) {
      models[F.labelsOnlyStudent] = this.distiller.studentModel(
        labelsOnly.parameters,
        this.setup.studentOutputs,
      );
      models[F.labelsOnlyTaskModel] = this.distiller.studentModel(labelsOnly.parameters, head.outputs);
    }
    return { models, ...(labelsOnly ? { labelsOnlyTrain: labelsOnly } : {}) };
  }

  /** After a unit of work: when Ctrl-C was pressed, save (the snapshot, if a phase set one) and stop. */
  async stopIfInterrupted(): Promise<void> {
    if (!this.signal?.aborted) return;
    const dir = await this.saveCheckpoint(this.interruptSnapshot ?? undefined);
    throw new TrainingInterrupted(dir);
  }

  /** Counts one logged step (a student update, a PPO iteration of phase 2, a meta-update). */
  stepDone(): void {
    this.progress.stepDone();
    this.tick();
  }

  /** Moves the cursor past one unit of work (the position a resumed run continues from). */
  unitDone(next?: number): void {
    this.progress.unitDone(next);
    this.tick();
  }

  private lastTick = Date.now();

  /** Adds the wall time since the last tick to phase `phase`'s total (default: the cursor's phase). */
  tick(phase = this.progress.phase): void {
    const now = Date.now();
    this.progress.addSeconds(phase, (now - this.lastTick) / 1000);
    this.lastTick = now;
  }

  /** Starts timing from now without attributing the time since the last tick. */
  resetTick(): void {
    this.lastTick = Date.now();
  }

  /** Ends an epoch: cursor to the next one, checkpoint on the configured cadence. */
  async epochDone(isLast: boolean): Promise<void> {
    const t = this.timings.summary();
    if (Object.keys(t).length > 0) this.logScalars(t, { force: true });
    if (isLast && t['time/episode_ms'] !== undefined) {
      const ratio = t['time/episode_per_step'];
      this.log.info(
        `phase ${this.progress.phase}: a level-selection episode took ${t['time/episode_ms'].toFixed(1)} ms` +
          (ratio !== undefined ? ` (${ratio.toFixed(2)} distillation steps)` : ''),
      );
    }
    this.progress.epochDone();
    if (isLast) return; // the phase end writes one
    if (this.progress.epoch % this.config.checkpoint.every_epochs === 0) await this.saveCheckpoint();
  }

  async close(): Promise<void> {
    await this.baseline?.release();
    await this.ppo?.release();
    await this.maml?.release();
    await this.policyNet?.release();
  }
}

/** Σ over the mask's rows ([N, L]) of the cost share of the levels each selects. */
function maskCost(mask: Float32Array, costs: readonly number[]): number {
  let c = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) c += costs[i % costs.length];
  return c;
}

/** The MAML trainer's options from the run config (meta-training and the final adaptation alike). */
export function mamlConfig(c: RunConfig, seed: string): MamlConfig {
  const m = c.maml;
  const p = c.rl.ppo;
  return {
    innerLr: m.inner_lr,
    innerSteps: m.inner_steps,
    metaLr: m.outer_lr,
    firstOrder: m.first_order,
    supportEpisodes: m.support_episodes,
    queryEpisodes: m.query_episodes,
    gamma: p.gamma,
    gaeLambda: p.gae_lambda,
    clipRange: p.clip_epsilon,
    entCoef: p.entropy_coef,
    vfCoef: p.value_coef,
    maxGradNorm: p.max_grad_norm,
    seed,
  };
}
