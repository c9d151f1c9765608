/** Graph analysis: pyramid levels, per-level cost, trainable parameters, and the `inspect` report. */
export * from './pyramid';
export * from './cost-model';
export * from './parameters';
export * from './parameter-tensors';
export * from './inspect';
export * from './selection-cost';
export * from './subset-work';
