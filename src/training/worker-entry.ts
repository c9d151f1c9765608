/**
 * The worker-thread side of WorkerTrainingSession: owns one TrainingSession and answers method calls
 * posted by the main thread, transferring result buffers instead of copying them.
 */
import { parentPort } from 'node:worker_threads';
import { RlpkdError } from '../errors';
import { TrainingSession, type TrainingSessionOptions } from './training-session';
import type { WorkerReply, WorkerRequest } from './worker-protocol';
import { transferList } from './worker-protocol';

let session: TrainingSession | undefined;

type Method = (s: TrainingSession, args: unknown[]) => Promise<unknown>;

/** The calls the main thread may make, by name (a closed list: nothing else of the session is reachable). */
const METHODS: Record<string, Method> = {
  trainStep: (s, [feeds]) => s.trainStep(feeds as Parameters<TrainingSession['trainStep']>[0]),
  evalStep: (s, [feeds]) => s.evalStep(feeds as Parameters<TrainingSession['evalStep']>[0]),
  fusedStep: (s, [feeds, options]) =>
    s.fusedStep(
      feeds as Parameters<TrainingSession['fusedStep']>[0],
      (options ?? {}) as Parameters<TrainingSession['fusedStep']>[1],
    ),
  optimizerStep: (s) => s.optimizerStep(),
  lazyResetGrad: (s) => s.lazyResetGrad(),
  getParameters: (s) => s.getParameters(),
  getGradients: (s) => s.getGradients(),
  getContiguousParameters: (s) => s.getContiguousParameters(),
  loadParametersBuffer: (s, [buffer]) => s.loadParametersBuffer(buffer as Float32Array),
  loadParameters: (s, [params]) =>
    s.loadParameters(params as Parameters<TrainingSession['loadParameters']>[0]),
  saveCheckpoint: (s, [file, metadata]) =>
    s.saveCheckpoint(file as string, metadata as Record<string, string>),
  loadCheckpoint: async (s, [checkpoint]) => {
    await s.loadCheckpoint(checkpoint as Parameters<TrainingSession['loadCheckpoint']>[0]);
    return s.step;
  },
  exportModelForInference: (s, [file, options]) =>
    s.exportModelForInference(file as string | undefined, (options ?? {}) as { outputs?: string[] }),
  release: (s) => s.release(),
};

async function handle(request: WorkerRequest): Promise<unknown> {
  if (request.method === 'create') {
    session = await TrainingSession.create(request.args[0] as TrainingSessionOptions);
    return { step: session.step, manifest: session.manifest };
  }
  if (!session) throw new RlpkdError('worker training session: create() has not completed');
  const method = METHODS[request.method];
  if (!method) throw new RlpkdError(`worker training session: unknown method '${request.method}'`);
  return method(session, request.args);
}

parentPort?.on('message', (request: WorkerRequest) => {
  handle(request).then(
    (result) => {
      const reply: WorkerReply = { id: request.id, ok: true, result };
      parentPort!.postMessage(reply, transferList(result));
    },
    (err: unknown) => {
      const e = err as Error & { hint?: string };
      const reply: WorkerReply = {
        id: request.id,
        ok: false,
        error: {
          name: e.name ?? 'Error',
          message: e.message ?? String(err),
          ...(e.hint ? { hint: e.hint } : {}),
        },
      };
      parentPort!.postMessage(reply);
    },
  );
});
