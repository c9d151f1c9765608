/** Reverse-mode autodiff over ONNX graphs in standard ops: the driver, the rule contract and registry. */
export * from './gradient-graph';
export type { GradContext, GradientRule, GradientRuleEntry } from './types';
export { GRADIENT_RULES, RULE_FILES } from './rules';
export { MIN_OPSET as AUTODIFF_MIN_OPSET, MAX_OPSET as AUTODIFF_MAX_OPSET } from './opset-upgrade';
