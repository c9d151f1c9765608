/**
 * YAML file -> `extends:` chain -> `--set dotted.key=value` overrides -> zod validation -> typed RunConfig.
 * Every error names the key and where it was written (file:line:col, or the `--set` that made it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import YAML, { LineCounter, isMap, isPair, isScalar, isSeq, type Node as YamlNode } from 'yaml';
import { InputFileError } from '../errors';
import { writeFileAtomic } from '../onnx/model-io';
import {
  ConfigError,
  dotted,
  formatIssue,
  formatOrigin,
  show,
  type Origin,
  type Provenance,
} from './config-error';
import { INPUT_PATH_KEYS, OUTPUT_PATH_KEYS, runConfigSchema, type RunConfig } from './schema';
import { lookupPath } from './schema-walk';

type Tree = Record<string, unknown>;

/** Options of loadConfig / configFromObject. */
export interface LoadConfigOptions {
  /** `dotted.key=value` strings applied after the files, in order; values are parsed as YAML. */
  overrides?: readonly string[];
  /** Folder that relative `--set` paths and output folders are resolved against (default: process.cwd()). */
  cwd?: string;
  /**
   * Check that the model files exist, naming the folder a relative path was resolved against (the YAML
   * file's or the current one) in the error. Off by default so configs can be validated on their own.
   */
  requireModelFiles?: boolean;
}

/**
 * Which schema a config file is validated against, and which of its dotted keys hold paths (input paths
 * resolve against the YAML file that sets them, output paths against the current folder).
 */
export interface ConfigSpec<T> {
  schema: z.ZodType<T>;
  inputPaths: readonly string[];
  outputPaths: readonly string[];
}

/** The run config of `rlpkd train`. */
const RUN_CONFIG: ConfigSpec<RunConfig> = {
  schema: runConfigSchema,
  inputPaths: INPUT_PATH_KEYS,
  outputPaths: OUTPUT_PATH_KEYS,
};

/** Name of the resolved config written into every run directory. */
export const RESOLVED_CONFIG_NAME = 'config.resolved.yaml';

/** Loads, merges, overrides and validates a run config; the result holds absolute paths only. */
export function loadConfig(file: string, options: LoadConfigOptions = {}): RunConfig {
  const config = loadConfigWith(RUN_CONFIG, file, options);
  if (options.requireModelFiles) requireModelFiles(config, cwd(options));
  return config;
}

/**
 * Loads, merges, overrides and validates a config file against any schema (`spec`), with the same
 * `extends:`, `--set`, path and error rules as the run config.
 */
export function loadConfigWith<T>(spec: ConfigSpec<T>, file: string, options: LoadConfigOptions = {}): T {
  const dir = cwd(options);
  const { tree, prov } = loadChain(spec, path.resolve(dir, file), dir, []);
  const config = finish(spec, tree, prov, options, dir, { file: displayPath(path.resolve(dir, file), dir) });
  if (config !== null && typeof config === 'object') loadedProvenance.set(config, prov);
  return config;
}

/** Where each key of a loaded config was set (for errors raised after validation). */
const loadedProvenance = new WeakMap<object, Provenance>();

/** Where each key of a config returned by loadConfigWith was set (file:line:col or `--set`). */
export function configOrigin(config: object, key: string): Origin | undefined {
  return loadedProvenance.get(config)?.get(key);
}

function cwd(options: LoadConfigOptions): string {
  return options.cwd ?? process.cwd();
}

/** Validates a config given as an object (library use, tests); relative paths resolve against `cwd`. */
export function configFromObject(input: unknown, options: LoadConfigOptions = {}): RunConfig {
  const config = configFromObjectWith(RUN_CONFIG, input, options);
  if (options.requireModelFiles) requireModelFiles(config, cwd(options));
  return config;
}

/** configFromObject for any schema (`spec`). */
export function configFromObjectWith<T>(
  spec: ConfigSpec<T>,
  input: unknown,
  options: LoadConfigOptions = {},
): T {
  if (!isPlainObject(input)) throw new ConfigError(`a config must be a mapping of keys, got ${show(input)}`);
  return finish(spec, structuredClone(input), new Map(), options, cwd(options), undefined);
}

/** Writes `config.resolved.yaml` (atomically) into a run directory; returns its path. */
export function writeResolvedConfig(
  runDir: string,
  config: RunConfig,
  sources: readonly string[] = [],
): string {
  const file = path.join(runDir, RESOLVED_CONFIG_NAME);
  const header =
    '# Resolved rl-pyramidkd run config: defaults, extends and --set overrides applied; paths absolute.\n' +
    (sources.length > 0 ? `# sources: ${sources.join(', ')}\n` : '') +
    '# Reload with `rlpkd train --config <this file>`.\n';
  writeFileAtomic(file, header + YAML.stringify(config, { lineWidth: 0 }));
  return file;
}

/** The embedded demo config shipped with the package (configs/demo.yaml). */
export function demoConfigPath(): string {
  return path.join(packageRoot(), 'configs', 'demo.yaml');
}

/** The folder holding rl-pyramidkd's package.json (works from src/ under ts and from dist/). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'rl-pyramidkd')
          return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const up = path.dirname(dir);
    if (up === dir)
      throw new InputFileError(`cannot find the rl-pyramidkd package folder above '${__dirname}'`);
    dir = up;
  }
}

/**
 * Whether `--set` overrides give `key` (dotted) a value; an unset (`key=null`, `~` or empty) does not count.
 * Lets a caller treat a key the user named on the command line as a requirement.
 */
export function overrideSets(overrides: readonly string[], key: string): boolean {
  let set = false;
  for (const text of overrides) {
    const o = parseOverride(text);
    if (dotted(o.path) === key) set = o.value !== null;
  }
  return set;
}

/** Splits `a.b.0.c=value` into a path and a YAML-typed value. */
export function parseOverride(text: string): { path: (string | number)[]; value: unknown } {
  const eq = text.indexOf('=');
  if (eq <= 0) {
    throw new ConfigError(`--set ${text}: expected dotted.key=value`, {
      hint: 'for example --set rl.ppo.lr=1e-4 or --set data.image_size=[256,256]',
    });
  }
  const key = text.slice(0, eq).trim();
  const segs = key.split('.');
  if (segs.some((s) => s === '')) throw new ConfigError(`--set ${text}: '${key}' has an empty key segment`);
  let value: unknown;
  try {
    value = YAML.parse(text.slice(eq + 1));
  } catch (err) {
    throw new ConfigError(
      `--set ${text}: the value is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  return { path: segs.map((s) => (/^\d+$/.test(s) ? Number(s) : s)), value };
}

function finish<T>(
  spec: ConfigSpec<T>,
  tree: Tree,
  prov: Provenance,
  options: LoadConfigOptions,
  cwd: string,
  mainOrigin: Origin | undefined,
): T {
  for (const text of options.overrides ?? []) applyOverride(spec, tree, prov, text, cwd);
  const parsed = spec.schema.safeParse(tree);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => formatIssue(i, spec.schema, tree, prov, mainOrigin));
    throw new ConfigError(lines.join('\n'));
  }
  const config = parsed.data;
  const data = (config as { data?: { type?: string; root?: string } }).data;
  if (data?.type === 'synthetic' && data.root === undefined) data.root = 'datasets/synthetic';
  for (const key of [...spec.inputPaths, ...spec.outputPaths]) {
    mapPathKey(config, key.split('.'), (v) => path.resolve(cwd, v));
  }
  return config;
}

/** requireModelFile for the teacher and the student, each named with where it was set (if loaded from YAML). */
function requireModelFiles(config: RunConfig, cwd: string): void {
  for (const key of ['teacher', 'student'] as const) {
    requireModelFile(`models.${key}`, config.models[key], configOrigin(config, `models.${key}`), cwd);
  }
  const head = config.models.teacher_head;
  if (head !== undefined) {
    requireModelFile('models.teacher_head', head, configOrigin(config, 'models.teacher_head'), cwd);
  }
}

/** One error for a missing model file: where it was set, the folder a relative path started at, what to do. */
export function requireModelFile(key: string, file: string, origin: Origin | undefined, cwd: string): void {
  if (fs.existsSync(file)) return;
  const base =
    origin && 'file' in origin
      ? `the folder of ${origin.file}, ${path.dirname(path.resolve(cwd, origin.file))}`
      : `the current folder, ${cwd}`;
  throw new InputFileError(`${key} '${file}'${origin ? ` (${formatOrigin(origin)})` : ''} does not exist`, {
    hint:
      `a relative path there is resolved against ${base}; build small FPN graphs with ` +
      '`rlpkd models build`, or export torchvision ones with `python3 tools/export_fpn.py`',
  });
}

function applyOverride<T>(
  spec: ConfigSpec<T>,
  tree: Tree,
  prov: Provenance,
  text: string,
  cwd: string,
): void {
  const { path: keyPath, value } = parseOverride(text);
  const found = lookupPath(spec.schema, keyPath);
  if (!found.ok) {
    const at = dotted(found.at);
    const parent = dotted(found.at.slice(0, -1));
    if (found.reason === 'unknown-key') {
      throw new ConfigError(
        `--set ${text}: unknown key '${at}'; allowed keys at ${parent === '' ? 'the top level' : `'${parent}'`}: ` +
          found.allowed.join(', '),
      );
    }
    if (found.reason === 'bad-index')
      throw new ConfigError(`--set ${text}: '${parent}' is a list; use a number after it`);
    throw new ConfigError(`--set ${text}: '${parent}' is a value, not a section`);
  }
  let resolved = value;
  if (typeof value === 'string' && matchesPathKey(keyPath, spec.inputPaths))
    resolved = path.resolve(cwd, value);
  // `key=null`, `~` or empty unsets a key that takes no null, so its default (or absence) applies again.
  const unset = value === null && !z.safeParse(found.schema, null).success;
  let cur: Tree | unknown[] = tree;
  for (let i = 0; i < keyPath.length - 1; i++) {
    const seg = keyPath[i]!;
    const nextIsIndex = typeof keyPath[i + 1] === 'number';
    const holder = cur as Record<string | number, unknown>;
    if (holder[seg] === undefined || holder[seg] === null || typeof holder[seg] !== 'object') {
      holder[seg] = nextIsIndex ? [] : {};
    }
    cur = holder[seg] as Tree | unknown[];
  }
  const holder = cur as Record<string | number, unknown>;
  const last = keyPath[keyPath.length - 1]!;
  if (unset) delete holder[last];
  else holder[last] = resolved;
  const key = dotted(keyPath);
  for (const k of [...prov.keys()]) if (k === key || k.startsWith(`${key}.`)) prov.delete(k);
  prov.set(key, { set: text });
}

function loadChain<T>(
  spec: ConfigSpec<T>,
  file: string,
  cwd: string,
  stack: readonly string[],
): { tree: Tree; prov: Provenance } {
  if (stack.includes(file)) {
    const cycle = [...stack.slice(stack.indexOf(file)), file].map((f) => displayPath(f, cwd));
    throw new ConfigError(`config extends cycle: ${cycle.join(' -> ')}`, {
      hint: 'remove one of the extends: entries so the chain ends',
    });
  }
  const { tree, positions, extendsList } = readYamlFile(file, cwd, stack);
  let merged: Tree = {};
  const prov: Provenance = new Map();
  for (const { target, origin } of extendsList) {
    const baseFile = path.resolve(path.dirname(file), target);
    if (!fs.existsSync(baseFile)) {
      throw new InputFileError(
        `${formatOrigin(origin)}: extends '${target}', which does not exist (${baseFile})`,
        {
          hint: 'extends: paths are relative to the file that contains them',
        },
      );
    }
    const base = loadChain(spec, baseFile, cwd, [...stack, file]);
    merged = mergeInto(merged, base.tree, prov, '');
    for (const [k, v] of base.prov) prov.set(k, v);
  }
  for (const key of spec.inputPaths)
    mapPathKey(tree, key.split('.'), (v) => path.resolve(path.dirname(file), v));
  merged = mergeInto(merged, tree, prov, '');
  for (const [k, v] of positions) prov.set(k, v);
  return { tree: merged, prov };
}

function readYamlFile(
  file: string,
  cwd: string,
  stack: readonly string[],
): { tree: Tree; positions: Provenance; extendsList: { target: string; origin: Origin }[] } {
  const shown = displayPath(file, cwd);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const via = stack.length > 0 ? ` (extended by ${displayPath(stack[stack.length - 1]!, cwd)})` : '';
    throw new InputFileError(
      e.code === 'ENOENT'
        ? `config file '${shown}' does not exist${via}`
        : `config file '${shown}': ${e.message}`,
      { hint: 'check the path (relative paths start at the current folder)' },
    );
  }
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    const where = pos ? `${shown}:${pos.line}:${pos.col}` : shown;
    const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`${where}: YAML error: ${first}`, {
      hint: 'fix the YAML syntax (indentation, duplicate keys, unclosed brackets)',
    });
  }
  const value: unknown = doc.toJS() ?? {};
  if (!isPlainObject(value)) {
    throw new ConfigError(`${shown}: a config must be a mapping of keys, got ${show(value)}`);
  }
  const positions: Provenance = new Map();
  const at = (offset: number): Origin => {
    const p = lc.linePos(offset);
    return { file: shown, line: p.line, col: p.col };
  };
  collectPositions(doc.contents, [], positions, at);
  const extendsList: { target: string; origin: Origin }[] = [];
  if ('extends' in value) {
    const ext = value.extends;
    const origin = positions.get('extends') ?? { file: shown };
    const targets = typeof ext === 'string' ? [ext] : Array.isArray(ext) ? ext : null;
    if (!targets || targets.some((t) => typeof t !== 'string' || t === '')) {
      throw new ConfigError(
        `${formatOrigin(origin)}: extends must be a file path or a list of paths, got ${show(ext)}`,
      );
    }
    for (const t of targets as string[]) extendsList.push({ target: t, origin });
    delete value.extends;
    for (const k of [...positions.keys()])
      if (k === 'extends' || k.startsWith('extends.')) positions.delete(k);
  }
  return { tree: value, positions, extendsList };
}

function collectPositions(
  node: unknown,
  prefix: (string | number)[],
  out: Provenance,
  at: (offset: number) => Origin,
): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair) || !isScalar(pair.key)) continue;
      const key = [...prefix, String(pair.key.value)];
      const range = (pair.key as YamlNode).range;
      if (range) out.set(dotted(key), at(range[0]));
      collectPositions(pair.value, key, out, at);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const key = [...prefix, i];
      const range = (item as YamlNode | null)?.range;
      if (range) out.set(dotted(key), at(range[0]));
      collectPositions(item, key, out, at);
    });
  }
}

/** Deep-merges `over` onto `base`: sections merge, lists and values replace. Drops stale provenance. */
function mergeInto(base: Tree, over: Tree, prov: Provenance, prefix: string): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (isPlainObject(v) && isPlainObject(out[k])) {
      out[k] = mergeInto(out[k] as Tree, v, prov, key);
    } else {
      out[k] = v;
      for (const p of [...prov.keys()]) if (p.startsWith(`${key}.`)) prov.delete(p);
    }
  }
  return out;
}

function matchesPathKey(keyPath: readonly (string | number)[], patterns: readonly string[]): boolean {
  return patterns.some((p) => {
    const segs = p.split('.');
    return segs.length === keyPath.length && segs.every((s, i) => s === '*' || s === String(keyPath[i]));
  });
}

/** Applies `fn` to the string at a dotted key pattern (`*` = every list element), where present. */
function mapPathKey(node: unknown, segs: readonly string[], fn: (v: string) => string): void {
  if (segs.length === 0 || node === null || typeof node !== 'object') return;
  const [head, ...rest] = segs as [string, ...string[]];
  const holder = node as Record<string, unknown>;
  const keys = head === '*' ? (Array.isArray(node) ? node.map((_, i) => String(i)) : []) : [head];
  for (const k of keys) {
    if (rest.length === 0) {
      if (typeof holder[k] === 'string') holder[k] = fn(holder[k] as string);
    } else {
      mapPathKey(holder[k], rest, fn);
    }
  }
}

function isPlainObject(v: unknown): v is Tree {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function displayPath(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
