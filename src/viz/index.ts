/** Plots: vega-lite specs rendered to SVG and PNG (policy heatmap, GradNorm weights, curves, Pareto). */
export * from './render';
export * from './policy-heatmap';
export * from './gradnorm-weights';
export * from './training-curves';
export * from './pareto';
export * from './pareto-input';
export * from './run-plots';
