/**
 * What an ablation runs (`rlpkd ablate`, issue 13 item 4): per seed, one phase-1 job (a normal run stopped
 * after phase 1) and one branch job per method, each continuing from that phase-1 checkpoint: every fixed
 * non-empty subset of the levels (all levels = uniform distillation), the RL policy (phases 2–4), and a
 * random per-image selection at the RL policy's measured mean cost (so it waits for the rl job). Job ids
 * name the seed and the method (`s1-P4+P5`); they key the result files and the queue's job ids.
 */
import { RlpkdError } from '../errors';

/** A method compared by the ablation. */
export type AblationMethod = { kind: 'fixed'; levels: string[] } | { kind: 'random' } | { kind: 'rl' };

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

/** The method's name in tables: a fixed subset by its levels (`P4+P5`), else `rl` / `random`. */
export function methodName(m: AblationMethod): string {
  return m.kind === 'fixed' ? m.levels.join('+') : m.kind;
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

/** Every job of an ablation over `seeds` (see module doc), dependencies first. */
export function planAblation(levels: readonly string[], seeds: readonly number[]): AblationJob[] {
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
  }
  return jobs;
}

/** The method a branch job's name stands for. */
export function parseMethod(name: string, levels: readonly string[]): AblationMethod {
  if (name === 'rl' || name === 'random') return { kind: name };
  const parts = name.split('+');
  if (parts.some((p) => !levels.includes(p))) {
    throw new RlpkdError(
      `ablation method '${name}' names a level that is not distilled (${levels.join(', ')})`,
    );
  }
  return { kind: 'fixed', levels: levels.filter((l) => parts.includes(l)) };
}
