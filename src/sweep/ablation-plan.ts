/**
 * What an ablation runs (`rlpkd ablate`, issue 13 item 4): per seed, one phase-1 job (a normal run stopped
 * after phase 1) and one branch job per method, each continuing from that phase-1 checkpoint: every fixed
 * non-empty subset of the levels (all levels = uniform distillation), the RL policy (phases 2–4), and a
 * random per-image selection at the RL policy's measured mean cost (so it waits for the rl job). Job ids
 * name the seed and the method (`s1-P4+P5`); they key the result files and the queue's job ids.
 * `--tables` adds, per seed, jobs of its own (table-plan.ts): a NAS search per method (`s1-nas-darts`) and
 * the component and gradient-ablation variants (`s1-rl@lambda0`), each after phase 1.
 */
import { RlpkdError } from '../errors';
import { TABLE_VARIANTS, VARIANT_BASE, type TableVariant } from './table-variants';

/** The NAS methods whose choice the tables train (Tables 1 and 2). */
export const TABLE_NAS_METHODS = ['darts', 'evolution', 'gdas'] as const;
export type TableNasMethod = (typeof TABLE_NAS_METHODS)[number];

/** A method compared by the ablation (a variant: table-variants.ts; nas: a search job). */
export type AblationMethod =
  | { kind: 'fixed'; levels: string[]; variant?: TableVariant }
  | { kind: 'random' }
  | { kind: 'rl'; variant?: TableVariant }
  | { kind: 'nas'; search: TableNasMethod };

/** One job of the ablation. */
export interface AblationJob {
  /** Unique within the ablation; file-name and queue safe. */
  id: string;
  seed: number;
  /** 'phase1' or the method's name (`P4+P5`, `random`, `rl`). */
  method: string;
  /** Job ids whose results this job needs first. */
  needs: string[];
}

/** The method's name in tables: a fixed subset by its levels (`P4+P5`), else `rl` / `random`; `@variant`, `nas-<method>`. */
export function methodName(m: AblationMethod): string {
  if (m.kind === 'nas') return `nas-${m.search}`;
  if (m.kind === 'random') return 'random';
  const base = m.kind === 'fixed' ? m.levels.join('+') : 'rl';
  return m.variant ? `${base}@${m.variant}` : base;
}

/** Every fixed non-empty subset of `levels` (level order inside a subset; fewer levels first), then random and rl. */
export function ablationMethods(levels: readonly string[]): AblationMethod[] {
  const L = levels.length;
  if (L === 0 || L > 8) {
    throw new RlpkdError(`an ablation compares every subset of 1 to 8 levels; the config distils ${L}`, {
      hint: 'set models.levels to the pyramid levels to compare',
    });
  }
  const subsets: string[][] = [];
  for (let m = 1; m < 1 << L; m++) subsets.push(levels.filter((_, l) => m & (1 << l)));
  subsets.sort((a, b) => a.length - b.length);
  return [
    ...subsets.map((s): AblationMethod => ({ kind: 'fixed', levels: s })),
    { kind: 'random' },
    { kind: 'rl' },
  ];
}

/** The id of a seed's job for `method` ('phase1' or a method name). */
export function jobId(seed: number, method: string): string {
  return `s${seed}-${method}`;
}

/** A method `--tables` adds, and the methods of the same seed it waits for besides phase 1. */
export interface ExtraMethod {
  method: string;
  after: string[];
}

/**
 * Every job of an ablation over `seeds` (see module doc), dependencies first; `extra` are the methods
 * `--tables` adds (listed after what they wait for).
 */
export function planAblation(
  levels: readonly string[],
  seeds: readonly number[],
  extra: readonly ExtraMethod[] = [],
): AblationJob[] {
  const jobs: AblationJob[] = [];
  for (const seed of seeds) {
    const p1 = jobId(seed, 'phase1');
    jobs.push({ id: p1, seed, method: 'phase1', needs: [] });
    for (const m of ablationMethods(levels)) {
      const name = methodName(m);
      if (name === 'random') continue;
      jobs.push({ id: jobId(seed, name), seed, method: name, needs: [p1] });
    }
    jobs.push({ id: jobId(seed, 'random'), seed, method: 'random', needs: [p1, jobId(seed, 'rl')] });
    for (const x of extra) {
      jobs.push({
        id: jobId(seed, x.method),
        seed,
        method: x.method,
        needs: [p1, ...x.after.map((a) => jobId(seed, a))],
      });
    }
  }
  return jobs;
}

/** The method a branch job's name stands for. */
export function parseMethod(name: string, levels: readonly string[]): AblationMethod {
  if (name === 'rl' || name === 'random') return { kind: name };
  const nas = TABLE_NAS_METHODS.find((n) => name === `nas-${n}`);
  if (nas) return { kind: 'nas', search: nas };
  const at = name.indexOf('@');
  if (at >= 0) {
    const variant = TABLE_VARIANTS.find((v) => v === name.slice(at + 1));
    const base = parseMethod(name.slice(0, at), levels);
    const expected = variant && VARIANT_BASE[variant];
    const fits =
      (expected === 'rl' && base.kind === 'rl') ||
      (expected === 'uniform' && base.kind === 'fixed' && base.levels.length === levels.length);
    if (!variant || !fits || (base.kind !== 'rl' && base.kind !== 'fixed')) {
      throw new RlpkdError(`ablation method '${name}' names no variant of its method`, {
        hint: `variants: ${TABLE_VARIANTS.join(', ')} (of rl or of the all-level subset)`,
      });
    }
    return { ...base, variant };
  }
  const parts = name.split('+');
  if (parts.some((p) => !levels.includes(p))) {
    throw new RlpkdError(
      `ablation method '${name}' names a level that is not distilled (${levels.join(', ')})`,
    );
  }
  return { kind: 'fixed', levels: levels.filter((l) => parts.includes(l)) };
}
