/** Shared discovery helpers for dataset readers: folder checks with clear messages, image globbing. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fg from 'fast-glob';
import { InputFileError } from '../errors';
import { IMAGE_EXTENSIONS } from './types';

/** Throws one clear error when a dataset folder is missing (or is a file). */
export function requireDir(dir: string, what: string, hint: string): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new InputFileError(`${what} '${dir}' does not exist`, { hint });
  }
  if (!stat.isDirectory()) throw new InputFileError(`${what} '${dir}' is a file, not a folder`, { hint });
}

/** Whether a path is an existing folder. */
export function isDir(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Image files under `dir` matching `pattern` (e.g. `*` or `*\/**\/*`), sorted, as '/'-separated relative paths. */
export function globImages(dir: string, pattern: string): string[] {
  const exts = IMAGE_EXTENSIONS.join(',');
  return fg
    .sync(`${pattern}.{${exts}}`, { cwd: dir, caseSensitiveMatch: false, onlyFiles: true, dot: false })
    .sort();
}

/** Absolute path of a '/'-separated relative path under `dir`. */
export function under(dir: string, rel: string): string {
  return path.join(dir, ...rel.split('/'));
}
