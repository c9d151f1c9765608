/** The distillation training pipeline: GradNorm, level matching and losses, the student trainer, phases 1-4, runs. */
export * from './gradnorm';
export * from './gradnorm-probe';
export * from './shared-parameter';
export * from './level-matching';
export * from './distill-model';
export * from './student-distiller';
export * from './create-distiller';
export * from './image-stream';
export * from './reward-scaling';
export * from './run-checkpoint';
export * from './setup';
export * from './selection-env';
export * from './evaluation';
export * from './run-context';
export * from './phases';
export * from './pipeline';
export * from './evaluate-run';
