/**
 * Where the dynamic linker would find a shared library: the folders of $LD_LIBRARY_PATH, then the
 * linker cache (`ldconfig -p`), then the system folders. Libraries that exist only elsewhere (a CUDA
 * toolkit folder nobody added, pip's nvidia-* wheels) are found too and reported as not on the path,
 * because that is the usual reason onnxruntime cannot open them.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where a library was found. */
export interface LibraryLocation {
  name: string;
  /** The file, or null when none was found anywhere. */
  file: string | null;
  /** Whether the dynamic linker finds it as things stand. */
  onPath: boolean;
}

/** The places to look; every field defaults to this machine's. */
export interface LibrarySearch {
  /** $LD_LIBRARY_PATH's folders. */
  ldLibraryPath?: readonly string[];
  /** `ldconfig -p` output. */
  ldconfigOutput?: string;
  /** The linker's built-in folders. */
  systemDirs?: readonly string[];
  /** Folders off the path where CUDA libraries often are. */
  offPathDirs?: readonly string[];
}

const SYSTEM_DIRS = [
  '/lib/x86_64-linux-gnu',
  '/usr/lib/x86_64-linux-gnu',
  '/lib64',
  '/usr/lib64',
  '/lib',
  '/usr/lib',
];

/** Subfolders of `parent` matching `prefix*`, each joined with `tail`, that exist. */
function globDirs(parent: string, prefix: string, tail: string): string[] {
  try {
    return fs
      .readdirSync(parent)
      .filter((d) => d.startsWith(prefix))
      .map((d) => path.join(parent, d, tail))
      .filter((d) => fs.existsSync(d));
  } catch {
    return [];
  }
}

/** CUDA toolkit folders and pip's nvidia wheels (nvidia/<component>/lib) under the usual prefixes. */
function defaultOffPathDirs(): string[] {
  const dirs = [
    ...globDirs('/usr/local', 'cuda', 'lib64'),
    ...globDirs('/usr/local', 'cuda', path.join('targets', 'x86_64-linux', 'lib')),
  ];
  const sitePackages = [
    ...globDirs('/usr/local/lib', 'python3', 'dist-packages'),
    ...globDirs('/usr/local/lib', 'python3', 'site-packages'),
    ...globDirs('/usr/lib', 'python3', 'dist-packages'),
  ];
  for (const sp of sitePackages) {
    for (const component of globDirs(sp, 'nvidia', '')) {
      try {
        for (const sub of fs.readdirSync(component)) {
          const lib = path.join(component, sub, 'lib');
          if (fs.existsSync(lib)) dirs.push(lib);
        }
      } catch {
        // unreadable: skip
      }
    }
  }
  return dirs;
}

function ldconfigCache(): string {
  for (const exe of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    const r = spawnSync(exe, ['-p'], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout;
  }
  return '';
}

/** Finds each library by file name (e.g. `libcudart.so.13`). */
export function locateLibraries(names: readonly string[], search: LibrarySearch = {}): LibraryLocation[] {
  const ldPath = search.ldLibraryPath ?? (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  const cache = new Map<string, string>();
  // Lines look like: `\tlibcudart.so.13 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudart.so.13`
  for (const line of (search.ldconfigOutput ?? ldconfigCache()).split('\n')) {
    const m = /^\s*(\S+) \(([^)]*)\) => (.+)$/.exec(line);
    if (m && !cache.has(m[1]) && (m[2].includes('x86-64') || process.arch !== 'x64'))
      cache.set(m[1], m[3].trim());
  }
  const systemDirs = search.systemDirs ?? SYSTEM_DIRS;
  const offPath = search.offPathDirs ?? defaultOffPathDirs();
  const inDirs = (name: string, dirs: readonly string[]): string | null => {
    for (const d of dirs) {
      const f = path.join(d, name);
      if (fs.existsSync(f)) return f;
    }
    return null;
  };
  return names.map((name) => {
    const onPath = inDirs(name, ldPath) ?? cache.get(name) ?? inDirs(name, systemDirs);
    if (onPath) return { name, file: onPath, onPath: true };
    return { name, file: inDirs(name, offPath), onPath: false };
  });
}
