/** The training layer: losses, optimizers, checkpoints, artifacts and the TrainingSession (also in a worker). */
export * from './artifacts';
export * from './checkpoint';
export * from './graph-edit';
export * from './losses';
export * from './level-distances';
export * from './lr-schedules';
export * from './optimizers';
export * from './training-session';
export * from './host-update';
export * from './fold-frozen-affine';
export * from './worker-session';
export * from './gradients';
export * from './level-artifacts';
