/**
 * Navigating the zod schema by dotted path, so `--set` can reject an unknown key before validation and an
 * error can list the keys allowed at the level where a typo was made.
 */
import type { z } from 'zod';

type AnySchema = z.core.$ZodType;

interface WalkDef {
  type: string;
  innerType?: AnySchema;
  in?: AnySchema;
  element?: AnySchema;
  items?: AnySchema[];
  options?: AnySchema[];
  shape?: Record<string, AnySchema>;
}

function def(s: AnySchema): WalkDef {
  return s._zod.def as unknown as WalkDef;
}

/** Strips default/prefault/optional/nullable/readonly/pipe wrappers. */
export function unwrap(s: AnySchema): AnySchema {
  let cur = s;
  for (;;) {
    const d = def(cur);
    if (
      d.innerType &&
      ['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch'].includes(d.type)
    ) {
      cur = d.innerType;
    } else if (d.type === 'pipe' && d.in) {
      cur = d.in;
    } else {
      return cur;
    }
  }
}

/** The object shape of a schema (or of the object option of a union), if it has one. */
function objectShape(s: AnySchema): Record<string, AnySchema> | undefined {
  const u = unwrap(s);
  const d = def(u);
  if (d.type === 'object') return d.shape;
  if (d.type === 'union') {
    for (const o of d.options ?? []) {
      const shape = objectShape(o);
      if (shape) return shape;
    }
  }
  return undefined;
}

/** The element schema of a list (or of the list option of a union), if it has one. */
function listElement(s: AnySchema, index: number): AnySchema | undefined {
  const u = unwrap(s);
  const d = def(u);
  if (d.type === 'array') return d.element;
  if (d.type === 'tuple') return d.items?.[index];
  if (d.type === 'union') {
    for (const o of d.options ?? []) {
      const e = listElement(o, index);
      if (e) return e;
    }
  }
  return undefined;
}

/** Result of resolving a dotted path against the schema. */
export type PathLookup =
  | { ok: true; schema: AnySchema }
  | {
      ok: false;
      at: readonly (string | number)[];
      reason: 'unknown-key' | 'not-a-section' | 'bad-index';
      allowed: string[];
    };

/** Finds the schema of `path`; when a segment does not exist, says where and what was allowed there. */
export function lookupPath(root: AnySchema, path: readonly (string | number)[]): PathLookup {
  let cur = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const shape = objectShape(cur);
    if (shape) {
      const next = shape[String(seg)];
      if (!next)
        return { ok: false, at: path.slice(0, i + 1), reason: 'unknown-key', allowed: Object.keys(shape) };
      cur = next;
      continue;
    }
    const index = typeof seg === 'number' ? seg : /^\d+$/.test(seg) ? Number(seg) : NaN;
    const el = Number.isNaN(index) ? undefined : listElement(cur, index);
    if (el) {
      cur = el;
      continue;
    }
    const isList = listElement(cur, 0) !== undefined;
    return {
      ok: false,
      at: path.slice(0, i + 1),
      reason: isList ? 'bad-index' : 'not-a-section',
      allowed: [],
    };
  }
  return { ok: true, schema: cur };
}

/** The keys allowed in the section at `path` (undefined when it is not a section). */
export function allowedKeysAt(root: AnySchema, path: readonly PropertyKey[]): string[] | undefined {
  const r = lookupPath(
    root,
    path.map((p) => (typeof p === 'number' ? p : String(p))),
  );
  if (!r.ok) return undefined;
  const shape = objectShape(r.schema);
  return shape ? Object.keys(shape) : undefined;
}
