/**
 * The ablation's jobs on a BullMQ queue (Redis): `runJobsOnQueue` (the ablate command's side) enqueues
 * every job whose dependencies have results and keeps doing so as results appear, until every job has
 * one; `startQueueWorker` (`rlpkd worker`) pulls jobs and runs them with runAblationJob against the
 * ablation directory named in the job (workers must share that storage).
 *
 * Order: a job is enqueued only once the jobs it needs have written their results (phase 1 before its
 * branches, rl before random). BullMQ flows cannot say this: a flow is a tree in which each child has
 * one parent, while a phase-1 job has every branch of its seed as a dependant.
 *
 * Failure: a worker killed mid-job stops renewing the job's lock; another worker's stalled-job check
 * moves the job back to the queue after the lock expires, and the next try resumes from the job's last
 * checkpoint (ablation-job.ts). A job that throws is retried (`attempts`). The result files are the
 * record of what is done, so a job run twice still counts once.
 */
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { RlpkdError } from '../errors';
import { contentHash } from '../util/content-hash';
import { runAblationJob, type JobProgress } from './ablation-job';
import type { AblationJob } from './ablation-plan';
import type { AblationStore } from './ablation-store';

/** The queue every ablation job goes on. */
export const QUEUE_NAME = 'rlpkd-ablate';

/** What a queued job carries: the ablation directory (shared storage) and the job id. */
export interface QueuedJobData {
  dir: string;
  id: string;
}

/** Connection options of a `redis://[:password@]host:port[/db]` URL (what BullMQ's workers require set). */
export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RlpkdError(`--queue '${url}' is not a URL`, { hint: 'write it as redis://HOST:PORT' });
  }
  if (u.protocol !== 'redis:' || !u.hostname) {
    throw new RlpkdError(`--queue '${url}' is not a redis:// URL`, { hint: 'write it as redis://HOST:PORT' });
  }
  const db = u.pathname.replace(/^\//, '');
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(db ? { db: Number(db) } : {}),
    // BullMQ workers block on Redis: ioredis must not give up on a command.
    maxRetriesPerRequest: null,
  };
}

/** How the ablate command drives the queue. */
export interface QueueRunOptions {
  /** Tries per job (a job that throws, or stalls past maxStalledCount, is tried again). Default 5. */
  attempts?: number;
  /** How often results and job states are read (ms). Default 1000. */
  pollMs?: number;
  /** Called with a one-line progress summary whenever it changes. */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

/** The queue job id of an ablation job: unique per ablation directory. */
export function queueJobId(store: AblationStore, id: string): string {
  return `${contentHash([store.root], 12)}.${id}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for the connection, failing with one message when Redis does not answer within 10 s. */
async function connected(ready: Promise<unknown>, url: string, hint: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10000);
  });
  try {
    await Promise.race([ready, timeout]);
  } catch (err) {
    throw new RlpkdError(`cannot reach Redis at ${url}: ${(err as Error).message}`, { hint });
  } finally {
    clearTimeout(timer);
  }
}

/** Enqueues the jobs as their dependencies finish and waits until every job has a result (module doc). */
export async function runJobsOnQueue(
  store: AblationStore,
  jobs: readonly AblationJob[],
  url: string,
  options: QueueRunOptions = {},
): Promise<void> {
  const queue = new Queue<QueuedJobData>(QUEUE_NAME, { connection: redisConnection(url) });
  const attempts = options.attempts ?? 5;
  const enqueued = new Set<string>();
  let shown = '';
  try {
    await connected(queue.waitUntilReady(), url, 'start redis-server there, or run without --queue');
    for (;;) {
      if (options.signal?.aborted)
        throw new RlpkdError('the ablation was interrupted; run it again to go on');
      const done = new Set(jobs.filter((j) => store.readResult(j.id)).map((j) => j.id));
      if (done.size === jobs.length) break;
      for (const j of jobs) {
        if (done.has(j.id) || enqueued.has(j.id) || !j.needs.every((n) => done.has(n))) continue;
        const qid = queueJobId(store, j.id);
        const existing = await queue.getJob(qid);
        if (existing && (await existing.isFailed())) await existing.retry();
        else if (!existing) {
          await queue.add(
            j.id,
            { dir: store.root, id: j.id },
            {
              jobId: qid,
              attempts,
              backoff: { type: 'fixed', delay: 1000 },
              removeOnComplete: true,
              removeOnFail: false,
            },
          );
        }
        enqueued.add(j.id);
      }
      const running: string[] = [];
      for (const id of enqueued) {
        if (done.has(id)) continue;
        const job = await queue.getJob(queueJobId(store, id));
        if (!job) continue;
        const state = await job.getState();
        if (state === 'failed') {
          throw new RlpkdError(
            `ablation job '${id}' failed after ${job.attemptsMade} tries: ${job.failedReason}`,
            {
              hint: "see the worker's output and the job's train.log under runs/; rerun the ablation to retry it",
            },
          );
        }
        if (state === 'active') {
          const p = job.progress as Partial<JobProgress> | number;
          running.push(typeof p === 'object' && p.stage ? `${id} (${p.stage})` : id);
        }
      }
      const line = `${done.size}/${jobs.length} jobs done${running.length ? `; running ${running.join(', ')}` : ''}`;
      if (line !== shown) options.onProgress?.(line);
      shown = line;
      await sleep(options.pollMs ?? 1000);
    }
  } finally {
    await queue.close();
  }
}

/** How a worker runs. */
export interface QueueWorkerOptions {
  /** Jobs run at once by this process (default 1: a job uses the cores it gets). */
  concurrency?: number;
  /** How long a job's lock lasts without renewal (ms, default 60000): a killed worker's job waits this long. */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for (ms, default 30000). */
  stalledIntervalMs?: number;
  /** One line per job start, end and failure. */
  onEvent?: (line: string) => void;
  /** Console of the jobs' training runs. */
  jobLog?: Parameters<typeof runAblationJob>[2];
}

/** A started worker. */
export interface QueueWorker {
  /** Stops taking jobs and waits for the running ones (a forced close abandons them to the stall check). */
  close(force?: boolean): Promise<void>;
}

/** Starts a worker pulling ablation jobs from the queue at `url` (module doc). */
export async function startQueueWorker(url: string, options: QueueWorkerOptions = {}): Promise<QueueWorker> {
  const say = options.onEvent ?? (() => {});
  const worker = new Worker<QueuedJobData>(
    QUEUE_NAME,
    async (job) => {
      say(`job ${job.data.id} started (try ${job.attemptsMade + 1})`);
      const r = await runAblationJob(job.data.dir, job.data.id, {
        ...(options.jobLog ?? {}),
        onProgress: (p) => job.updateProgress(p),
      });
      return { id: r.id };
    },
    {
      connection: redisConnection(url),
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDurationMs ?? 60000,
      stalledInterval: options.stalledIntervalMs ?? 30000,
      // A killed worker is the normal case here: let a job stall several times before failing it.
      maxStalledCount: 5,
    },
  );
  worker.on('completed', (job) => say(`job ${job.data.id} done`));
  worker.on('failed', (job, err) => say(`job ${job?.data.id ?? '?'} failed: ${err.message}`));
  worker.on('error', (err) => say(`worker error: ${err.message}`));
  try {
    await connected(
      worker.waitUntilReady(),
      url,
      'start redis-server there (the ablate command and every worker use the same --queue)',
    );
  } catch (err) {
    await worker.close(true);
    throw err;
  }
  return { close: (force) => worker.close(force) };
}
