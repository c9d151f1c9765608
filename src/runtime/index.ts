export * from './tensors';
export * from './session';
