/**
 * rl-pyramidkd public API: what a library user needs, named one by one (the CLI and the tests import
 * internals from their modules). Adding a name here is a decision to support it.
 */

// Errors: one type with a hint, and its kinds.
export { RlpkdError, InputFileError, GraphError } from './errors';
export { ConfigError } from './config/config-error';

// ONNX graphs: load, save, build, check, infer shapes, prune to pyramid levels.
export { DataType } from './onnx/types';
export type { Dim, OnnxGraph, OnnxModel, OnnxNode, OnnxTensor, TensorData, ValueInfo } from './onnx/types';
export { loadModel, loadModelFromBytes, modelToBytes, saveModel } from './onnx/model-io';
export type { SaveModelOptions } from './onnx/model-io';
export { GraphBuilder } from './onnx/graph-builder';
export type { GraphBuilderOptions, NodeOptions } from './onnx/graph-builder';
export { floatTensor, int64Tensor } from './onnx/tensor-data';
export { findGraphProblems, validateModel } from './onnx/graph-structure';
export type { GraphProblem } from './onnx/graph-structure';
export { inferShapes } from './onnx/shape-inference';
export type { TensorInfo } from './onnx/shape-inference';
export { findSharedInitializers, untieSharedInitializers } from './onnx/shared-initializers';
export { pruneToOutputs } from './onnx/extract-subgraph';
export { levelOutputs, pruneToLevels, splitPyramid } from './onnx/level-pruning';
export type { LevelPart, LevelRef, PyramidSplit } from './onnx/level-pruning';

// Autodiff: gradient graphs of standard ONNX ops.
export { buildGradientGraph, listUnsupportedOps } from './autodiff/gradient-graph';
export type { GradientGraph, GradientGraphOptions, GradientTarget } from './autodiff/gradient-graph';
export { AUTODIFF_MAX_OPSET, AUTODIFF_MIN_OPSET } from './autodiff';

// Analysis: pyramid levels, their cost and a selection's, trainable parameters, the inspect report.
export { findPyramidLevels, levelName } from './analysis/pyramid';
export type { InputSize, PyramidLevel } from './analysis/pyramid';
export { computeCostModel } from './analysis/cost-model';
export type { CostModel, LevelCost } from './analysis/cost-model';
export { selectionCost } from './analysis/selection-cost';
export type { SelectionCost } from './analysis/selection-cost';
export { classifyParameters } from './analysis/parameters';
export type { ParameterClassification, ParameterPatterns } from './analysis/parameters';
export { inspectModel } from './analysis/inspect';
export type { InspectReport } from './analysis/inspect';

// Runtime: sessions on onnxruntime-node (cpu/cuda/webgpu) and onnxruntime-web (wasm), one tensor type.
export { createSession, cudaAvailable, resolveExecutionProvider } from './runtime/session';
export type { ExecutionProviderName, GraphSession, SessionOptions } from './runtime/session';
export { createWebSession } from './runtime/web-session';
export type { WebGraphSession, WebSessionOptions } from './runtime/web-session';
export { hostFloat } from './runtime/tensors';
export type { HostTensor } from './runtime/tensors';

// Models: torchvision-form ResNet-FPN graphs and the shipped demo pair.
export { RESNET_FPN_ARCHS, buildResnetFpn, buildResnetFpnWithInfo } from './models/resnet-fpn';
export type { ResnetFpnArch, ResnetFpnInfo, ResnetFpnOptions } from './models/resnet-fpn';
export { DEMO_GRAPHS, buildDemoGraph, writeDemoGraphs } from './models/demo-graphs';

// Training: artifacts (also of a pruned student), the session, checkpoints, losses, optimizers.
export {
  ARTIFACT_FILES,
  artifactModel,
  exportModelForInference,
  generateArtifacts,
  loadArtifacts,
} from './training/artifacts';
export type {
  ArtifactGraph,
  ArtifactManifest,
  ArtifactOptions,
  TrainingArtifacts,
} from './training/artifacts';
export { generateLevelArtifacts } from './training/level-artifacts';
export { TrainingSession } from './training/training-session';
export type {
  FusedStepResult,
  OptimizerStepResult,
  TrainingSessionOptions,
  TrainingSnapshot,
} from './training/training-session';
export { WorkerTrainingSession } from './training/worker-session';
export type { WorkerTrainingSessionOptions } from './training/worker-session';
export { loadCheckpoint, saveCheckpoint } from './training/checkpoint';
export { ArtifactStore, readCheckpoint } from './training/artifact-store';
export type { CheckpointState } from './training/checkpoint';
export { computeGradients } from './training/gradients';
export type { ComputeGradientsOptions, GradientResult } from './training/gradients';
export { featureDistillationLoss } from './training/losses';
export type {
  CrossEntropyLossSpec,
  DistillationLossOptions,
  DistillationLossSpec,
  LossSpec,
  OutputLossSpec,
  RegressionLossSpec,
} from './training/losses';
export type { DistillLossKind } from './training/level-distances';
export type { AdamWConfig, OptimizerConfig, SgdConfig } from './training/optimizers';
export { createLrSchedule } from './training/lr-schedules';
export type { LrSchedule, LrScheduleConfig } from './training/lr-schedules';

// The level-selection policy, its trainers and the environments' interfaces.
export { PolicyNetwork } from './rl/policy';
export type { PolicyConfig, PolicyOptions } from './rl/policy';
export { PPOTrainer } from './rl/ppo';
export type { PpoConfig, PpoTrainerState, PpoUpdateStats } from './rl/ppo';
export { MAMLTrainer } from './rl/maml';
export type { MamlConfig, MamlTrainerState, MetaUpdateStats } from './rl/maml';
export type {
  ActionMode,
  EpisodeSummary,
  StepInfo,
  VecEnv,
  VecResetResult,
  VecStepResult,
} from './rl/vec-env';
export { collectRollout, evaluatePolicy } from './rl/rollout';
export { RolloutBuffer } from './rl/rollout-buffer';
export { ReplayBuffer } from './rl/replay-buffer';
export { BanditFamily, ContextualBanditEnv } from './rl/bandit-env';
export type { BanditFamilyOptions, ContextualBanditOptions } from './rl/bandit-env';
export { ParallelDistillationEnv } from './rl/distillation-env';
export type { DistillationEnvOptions, ImageBatchSource } from './rl/distillation-env';

// Distillation runs: the whole pipeline, evaluation, and its parts.
export { runTraining } from './distill/pipeline';
export type { TrainOptions, TrainResult } from './distill/pipeline';
export { evaluateRun } from './distill/evaluate-run';
export type { EvaluateRunOptions, TaskModelEvaluation } from './distill/evaluate-run';
// The checkpoint evaluation `rlpkd eval` and the end of `rlpkd train` run (eval.json, eval.md).
export {
  evaluateCheckpoint,
  evaluationTables,
  tablesAsText,
  tablesAsMarkdown,
  pyramidFidelity,
  policyBySize,
  inferenceCost,
  probeBackbone,
} from './eval';
export type {
  CheckpointEvaluation,
  TaskSummary,
  FidelityReport,
  PolicyBySize,
  InferenceCost,
  ProbeSettings,
} from './eval';
export {
  transplantWeights,
  detectTransplantPrefix,
  requireCompleteTransplant,
  formatTransplantMismatch,
} from './distill/transplant';
export type { TransplantResult, TransplantMismatch, TransplantOptions } from './distill/transplant';
export { describeTaskModel, scoreTaskModel } from './distill/score-task-model';
export type { DescribeTaskModelOptions, ScoreTaskModelOptions } from './distill/score-task-model';
export { TrainingInterrupted } from './distill/run-context';
export { StudentDistiller, distillerArtifacts } from './distill/student-distiller';
export type { DistillStepResult, StudentDistillerOptions } from './distill/student-distiller';
export { createStudentDistiller } from './distill/create-distiller';
export { appendTaskObjective, OBJECTIVE_IO } from './distill/task-objective';
export type { ObjectiveWeights, TaskObjectiveModel } from './distill/task-objective';
export { loadTeacherHead, composeStudentHead } from './distill/student-head';
export type { RunHead, StudentWithHead } from './distill/student-head';
export { LabelsOnlyBaseline } from './distill/labels-only-baseline';
export { TaskYardstick } from './distill/task-yardstick';
export type { Distiller, DistillerEvaluation, DistillerTrial, ImageBatch } from './rl/distiller';
export { stateLayout } from './rl/policy-state';
export type { PolicyStateKind, StateLayout } from './rl/policy-state';
export { deployStateSources } from './rl/deploy-state';
export { GradNorm } from './distill/gradnorm';
export type { GradNormOptions } from './distill/gradnorm';
export { matchLevels } from './distill/level-matching';
export type { LevelPair } from './distill/level-matching';
export { DISTILL_IO, buildDistillationModel } from './distill/distill-model';

// Configs.
export { configFromObject, demoConfigPath, loadConfig, parseOverride } from './config/load-config';
export type { LoadConfigOptions } from './config/load-config';
export { runConfigSchema } from './config/schema';
export type { RunConfig, RunConfigInput } from './config/schema';

// Data readers and batches.
export { openDataset, openDatasetSplits } from './data/dataset';
export type { DatasetSplits } from './data/dataset';
export type { BoxAnnotation, Dataset, DatasetType, ImageRecord } from './data/types';
export { readCoco } from './data/coco';
export { readAde20k } from './data/ade20k';
export { readImageFolder } from './data/imagefolder';
export { ensureSynthetic, readSynthetic } from './data/synthetic';
export { IMAGENET_NORMALIZE, loadImage } from './data/image-loader';
export type { Preprocess } from './data/image-loader';
export { BatchLoader } from './data/batch-loader';
export type { Batch, BatchLoaderOptions } from './data/batch-loader';
export { FeatureCache } from './data/feature-cache';
export type { FeatureCacheOptions } from './data/feature-cache';

// Logging and files.
export { Logger, silentLog } from './logging/logger';
export type { LogLevel, LoggerOptions } from './logging/logger';
export { MetricsWriter, readMetrics } from './logging/metrics';
export { TensorBoardWriter } from './logging/tfevents';
export { createRunDir, openRunDir } from './logging/run-dir';
export type { RunDir } from './logging/run-dir';
export { readNpy, writeNpy } from './io/npy';
export type { NpyArray } from './io/npy';
export { Rng, createRng } from './util/rng';
export type { RngState, Seed } from './util/rng';

// Benchmarks: the train step, and beside PyTorch.
export { compareWithPytorch, timeTrainStep } from './bench/compare';
export type { CompareOptions, CompareSummary } from './bench/compare';
export type { TrainStepBenchOptions, TrainStepBenchResult } from './bench/train-step';
export { benchSubsetSteps, predictSubsetShares } from './bench/subset-step';
export type { SubsetStepBenchOptions, SubsetStepBenchResult, SubsetStepRow } from './bench/subset-step';
export { benchEpisodeCost } from './bench/episode-cost';
export type { EpisodeCostOptions, EpisodeCostResult, EpisodeCostRow } from './bench/episode-cost';

// Task metrics: COCOeval-exact bbox AP/AR, mmsegmentation mIoU, top-k accuracy.
export { evaluateCoco } from './metrics/coco-eval';
export { COCO_STAT_NAMES } from './metrics/coco-params';
export type { CocoDetection, CocoEvalResult, CocoGroundTruth, CocoGtAnnotation } from './metrics/coco-eval';
export { evaluateCocoFiles, readCocoGroundTruthFile, readCocoResultsFile } from './metrics/coco-json-files';
export { SegmentationConfusion } from './metrics/segmentation';
export type { SegmentationResult } from './metrics/segmentation';
export { TopKAccuracy } from './metrics/classification';
export type { TopKResult } from './metrics/classification';
export { evaluateSegmentationFolders } from './metrics/label-png-files';
export { boxToOriginal } from './metrics/box-rescale';

// Weights back to PyTorch: safetensors under the exported parameter names.
export { exportWeights } from './distill/export-weights';
export type { ExportWeightsResult, WeightsSource } from './distill/export-weights';

// Deployment: a run's policy and split student as a browser bundle (src/web/ runs it).
export { exportPolicy, startDemo } from './deploy';
export type { DemoOptions, DemoServer, ExportPolicyOptions, ExportPolicyResult } from './deploy';
export { BUNDLE_FORMAT_VERSION, bundleMetaProblems } from './web/bundle-format';
export type { BundleMeta, BundleLevel, BundleHead, BundleHeadPart, BundleDecode } from './web/bundle-format';
export { readSafetensors, writeSafetensors, parseSafetensors, encodeSafetensors } from './io/safetensors';
export type { SafetensorsFile, SafetensorsTensor } from './io/safetensors';
export { SIZE_BIN_FRACTIONS, imageSizeBin, objectSizeBin } from './data/synthetic-scales';
export type { ImageSizeBin, ObjectSizeBin } from './data/synthetic-scales';

// The opt-in GPU route: install the CUDA runtime beside the default one, check a machine.
export { installGpuRuntime, gpuDoctor, formatDoctorReport } from './gpu';
export type { GpuInstallOptions, GpuInstallResult, GpuDoctorOptions, GpuDoctorReport } from './gpu';
export { ensureProviderUsable, probeProvider } from './runtime/provider-probe';
export type { ProviderProbe } from './runtime/provider-probe';

// Task heads: classification, Semantic-FPN segmentation and FCOS-style detection graphs on any pyramid.
export {
  buildClassificationHead,
  buildSegmentationHead,
  buildFcosHead,
  appendHeadLoss,
  composeTaskModel,
  headLevelsOf,
  assignFcosTargets,
  decodeFcos,
  segmentationLabelMaps,
  splitHeadByLevel,
  topClasses,
} from './heads';
export type {
  ClassificationHeadOptions,
  SegmentationHeadOptions,
  FcosHeadOptions,
  HeadLossOptions,
  ComposeOptions,
  FcosTargets,
  Detection,
  FcosDecodeOptions,
  LabelledBox,
  HeadSplit,
  HeadPart,
  ClassScore,
} from './heads';

// NAS baselines over level selections (`rlpkd nas`): DARTS-LS, GDAS-LS, EA-LS, random, exhaustive oracle.
export {
  runNas,
  NAS_METHODS,
  formatNasReport,
  unrolledWeightGradient,
  regularizedEvolution,
  EvaluationCache,
  SelectionObjective,
  featuresYardstick,
} from './nas';
export type {
  NasOptions,
  NasMethod,
  NasReport,
  ValidationYardstick,
  GatedBilevelProblem,
  SelectionEvaluation,
} from './nas';

// Plots: vega-lite specs rendered to SVG and PNG (a run's plots, an ablation's quality–cost plot).
export { renderPlot, writePlot } from './viz/render';
export type { PlotSpec, RenderOptions, RenderedPlot, WrittenPlot } from './viz/render';
export { visualizeAblation, visualizeRun } from './viz/run-plots';
export type { VisualizeResult, VisualizeRunOptions } from './viz/run-plots';
export { HEATMAP_SORTS, policyHeatmapData, policyHeatmapSpec } from './viz/policy-heatmap';
export type { HeatmapSort, HeatmapSortName } from './viz/policy-heatmap';
export { frontierAt, paretoFrontier, paretoSpec } from './viz/pareto';
export type { ParetoOptions, ParetoPoint } from './viz/pareto';
export { readParetoInput } from './viz/pareto-input';

// Teaching a task head on labels (`rlpkd teach`): train, evaluate beside chance, write the task model.
export { runTeach, resolveTeachTask, TEACH_FILES, TaskScorer, LabelPrior } from './teach';
export type { TeachOptions, TeachReport, TeachResult, TaskScore, TaskPrediction } from './teach';
export { buildDemoTeacher, teachConfigHash, DEMO_TEACHER_FILES } from './teach';
export type { DemoTeacherOptions, DemoTeacherReport, DemoTeacherResult } from './teach';
export { loadTeachConfig, teachConfigFromObject, teachConfigSchema } from './config/teach-schema';
export type { TeachConfig } from './config/teach-schema';

// Ablations: every fixed level subset, a random selection and the RL policy from one phase-1 checkpoint per
// seed (`rlpkd ablate`), run here or on a BullMQ queue served by `rlpkd worker` processes.
export {
  runAblation,
  runAblationJob,
  planAblation,
  assembleAblation,
  AblationStore,
  ABLATION_FILES,
  startQueueWorker,
  runJobsOnQueue,
} from './sweep';
export type {
  AblateOptions,
  AblateResult,
  AblationReport,
  AblationRow,
  AblationJob,
  BranchResult,
  QueueWorkerOptions,
} from './sweep';
