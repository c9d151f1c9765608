/**
 * Config problems as one clear message per problem: where it was written (file:line:col or the `--set` that
 * made it), the dotted key, and what is allowed (the keys at that level, or the allowed values).
 */
import type { z } from 'zod';
import { RlpkdError } from '../errors';
import { allowedKeysAt } from './schema-walk';

/** Where a config value came from. */
export type Origin = { file: string; line?: number; col?: number } | { set: string };

/** Dotted path -> where it was last written. */
export type Provenance = Map<string, Origin>;

/** A bad config file, key or value. */
export class ConfigError extends RlpkdError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, {
      hint: 'run `rlpkd train --help`; every key is documented in configs/default.yaml',
      ...options,
    });
    this.name = 'ConfigError';
  }
}

/** Joins path segments the way users write them (`maml.tasks.0.name`). */
export function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/** Renders an origin as `file:line:col` or `--set key=value`. */
export function formatOrigin(origin: Origin): string {
  if ('set' in origin) return `--set ${origin.set}`;
  if (origin.line === undefined) return origin.file;
  return `${origin.file}:${origin.line}:${origin.col ?? 1}`;
}

/** The origin of the deepest prefix of `path` that has one. */
export function originOf(
  prov: Provenance,
  path: readonly PropertyKey[],
  fallback?: Origin,
): Origin | undefined {
  for (let n = path.length; n >= 1; n--) {
    const o = prov.get(dotted(path.slice(0, n)));
    if (o) return o;
  }
  return fallback;
}

/** Reads the value at a path in a plain object tree (undefined when absent). */
export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/** A short, readable rendering of a config value for messages. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return `'${value}'`;
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `a list ${show(value)}`;
  if (typeof value === 'object') return 'a section';
  return `${typeof value} ${show(value)}`;
}

/** One line for one zod issue, naming the key and what is allowed. */
export function formatIssue(
  issue: z.core.$ZodIssue,
  schema: z.ZodType,
  raw: unknown,
  prov: Provenance,
  fallback: Origin | undefined,
): string {
  const where = (p: readonly PropertyKey[]) => {
    const o = originOf(prov, p, fallback);
    return o ? `${formatOrigin(o)}: ` : '';
  };
  const key = dotted(issue.path);
  const value = valueAt(raw, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeysAt(schema, issue.path) ?? [];
      const level = key === '' ? 'the top level' : `'${key}'`;
      return issue.keys
        .map((k) => {
          const full = [...issue.path, k];
          return `${where(full)}unknown key '${dotted(full)}'; allowed keys at ${level}: ${allowed.join(', ')}`;
        })
        .join('\n');
    }
    case 'invalid_value':
      return `${where(issue.path)}${key}: got ${show(value)}, allowed values: ${issue.values.map((v) => String(v)).join(', ')}`;
    case 'invalid_type':
      if (value === undefined) return `${where(issue.path)}${key} is required (${issue.expected})`;
      return `${where(issue.path)}${key}: expected ${issue.expected}, got ${describeType(value)}`;
    case 'invalid_union':
      return `${where(issue.path)}${key}: got ${show(value)}; ${issue.message}`;
    case 'too_small':
    case 'too_big':
    case 'not_multiple_of':
    case 'invalid_format':
      return `${where(issue.path)}${key}: got ${show(value)}; ${issue.message.replace(/^Too (small|big): /, '')}`;
    default: {
      const got =
        value !== undefined && (typeof value !== 'object' || Array.isArray(value))
          ? `got ${show(value)}; `
          : '';
      return `${where(issue.path)}${key}: ${got}${issue.message}`;
    }
  }
}
