export * from './tensors';
export * from './session';
export * from './web-session';
export * from './optimized-model';
export * from './choose-runtime';
export * from './gpu-runtime';
export { loadedOrtFlavour, type OrtFlavour } from './ort-module';
export { ensureProviderUsable, probeProvider, type ProviderProbe } from './provider-probe';
