export * from './tensors';
export * from './session';
export * from './web-session';
