/**
 * rl-pyramidkd public API. The CLI (`rlpkd`) is a thin layer over these exports.
 */
export * from './errors';
export * from './onnx';
export * from './runtime';
