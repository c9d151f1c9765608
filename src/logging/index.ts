/** Logging: console logger with progress, metrics.jsonl, TensorBoard event files, run directories. */
export * from './crc32c';
export * from './tfrecord';
export * from './tfevents';
export * from './metrics';
export * from './logger';
export * from './run-dir';
