export * from './tensors';
export * from './session';
export * from './web-session';
export * from './optimized-model';
export * from './choose-runtime';
