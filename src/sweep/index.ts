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
export type {
  AblationManifest,
  BranchResult,
  JobResult,
  NasJobResult,
  PhaseOneResult,
} from './ablation-store';
export { QUEUE_NAME, redisConnection, runJobsOnQueue, startQueueWorker } from './job-queue';
export type { QueueRunOptions, QueueWorker, QueueWorkerOptions } from './job-queue';
export { assembleTables, NAS_TABLE_NAMES } from './ablation-tables';
export type { AblationTable, AblationTables, TableCell, TableColumn, TableRow } from './ablation-tables';
export { tableCsv, tableMarkdown, tablesMarkdown } from './tables-format';
export { TABLE_VARIANTS, VARIANT_CHANGES } from './table-variants';
export type { TableVariant } from './table-variants';
export { TABLE_NAS_METHODS } from './ablation-plan';
export type { TableNasMethod } from './ablation-plan';
export { levelLossSpread, medianGradNorm, clippedShare } from './training-stability';
export type { LevelLossSpread } from './training-stability';
export { QUICK_NAS } from './nas-job';
