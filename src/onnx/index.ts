export * from './types';
export * from './attributes';
export * from './tensor-data';
export { decodeModel, encodeModel } from './codec';
export type { ExternalDataResolver, ExternalDataWriter } from './codec';
export * from './model-io';
export * from './graph-builder';
export * from './graph-structure';
