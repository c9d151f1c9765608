export * from './tensors';
export * from './session';
export * from './web-session';
export * from './optimized-model';
