/**
 * Where a training run stands, as one object with methods: the cursor (phase, epoch, unit, global step),
 * the image streams' positions, the loss reference of the policy state, the held-out baseline and the
 * wall time per phase. Phases move it only through these methods; a checkpoint stores `toState()`.
 */
import { RlpkdError } from '../errors';
import { contentHash } from '../util/content-hash';
import type { StreamCursor } from './image-stream';
import {
  RUN_STATE_VERSION,
  checkpointLabel,
  type RunCursor,
  type RunStateJson,
  type UpdateAccount,
} from './run-checkpoint';

/** The held-out all-level distillation loss (and per level). */
export interface HeldOutLosses {
  loss: number;
  levels: number[];
  /** The student's task loss with its own head (task-loss runs). */
  taskLoss?: number;
}

/** The run's mutable position (see module doc). */
export class RunProgress {
  private readonly s: RunStateJson;

  /** Continues from a checkpoint's state (copied), or starts at phase 1 when none is given. */
  constructor(from?: RunStateJson) {
    this.s = from
      ? structuredClone(from)
      : {
          version: RUN_STATE_VERSION,
          label: '',
          cursor: { phase: 1, epoch: 0, unit: 0, globalStep: 0 },
          streams: {},
          phaseSeconds: [0, 0, 0, 0],
          savedAt: '',
        };
  }

  /** A copy of the cursor. */
  get cursor(): Readonly<RunCursor> {
    return { ...this.s.cursor };
  }

  get phase(): number {
    return this.s.cursor.phase;
  }

  get epoch(): number {
    return this.s.cursor.epoch;
  }

  get unit(): number {
    return this.s.cursor.unit;
  }

  get globalStep(): number {
    return this.s.cursor.globalStep;
  }

  /** True at the very start of the current phase (nothing of it done yet). */
  get atPhaseStart(): boolean {
    return this.s.cursor.epoch === 0 && this.s.cursor.unit === 0;
  }

  /** Counts one logged step (a student update, a PPO iteration of phase 2, a meta-update). */
  stepDone(): void {
    this.s.cursor.globalStep++;
  }

  /** Moves past one unit of work, or to unit `next` (the position a resumed run continues from). */
  unitDone(next?: number): void {
    this.s.cursor.unit = next ?? this.s.cursor.unit + 1;
  }

  /** Moves to the next epoch's first unit. */
  epochDone(): void {
    this.s.cursor.epoch++;
    this.s.cursor.unit = 0;
  }

  /** Moves to the next phase's start (phase 5 = every phase done). */
  phaseDone(): void {
    this.s.cursor = { ...this.s.cursor, phase: this.s.cursor.phase + 1, epoch: 0, unit: 0 };
  }

  /** A stream's saved position (undefined: from its start). */
  stream(name: string): StreamCursor | undefined {
    const c = this.s.streams[name];
    return c ? { ...c } : undefined;
  }

  setStream(name: string, cursor: StreamCursor): void {
    this.s.streams[name] = { ...cursor };
  }

  /** Divides the policy state's loss feature; fixed by the first policy phase. */
  get lossReference(): number | undefined {
    return this.s.lossReference;
  }

  /** Fixes the loss reference the first time one is given; later calls keep the first value. */
  fixLossReference(value: number | undefined): void {
    if (this.s.lossReference === undefined && value !== undefined) this.s.lossReference = value;
  }

  get heldOutStart(): HeldOutLosses | undefined {
    const h = this.s.heldOutStart;
    return h
      ? { loss: h.loss, levels: [...h.levels], ...(h.taskLoss !== undefined ? { taskLoss: h.taskLoss } : {}) }
      : undefined;
  }

  setHeldOutStart(h: HeldOutLosses): void {
    if (this.s.heldOutStart) throw new RlpkdError('internal: the held-out baseline is measured once');
    this.s.heldOutStart = {
      loss: h.loss,
      levels: [...h.levels],
      ...(h.taskLoss !== undefined ? { taskLoss: h.taskLoss } : {}),
    };
  }

  /** Wall seconds per phase (index 0 = phase 1), a copy. */
  get phaseSeconds(): number[] {
    return [...this.s.phaseSeconds];
  }

  /** Adds wall time to phase `phase`'s total (ignored outside 1..4). */
  addSeconds(phase: number, seconds: number): void {
    const i = phase - 1;
    if (i >= 0 && i < this.s.phaseSeconds.length) this.s.phaseSeconds[i] += seconds;
  }

  /** The kept student updates and trials per phase (index 0 = phase 1), copies. */
  get updateAccounts(): UpdateAccount[] {
    return [0, 1, 2, 3].map((i) => ({ ...(this.s.updates?.[i] ?? emptyAccount()) }));
  }

  private account(phase: number): UpdateAccount {
    this.s.updates ??= [0, 1, 2, 3].map(emptyAccount);
    const a = this.s.updates[phase - 1];
    if (!a) throw new RlpkdError(`internal: no update account for phase ${phase}`);
    return a;
  }

  /**
   * Counts one kept student update of phase `phase`: its images (hashes and flips, chained into the
   * phase's digest), the summed cost share of their selected levels, and its wall seconds.
   */
  recordUpdate(
    phase: number,
    u: { hashes: readonly string[]; flipped: readonly boolean[]; cost: number; seconds: number },
  ): void {
    const a = this.account(phase);
    a.updates++;
    a.images += u.hashes.length;
    a.cost += u.cost;
    a.seconds += u.seconds;
    const batch = u.hashes.map((h, i) => `${h}${u.flipped[i] ? ':f' : ''}`).join(',');
    a.digest = contentHash([a.digest, '\n', batch]);
  }

  /** Counts rolled-back trial updates of phase `phase`. */
  recordTrials(phase: number, count: number): void {
    this.account(phase).trials += count;
  }

  /** The label a checkpoint of the current position gets. */
  label(): string {
    return checkpointLabel(this.s.cursor);
  }

  /** The state as a checkpoint stores it (a copy), with the given extras. */
  toState(
    extra: Partial<Pick<RunStateJson, 'label' | 'returnScaler' | 'savedAt' | 'metricsRecords'>> = {},
  ): RunStateJson {
    return { ...structuredClone(this.s), ...structuredClone(extra), version: RUN_STATE_VERSION };
  }
}

function emptyAccount(): UpdateAccount {
  return { updates: 0, images: 0, cost: 0, seconds: 0, trials: 0, digest: '' };
}
