/** Ablations (`rlpkd ablate`) and their jobs, locally or on a BullMQ queue (`rlpkd worker`). */
export { runAblation } from './run-ablation';
export type { AblateOptions, AblateResult } from './run-ablation';
export { runAblationJob } from './ablation-job';
export type { JobProgress, JobRunOptions } from './ablation-job';
export { ablationMethods, methodName, planAblation } from './ablation-plan';
export type { AblationJob, AblationMethod } from './ablation-plan';
export { QUICK_EPOCHS } from './ablation-config';
export { ablationMetric } from './ablation-metric';
export type { AblationMetric } from './ablation-metric';
export { assembleAblation, ablationCsv, ablationMarkdown, ablationPareto } from './ablation-report';
export type { AblationReport, AblationRow } from './ablation-report';
export { ABLATION_FILES, AblationStore } from './ablation-store';
export type { AblationManifest, BranchResult, JobResult, PhaseOneResult } from './ablation-store';
export { QUEUE_NAME, redisConnection, runJobsOnQueue, startQueueWorker } from './job-queue';
export type { QueueRunOptions, QueueWorker, QueueWorkerOptions } from './job-queue';
