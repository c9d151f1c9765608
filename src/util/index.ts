export * from './rng';
export * from './content-hash';
