/**
 * Cache keys by content: one helper for every cache the toolkit keeps (training artifacts, onnxruntime's
 * optimized graphs, the benchmark's prepared inputs), so they agree on what "the same input" means.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** JSON with object keys sorted and undefined members left out: equal values give equal text. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Hex sha-256 of the parts in order (strings as UTF-8), cut to `length` characters when given. */
export function contentHash(parts: readonly (string | Uint8Array)[], length?: number): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  const hex = h.digest('hex');
  return length === undefined ? hex : hex.slice(0, length);
}

/**
 * A file's identity without reading it: absolute path, size and modification time, and those of its
 * ONNX external-data side file (`<file>.data`) when there is one. Cheap for multi-GB models.
 */
export function fileIdentity(file: string): string {
  const stat = (f: string): string => {
    const s = fs.statSync(f);
    return `${path.resolve(f)}:${s.size}:${s.mtimeMs}`;
  };
  const data = fs.existsSync(`${file}.data`) ? stat(`${file}.data`) : '';
  return `${stat(file)}|${data}`;
}
