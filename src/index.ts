/**
 * rl-pyramidkd public API. The CLI (`rlpkd`) is a thin layer over these exports.
 */
export * from './errors';
export * from './onnx';
export * from './runtime';
export * from './autodiff';
export * from './analysis';
export * from './models';
export * from './util';
export * from './config';
export * from './data';
export * from './logging';
export * from './training';
export * from './io';
export * from './rl';
export * from './distill';
export * from './metrics';
export * from './heads';
