/**
 * The paper's tables (`rlpkd ablate --tables`) assembled from the job results of one ablation: every
 * number is a mean ± sample std over the seeds of values read from result files, and every numeric cell
 * lists the job ids it was computed from. Rows whose training coincides with another job (a NAS choice is
 * always one of the fixed subsets; a variant may equal its base method) read that job and the notes say so.
 * - Table 1: uniform, every other fixed subset, random, DARTS-LS, EA-LS, GDAS-LS, RL; the task metric
 *   columns of the evaluation (COCO AP … APl for detection, the primary metric otherwise, the held-out
 *   distillation loss without a teacher head), the cost share of the distillation work, and the speedup of
 *   the kept student updates' wall time against uniform's.
 * - Table 2: uniform, the NAS methods and RL: search type, metric, cost, measured search cost, sample-adaptive.
 * - Table 4: the component ablation; Table 5: the gradient ablation with the stability figure
 *   (training-stability.ts).
 */
import { RlpkdError } from '../errors';
import { measuredByAll, sampleStd } from './ablation-report';
import { TABLE_NAS_METHODS, jobId, type TableNasMethod } from './ablation-plan';
import type { AblationManifest, BranchResult, JobResult, NasJobResult } from './ablation-store';
import { tableVariantSources, type TableVariantSource } from './table-plan';
import { VARIANT_BASE, VARIANT_CHANGES, type TableVariant } from './table-variants';

/** A numeric cell: mean ± sample std over seeds (null with one seed) and the jobs it came from. */
export interface TableCell {
  mean: number;
  std: number | null;
  jobs: string[];
}

/** A column: numeric cells or text. */
export interface TableColumn {
  key: string;
  label: string;
  kind: 'number' | 'text';
}

/** One row: a label and a cell per column key. */
export interface TableRow {
  label: string;
  /** The method (job method name) the row is about. */
  method: string;
  cells: Record<string, TableCell | string>;
}

/** One table. */
export interface AblationTable {
  id: 1 | 2 | 4 | 5;
  title: string;
  columns: TableColumn[];
  rows: TableRow[];
  notes: string[];
}

/** tables.json. */
export interface AblationTables {
  metric: { name: string; higherIsBetter: boolean; columns: string[] };
  seeds: number[];
  tables: AblationTable[];
}

/** Table names of the NAS methods. */
export const NAS_TABLE_NAMES: Record<TableNasMethod, string> = {
  darts: 'DARTS-LS',
  evolution: 'EA-LS',
  gdas: 'GDAS-LS',
};

const NAS_SEARCH_TYPE: Record<TableNasMethod, string> = {
  darts: 'gradient',
  evolution: 'evolution',
  gdas: 'gradient',
};

const DETECTION_COLUMNS = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl'];

/** Reads results by job id; a missing one is an internal error (the tables run after every job). */
class Results {
  constructor(private readonly byId: ReadonlyMap<string, JobResult>) {}

  get<T extends JobResult>(id: string): T {
    const r = this.byId.get(id);
    if (!r) throw new RlpkdError(`internal: the tables need the result of job '${id}'`);
    return r as T;
  }
}

function cell(values: readonly number[], jobs: readonly string[]): TableCell {
  return {
    mean: values.reduce((a, b) => a + b, 0) / values.length,
    std: sampleStd(values),
    jobs: [...new Set(jobs)],
  };
}

/** The metric columns (see module doc) and how to read one from a branch result. */
function metricColumns(results: readonly BranchResult[]): {
  name: string;
  higherIsBetter: boolean;
  keys: string[];
  /** Detection columns left out because some job has no value for them (null: nothing to measure). */
  unmeasured: string[];
  read: (r: BranchResult, key: string) => number;
} {
  const first = results[0].metric;
  const withValues = results.every((r) => r.metric.source === 'task' && r.taskValues);
  // A COCO column no job could measure (APl on images without a COCO-large object: null) is left out.
  const measured = (k: string) => measuredByAll(results, k);
  const keys =
    withValues &&
    first.name === 'AP' &&
    DETECTION_COLUMNS.every((k) => results.every((r) => k in r.taskValues!))
      ? DETECTION_COLUMNS.filter((k) => k === first.name || measured(k))
      : [first.name];
  const unmeasured =
    withValues && first.name === 'AP' ? DETECTION_COLUMNS.filter((k) => !keys.includes(k)) : [];
  return {
    name: first.name,
    higherIsBetter: first.higherIsBetter,
    keys,
    unmeasured,
    read: (r, key) => {
      if (key === first.name) return r.metric.value;
      const v = r.taskValues?.[key];
      if (typeof v !== 'number') throw new RlpkdError(`internal: job '${r.id}' has no ${key}`);
      return v;
    },
  };
}

/** Assembles the tables from the manifest and every job result (see module doc). */
export function assembleTables(manifest: AblationManifest, all: readonly JobResult[]): AblationTables {
  const res = new Results(new Map(all.map((r) => [r.id, r])));
  const seeds = manifest.seeds;
  const uniform = manifest.levels.join('+');
  const branches = all.filter((r): r is BranchResult => r.method !== 'phase1' && 'metric' in r);
  if (branches.length === 0) throw new RlpkdError('internal: the tables need branch results');
  const metric = metricColumns(branches);
  const branch = (seed: number, method: string) => res.get<BranchResult>(jobId(seed, method));
  const nas = (seed: number, m: TableNasMethod) => res.get<NasJobResult>(jobId(seed, `nas-${m}`));

  /** A numeric cell over seeds: `method` per seed gives the job whose value `f` reads. */
  const over = (
    methodOf: (seed: number) => string,
    f: (r: BranchResult, seed: number) => number,
    extraJobs: (seed: number) => string[] = () => [],
  ): TableCell =>
    cell(
      seeds.map((s) => f(branch(s, methodOf(s)), s)),
      seeds.flatMap((s) => [jobId(s, methodOf(s)), ...extraJobs(s)]),
    );
  const metricCells = (methodOf: (s: number) => string, extra?: (s: number) => string[]) =>
    Object.fromEntries(metric.keys.map((k) => [k, over(methodOf, (r) => metric.read(r, k), extra)]));
  const speedup = (methodOf: (s: number) => string, extra?: (s: number) => string[]) =>
    over(
      methodOf,
      (r, s) => branch(s, uniform).updateSeconds / r.updateSeconds,
      (s) => [jobId(s, uniform), ...(extra ? extra(s) : [])],
    );
  const costCell = (methodOf: (s: number) => string, extra?: (s: number) => string[]) =>
    over(methodOf, (r) => r.meanCost, extra);
  const nasChoice = (m: TableNasMethod) => (s: number) => nas(s, m).chosenMethod;
  const nasJob = (m: TableNasMethod) => (s: number) => [jobId(s, `nas-${m}`)];
  const choices = (m: TableNasMethod) => seeds.map((s) => `${nas(s, m).chosenMethod} (seed ${s})`).join(', ');

  // Table 1.
  const fixed = [...new Set(branches.map((r) => r.method))].filter(
    (x) => x !== uniform && x !== 'rl' && x !== 'random' && !x.includes('@'),
  );
  fixed.sort((a, b) => a.split('+').length - b.split('+').length);
  const t1Row = (
    label: string,
    method: string,
    selection: string,
    methodOf: (s: number) => string,
    extra?: (s: number) => string[],
  ): TableRow => ({
    label,
    method,
    cells: {
      selection,
      ...metricCells(methodOf, extra),
      cost: costCell(methodOf, extra),
      speedup: speedup(methodOf, extra),
    },
  });
  const constant = (m: string) => () => m;
  const t1: AblationTable = {
    id: 1,
    title: 'Table 1: methods vs task metric',
    columns: [
      { key: 'selection', label: 'selection', kind: 'text' },
      ...metric.keys.map((k) => ({ key: k, label: k, kind: 'number' as const })),
      { key: 'cost', label: 'cost share', kind: 'number' },
      { key: 'speedup', label: 'speedup', kind: 'number' },
    ],
    rows: [
      t1Row('Uniform', uniform, uniform, constant(uniform)),
      ...fixed.map((f) => t1Row(f, f, f, constant(f))),
      t1Row('Random', 'random', 'random per image at the RL cost', constant('random')),
      ...TABLE_NAS_METHODS.map((m) =>
        t1Row(NAS_TABLE_NAMES[m], `nas-${m}`, choices(m), nasChoice(m), nasJob(m)),
      ),
      t1Row('RL', 'rl', 'policy per image', constant('rl')),
    ],
    notes: [
      ...(metric.unmeasured.length > 0
        ? [
            `${metric.unmeasured.join(', ')}: not measured (the evaluation has no value for them, e.g. no COCO-large object in the held-out images), so left out.`,
          ]
        : []),
      `${metric.keys.join(', ')}: ${metric.keys.length > 1 ? 'task metrics' : 'measured'} on the held-out split with the distilled student (${metric.higherIsBetter ? 'higher' : 'lower'} is better); cost share: mean share of the all-level distillation work per image in the kept student updates; speedup: wall time of uniform's kept student updates over the method's (same updates, same images).`,
      ...TABLE_NAS_METHODS.map(
        (m) =>
          `${NAS_TABLE_NAMES[m]} chose ${choices(m)}: the search space is exactly the fixed subsets, so its row is that subset's job trained from the same phase-1 checkpoint (reused, not trained again).`,
      ),
    ],
  };

  // Table 2.
  const primary = metric.keys.includes(metric.name) ? metric.name : metric.keys[0];
  const metricAndCost: TableColumn[] = [
    { key: 'metric', label: primary, kind: 'number' },
    { key: 'cost', label: 'cost share', kind: 'number' },
  ];
  const t2: AblationTable = {
    id: 2,
    title: 'Table 2: search methods',
    columns: [
      { key: 'type', label: 'search type', kind: 'text' },
      ...metricAndCost,
      { key: 'search', label: 'search cost (s)', kind: 'number' },
      { key: 'adaptive', label: 'sample-adaptive', kind: 'text' },
    ],
    rows: [
      {
        label: 'Uniform',
        method: uniform,
        cells: {
          type: 'none',
          metric: over(constant(uniform), (r) => metric.read(r, primary)),
          cost: costCell(constant(uniform)),
          search: '—',
          adaptive: 'no',
        },
      },
      ...TABLE_NAS_METHODS.map((m): TableRow => ({
        label: NAS_TABLE_NAMES[m],
        method: `nas-${m}`,
        cells: {
          type: NAS_SEARCH_TYPE[m],
          metric: over(nasChoice(m), (r) => metric.read(r, primary), nasJob(m)),
          cost: costCell(nasChoice(m), nasJob(m)),
          search: cell(
            seeds.map((s) => nas(s, m).searchSeconds),
            seeds.map((s) => jobId(s, `nas-${m}`)),
          ),
          adaptive: 'no',
        },
      })),
      {
        label: 'RL',
        method: 'rl',
        cells: {
          type: 'RL',
          metric: over(constant('rl'), (r) => metric.read(r, primary)),
          cost: costCell(constant('rl')),
          search: over(constant('rl'), (r) => r.branchSeconds - r.updateSeconds),
          adaptive: 'yes',
        },
      },
    ],
    notes: [
      `search cost: NAS = device-seconds of the search's engine work on '${nas(seeds[0], 'darts').ep}' (nas.json search.seconds; proxy trainings of ${nas(seeds[0], 'darts').proxySteps} steps from the phase-1 checkpoint); RL = wall seconds of phases 2–4 minus its kept student updates (policy learning: rollouts, rolled-back trial updates, PPO and MAML updates).`,
    ],
  };

  // Tables 4 and 5.
  const sources = new Map<TableVariant, TableVariantSource>(
    tableVariantSources(manifest.config, manifest.levels).map((v) => [v.variant, v]),
  );
  const variant = (v: TableVariant) => sources.get(v)!.method;
  const sameNotes = (base: 'rl' | 'uniform') =>
    [...sources.values()]
      .filter((v) => v.sameAsBase && VARIANT_BASE[v.variant] === base)
      .map(
        (v) =>
          `${VARIANT_CHANGES[v.variant]} is already the config's setting: that row reads the ${v.method} job.`,
      );
  const plainRow = (label: string, method: string, changes: string): TableRow => ({
    label,
    method,
    cells: {
      changes,
      metric: over(constant(method), (r) => metric.read(r, primary)),
      cost: costCell(constant(method)),
    },
  });
  const t4: AblationTable = {
    id: 4,
    title: 'Table 4: component ablation',
    columns: [{ key: 'changes', label: 'changed', kind: 'text' }, ...metricAndCost],
    rows: [
      plainRow('Fixed uniform', uniform, 'distill.selection = every level'),
      plainRow('RL w/o sequential', variant('independent'), VARIANT_CHANGES.independent),
      plainRow('RL w/o efficiency (λ = 0)', variant('lambda0'), VARIANT_CHANGES.lambda0),
      plainRow('RL w/o GradNorm', variant('no-gradnorm'), VARIANT_CHANGES['no-gradnorm']),
      plainRow('RL (full)', 'rl', 'none'),
    ],
    notes: sameNotes('rl'),
  };
  const gradRow = (label: string, method: string): TableRow => {
    const rs = seeds.map((s) => branch(s, method));
    const clips = rs.map((r) => r.gradClip ?? null);
    const shares = rs.map((r) => r.clippedShare ?? null);
    const jobs = seeds.map((s) => jobId(s, method));
    const numbers = (xs: (number | null | undefined)[]): xs is number[] =>
      xs.every((x) => typeof x === 'number');
    const stable = rs.map((r) => r.stability?.mean);
    return {
      label,
      method,
      cells: {
        clip: numbers(clips) ? cell(clips, jobs) : clips.every((c) => c === null) ? 'off' : 'mixed',
        clipped: numbers(shares) ? cell(shares, jobs) : '—',
        gradnorm: rs.every((r) => r.gradnorm) ? 'on' : rs.some((r) => r.gradnorm) ? 'mixed' : 'off',
        metric: over(constant(method), (r) => metric.read(r, primary)),
        stability: stable.every((x): x is number => typeof x === 'number')
          ? cell(
              stable,
              seeds.map((s) => jobId(s, method)),
            )
          : 'not measured',
      },
    };
  };
  const t5: AblationTable = {
    id: 5,
    title: 'Table 5: gradient optimization',
    columns: [
      { key: 'clip', label: 'clip norm', kind: 'number' },
      { key: 'clipped', label: 'steps clipped', kind: 'number' },
      { key: 'gradnorm', label: 'GradNorm', kind: 'text' },
      { key: 'metric', label: primary, kind: 'number' },
      { key: 'stability', label: 'loss-ratio spread', kind: 'number' },
    ],
    rows: [
      gradRow('Baseline (uniform)', variant('baseline')),
      gradRow('+ gradient clipping', variant('clip')),
      gradRow('+ GradNorm', variant('clip+gradnorm')),
      gradRow('RL + GradNorm', 'rl'),
    ],
    notes: [
      `clip norm c: ${manifest.config.distill.grad_clip !== null ? 'distill.grad_clip of the config' : "per seed, the median of the student's unclipped gradient norm over the baseline's phase-3 steps (the same updates)"}; steps clipped: share of phase 3's steps whose unclipped norm exceeded c; RL + GradNorm is the full RL run as configured.`,
      "loss-ratio spread (lower = steadier): per level l, r_l(t) = L_l(t)/L_l(t0) over phase 3's kept updates, L_l the level's mean distance over the batch images that selected it, t0 the first such step; the sample std of r_l(t) over those steps, averaged over the levels with two or more steps; then mean ± std over seeds.",
      ...sameNotes('uniform'),
    ],
  };
  return {
    metric: { name: metric.name, higherIsBetter: metric.higherIsBetter, columns: metric.keys },
    seeds: [...seeds],
    tables: [t1, t2, t4, t5],
  };
}
