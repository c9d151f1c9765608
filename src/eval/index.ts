/**
 * Evaluation of a run's checkpoint beyond the distillation losses: per-level fidelity, task metrics through
 * the teacher's head, probes and the students' own heads, the policy by image content, inference cost.
 */
export {
  evaluateCheckpoint,
  type CheckpointEvaluation,
  type CheckpointEvaluationInput,
  type TaskSummary,
} from './checkpoint-evaluation';
export { evaluationTables, tablesAsText, tablesAsMarkdown, type ReportTable } from './evaluation-report';
export { writeEvaluationFiles, EVALUATION_FILES } from './evaluation-files';
export { LevelFidelityAccumulator, type LevelFidelity } from './level-fidelity';
export { pyramidFidelity, type FidelityReport, type BackboneFidelity } from './pyramid-fidelity';
export { policyBySize, spearman, type PolicyBySize, type SizeLevelCorrelation } from './policy-by-size';
export { inferenceCost, type InferenceCost } from './inference-cost';
export { probeBackbone, type ProbeSettings } from './probe';
export { loadTeacherHead, teacherHeadScores } from './teacher-head-scores';
export { runBackbones, BACKBONE_NAMES, type BackboneName, type EvalBackbone } from './backbones';
