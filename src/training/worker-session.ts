/**
 * TrainingSession in a worker thread: the same API, but onnxruntime runs in a `worker_threads` Worker so
 * the main thread's event loop stays free (progress bars, data prefetch, Ctrl-C) while a step runs.
 * Results come back with their ArrayBuffers transferred, not copied; inputs are copied unless
 * `transferInputs` moves them (which detaches the caller's arrays).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { RlpkdError } from '../errors';
import type { OnnxModel } from '../onnx/types';
import type { HostTensor } from '../runtime/tensors';
import { ArtifactStore, type ArtifactManifest } from './artifacts';
import type { CheckpointState } from './checkpoint';
import { createLrSchedule, type LrSchedule } from './lr-schedules';
import type { FusedStepResult, OptimizerStepResult, TrainingSessionOptions } from './training-session';
import { transferList, type WorkerReply, type WorkerRequest } from './worker-protocol';

export interface WorkerTrainingSessionOptions extends TrainingSessionOptions {
  /** Move (not copy) the feeds' ArrayBuffers to the worker; the caller's arrays become unusable. */
  transferInputs?: boolean;
}

/**
 * Runs in the worker before the entry module: under ts-jest-free test runs the sources are TypeScript, so
 * `.ts` files are compiled on load with @swc/core (a dev dependency); built packages load plain `.js`.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
const req = require('node:module').createRequire(workerData.entry);
if (workerData.entry.endsWith('.ts')) {
  const swc = req('@swc/core');
  const fs = req('node:fs');
  req.extensions['.ts'] = (module, filename) => {
    const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
      filename,
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'commonjs' },
    });
    module._compile(code, filename);
  };
}
req(workerData.entry);
`;

function workerEntry(): string {
  const ext = path.extname(__filename) || '.js';
  const entry = path.join(__dirname, `worker-entry${ext}`);
  if (!fs.existsSync(entry)) {
    throw new RlpkdError(`worker training session: '${entry}' is missing`, {
      hint: 'reinstall rl-pyramidkd (the package build must include src/training/worker-entry)',
    });
  }
  return entry;
}

/** A TrainingSession whose graphs run in a worker thread; every method mirrors TrainingSession's. */
export class WorkerTrainingSession {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stepCount = 0;
  private readonly schedule: LrSchedule;
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    readonly manifest: ArtifactManifest,
    private readonly options: WorkerTrainingSessionOptions,
  ) {
    this.schedule = createLrSchedule(
      options.lrSchedule ?? { type: 'constant' },
      options.learningRate ?? manifest.optimizer.lr,
    );
    worker.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else {
        const err = new RlpkdError(reply.error.message, reply.error.hint ? { hint: reply.error.hint } : {});
        err.name = reply.error.name;
        p.reject(err);
      }
    });
    const failAll = (err: Error): void => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) =>
      failAll(new RlpkdError(`the training worker failed: ${err.message}`, { cause: err })),
    );
    worker.on('exit', (code) => {
      if (this.pending.size)
        failAll(new RlpkdError(`the training worker exited (code ${code}) during a call`));
      this.closed = true;
    });
  }

  /** Starts a worker, opens the artifacts there and loads the starting checkpoint. */
  static async create(options: WorkerTrainingSessionOptions): Promise<WorkerTrainingSession> {
    const manifest =
      typeof options.artifacts === 'string'
        ? new ArtifactStore(options.artifacts).manifest()
        : options.artifacts.manifest;
    const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { entry: workerEntry() } });
    const s = new WorkerTrainingSession(worker, manifest, options);
    const { transferInputs: _t, ...sessionOptions } = options;
    try {
      const created = (await s.call('create', [sessionOptions])) as { step: number };
      s.stepCount = created.step;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    return s;
  }

  private call(method: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.closed)
      return Promise.reject(new RlpkdError(`WorkerTrainingSession.${method}: the session is released`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: WorkerRequest = { id, method, args };
      this.worker.postMessage(request, transfer);
    });
  }

  private inputs(feeds: Record<string, HostTensor>): ArrayBuffer[] {
    return this.options.transferInputs ? transferList(feeds) : [];
  }

  /** Optimizer updates taken so far. */
  get step(): number {
    return this.stepCount;
  }

  /** Trainable parameter names in feed order. */
  get parameterNames(): string[] {
    return this.manifest.parameters.map((p) => p.name);
  }

  /** Outputs train/eval/fused steps return (loss first). */
  get stepOutputNames(): string[] {
    return [...this.manifest.stepOutputs];
  }

  /** Learning rate the next optimizer step will use. */
  get learningRate(): number {
    return this.schedule(this.stepCount + 1);
  }

  /** See TrainingSession.trainStep. */
  trainStep(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    return this.call('trainStep', [feeds], this.inputs(feeds)) as Promise<Record<string, HostTensor>>;
  }

  /** See TrainingSession.evalStep. */
  evalStep(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    return this.call('evalStep', [feeds], this.inputs(feeds)) as Promise<Record<string, HostTensor>>;
  }

  /** See TrainingSession.optimizerStep. */
  async optimizerStep(): Promise<OptimizerStepResult> {
    const r = (await this.call('optimizerStep', [])) as OptimizerStepResult;
    this.stepCount = r.step;
    return r;
  }

  /** See TrainingSession.fusedStep. */
  async fusedStep(
    feeds: Record<string, HostTensor>,
    options: { levelGradientNorms?: boolean } = {},
  ): Promise<FusedStepResult> {
    const r = (await this.call('fusedStep', [feeds, options], this.inputs(feeds))) as FusedStepResult;
    this.stepCount = r.step;
    return r;
  }

  /** See TrainingSession.lazyResetGrad. */
  async lazyResetGrad(): Promise<void> {
    await this.call('lazyResetGrad', []);
  }

  /** See TrainingSession.getParameters. */
  getParameters(): Promise<Record<string, HostTensor>> {
    return this.call('getParameters', []) as Promise<Record<string, HostTensor>>;
  }

  /** See TrainingSession.getGradients. */
  getGradients(): Promise<Record<string, HostTensor>> {
    return this.call('getGradients', []) as Promise<Record<string, HostTensor>>;
  }

  /** See TrainingSession.getContiguousParameters. */
  getContiguousParameters(): Promise<Float32Array> {
    return this.call('getContiguousParameters', []) as Promise<Float32Array>;
  }

  /** See TrainingSession.loadParametersBuffer (the buffer is copied). */
  async loadParametersBuffer(buffer: Float32Array): Promise<void> {
    await this.call('loadParametersBuffer', [buffer]);
  }

  /** See TrainingSession.loadParameters (values are copied). */
  async loadParameters(params: Record<string, HostTensor>): Promise<void> {
    await this.call('loadParameters', [params]);
  }

  /** See TrainingSession.saveCheckpoint (written by the worker). */
  async saveCheckpoint(file: string, metadata?: Record<string, string>): Promise<void> {
    await this.call('saveCheckpoint', [file, metadata]);
  }

  /** See TrainingSession.loadCheckpoint. */
  async loadCheckpoint(checkpoint: string | CheckpointState): Promise<void> {
    this.stepCount = (await this.call('loadCheckpoint', [checkpoint])) as number;
  }

  /** See TrainingSession.exportModelForInference. */
  exportModelForInference(file?: string, options: { outputs?: readonly string[] } = {}): Promise<OnnxModel> {
    return this.call('exportModelForInference', [file, options]) as Promise<OnnxModel>;
  }

  /** Releases the sessions and stops the worker. */
  async release(): Promise<void> {
    if (this.closed) return;
    try {
      await this.call('release', []);
    } finally {
      this.closed = true;
      await this.worker.terminate();
    }
  }
}
