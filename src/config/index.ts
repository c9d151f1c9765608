/** Run configuration: schema with defaults, YAML loading with extends and --set, resolved-config output. */
export * from './schema';
export { ConfigError, formatOrigin, type Origin, type Provenance } from './config-error';
export * from './load-config';
export { lookupPath, allowedKeysAt, type PathLookup } from './schema-walk';
export * from './teach-schema';
