/** NAS baselines over level selections: DARTS-LS, GDAS-LS, EA-LS, random search and the exhaustive oracle. */
export { runNas, NAS_DEFAULTS, defaultXi, selectionCostFunction } from './run-nas';
export type { NasOptions, NasCost } from './run-nas';
export { NAS_METHODS, METHOD_NAMES, runMethod } from './methods';
export type { NasMethod, MethodSettings, MethodResult, CurvePoint } from './methods';
export { formatNasReport, readOracle, selectionLine, writeNasReport } from './report';
export type { NasReport, NasOracle, NasObjectiveKey, ReportedEvaluation } from './report';
export { SelectionObjective } from './objective';
export type { SelectionEvaluation, ObjectiveSettings } from './objective';
export { featuresYardstick } from './yardstick';
export type { ValidationYardstick } from './yardstick';
export { StudentGatedProblem } from './student-problem';
export type { ProxyTrainable } from './student-problem';
export { unrolledWeightGradient, architectureGradientByDifferences } from './unrolled-gradient';
export type { GatedBilevelProblem, UnrolledGradient, UnrolledOptions } from './unrolled-gradient';
export { runGatedSearch, deriveSelection } from './differentiable-search';
export type {
  GatedSearchProblem,
  GateScheme,
  GatedSearchOptions,
  GatedSearchPoint,
} from './differentiable-search';
export { dartsGates } from './darts';
export { gdasGates } from './gdas';
export { sigmoid, gumbelGates, annealedTemperature, ArchitectureAdam } from './gates';
export { EvaluationCache } from './evaluation-cache';
export { regularizedEvolution, mutateOneGene } from './evolution';
export { randomSearch } from './random-search';
export { exhaustiveSearch } from './exhaustive';
export {
  searchSpace,
  allSelections,
  maskLevels,
  levelsMask,
  selectionLabel,
  maskGates,
  expectedCost,
} from './search-space';
export type { SearchSpace } from './search-space';
