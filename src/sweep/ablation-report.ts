/**
 * The comparison assembled from the branch results: per method, over seeds, the metric's mean ± sample
 * standard deviation (n − 1; null with one seed), the mean used distillation cost (cost-model share of the
 * levels distilled per image in the kept student updates), the kept updates and their wall seconds, the
 * rolled-back trial updates, and the total wall seconds (phase 1 and policy learning included). The fixed
 * subsets' Pareto frontier (non-dominated subsets, linear in cost: viz/pareto.ts) gives where the RL policy
 * lies relative to them, and the footer says which method wins: the best metric at no more than the RL
 * policy's cost. For detection, COCO's AP by object size (APs, APm, APl) sits beside AP where every branch
 * measured it: whether a selection helps small objects is what the per-image choice of levels is about.
 */
import { RlpkdError } from '../errors';
import { frontierAt, paretoFrontier, type ParetoPoint } from '../viz/pareto';
import type { AblationManifest, BranchResult } from './ablation-store';

/** One method's row. */
export interface AblationRow {
  method: string;
  /** A fixed subset (the frontier is drawn through these). */
  fixed: boolean;
  seeds: number;
  meanCost: number;
  metric: { mean: number; std: number | null };
  /** The probe's metric over the seeds that measured one (null when none did). */
  probe: { name: string; mean: number; std: number | null } | null;
  /** Detection AP by object size (the report's `bySize` keys, in that order); empty otherwise. */
  bySize: { name: string; mean: number; std: number | null }[];
  /** Kept student updates after phase 1 (per seed; equal for every method) and their wall seconds. */
  updates: number;
  updateSeconds: number;
  /** Rolled-back trial updates (count in wall time, not as updates). */
  trials: number;
  /** Total wall seconds (shared phase 1 + the branch). */
  seconds: number;
}

/** The whole comparison (ablation.json). */
export interface AblationReport {
  metric: { name: string; higherIsBetter: boolean; source: 'task' | 'loss' };
  seeds: number[];
  levels: string[];
  costs: number[];
  rows: AblationRow[];
  /** The COCO size metrics every branch measured (each row's `bySize`), e.g. ['APs', 'APm']. */
  bySize: string[];
  /** Every method made the same number of kept student updates on the same images, seed by seed. */
  sameUpdates: boolean;
  sameImages: boolean;
  rl: { meanCost: number; metric: number; frontier: number | null; aboveFrontier: number | null };
  winner: { method: string; metric: number; meanCost: number };
  footer: string;
}

/** COCO's AP by object area (small < 32², medium < 96², large), as the detection evaluation names them. */
const SIZE_METRICS = ['APs', 'APm', 'APl'] as const;

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Mean and sample standard deviation of values over seeds. */
function spread(values: readonly number[]): { mean: number; std: number | null } {
  return { mean: mean(values), std: sampleStd(values) };
}

/** Whether every result's evaluation has a number for task value `key` (null: nothing to measure). */
export function measuredByAll(results: readonly BranchResult[], key: string): boolean {
  return results.every((r) => typeof r.taskValues?.[key] === 'number');
}

/** Sample standard deviation (n − 1), null for fewer than two values. */
export function sampleStd(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Assembles the report from every branch result (see module doc). */
export function assembleAblation(
  manifest: AblationManifest,
  results: readonly BranchResult[],
): AblationReport {
  if (results.length === 0) throw new RlpkdError('internal: an ablation report needs results');
  const first = results[0].metric;
  for (const r of results) {
    if (r.metric.name !== first.name || r.metric.higherIsBetter !== first.higherIsBetter) {
      throw new RlpkdError(
        `ablation results measure different metrics ('${first.name}' and '${r.metric.name}' in ${r.id})`,
      );
    }
  }
  const bySize = SIZE_METRICS.filter(
    (k) => results.every((r) => r.metric.source === 'task') && measuredByAll(results, k),
  );
  const methods = [...new Set(results.map((r) => r.method))];
  const rows: AblationRow[] = methods.map((method) => {
    const rs = results.filter((r) => r.method === method);
    const values = rs.map((r) => r.metric.value);
    return {
      method,
      fixed: method !== 'rl' && method !== 'random',
      seeds: rs.length,
      meanCost: mean(rs.map((r) => r.meanCost)),
      metric: spread(values),
      probe: probeSummary(rs),
      bySize: bySize.map((name) => ({ name, ...spread(rs.map((r) => r.taskValues![name] as number)) })),
      updates: mean(rs.map((r) => r.updates)),
      updateSeconds: mean(rs.map((r) => r.updateSeconds)),
      trials: mean(rs.map((r) => r.trials)),
      seconds: mean(rs.map((r) => r.seconds)),
    };
  });
  const bySeed = (f: (r: BranchResult) => string | number) =>
    manifest.seeds.every((s) => new Set(results.filter((r) => r.seed === s).map(f)).size <= 1);
  const sign = first.higherIsBetter ? 1 : -1;
  const rl = rows.find((r) => r.method === 'rl');
  if (!rl) throw new RlpkdError('internal: the ablation has no rl result');
  const points: ParetoPoint[] = rows.map((r) => ({
    method: r.method,
    cost: r.meanCost,
    metric: r.metric.mean,
    fixed: r.fixed,
  }));
  const frontier = frontierAt(paretoFrontier(points, { higherIsBetter: first.higherIsBetter }), rl.meanCost);
  const affordable = rows.filter((r) => r.meanCost <= rl.meanCost * (1 + 1e-9) + 1e-12);
  const best = affordable.reduce((a, b) => (sign * (b.metric.mean - a.metric.mean) > 0 ? b : a), rl);
  const report: Omit<AblationReport, 'footer'> = {
    metric: { name: first.name, higherIsBetter: first.higherIsBetter, source: first.source },
    seeds: [...manifest.seeds],
    levels: [...manifest.levels],
    costs: [...manifest.costs],
    rows,
    bySize,
    sameUpdates: bySeed((r) => r.updates),
    sameImages: bySeed((r) => r.digest),
    rl: {
      meanCost: rl.meanCost,
      metric: rl.metric.mean,
      frontier,
      aboveFrontier: frontier === null ? null : sign * (rl.metric.mean - frontier),
    },
    winner: { method: best.method, metric: best.metric.mean, meanCost: best.meanCost },
  };
  return { ...report, footer: footerText(report) };
}

/** Mean ± std of the probe over the results that have one (null when none has). */
function probeSummary(rs: readonly BranchResult[]): AblationRow['probe'] {
  const probes = rs.flatMap((r) => (r.probe ? [r.probe] : []));
  if (probes.length === 0) return null;
  return { name: probes[0].name, ...spread(probes.map((p) => p.value)) };
}

function num(x: number): string {
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toPrecision(4);
}

function spreadCell(m: { mean: number; std: number | null }): string {
  return m.std === null ? num(m.mean) : `${num(m.mean)} ± ${num(m.std)}`;
}

function metricCell(r: AblationRow): string {
  return spreadCell(r.metric);
}

function footerText(r: Omit<AblationReport, 'footer'>): string {
  const better = r.metric.higherIsBetter ? 'higher' : 'lower';
  const lines = [
    `Metric: ${r.metric.name} (${better} is better), mean ± std over ${r.seeds.length} seed(s); cost = mean ` +
      'share of the all-level distillation work per image in the kept student updates.',
    `Every method continues the same phase-1 checkpoint per seed; kept student updates after phase 1: ` +
      `${r.sameUpdates ? 'equal' : 'NOT equal'} for every method, on ${r.sameImages ? 'the same' : 'DIFFERENT'} ` +
      'images. Phase-2 trial updates are rolled back: they count in the wall time, not as updates.',
  ];
  const rlRow = r.rows.find((x) => x.method === 'rl')!;
  const winner =
    r.winner.method === 'rl'
      ? `the RL policy (${metricCell(rlRow)} at cost ${r.rl.meanCost.toFixed(3)})`
      : `${r.winner.method} (${num(r.winner.metric)} at cost ${r.winner.meanCost.toFixed(3)}), not the RL policy ` +
        `(${metricCell(rlRow)} at cost ${r.rl.meanCost.toFixed(3)})`;
  lines.push(`Winner at <= the RL policy's cost: ${winner}.`);
  if (r.rl.frontier === null) {
    lines.push('No fixed subset is as cheap as the RL policy: the frontier does not reach its cost.');
  } else {
    const d = r.rl.aboveFrontier!;
    lines.push(
      `The RL policy (${metricCell(rlRow)}) is ${num(Math.abs(d))} ${d >= 0 ? 'better' : 'worse'} than the ` +
        `fixed subsets' frontier at its cost (frontier ${num(r.rl.frontier)}, interpolated between means).`,
    );
  }
  return lines.join('\n');
}

const COLUMNS = [
  'method',
  'cost',
  'metric',
  'std',
  'probe',
  'probe_std',
  'updates',
  'update_s',
  'trials',
  'total_s',
] as const;

function probeCell(row: AblationRow): string {
  return row.probe ? spreadCell(row.probe) : '–';
}

/** The table as Markdown, footer included (a probe column when any branch measured one). */
export function ablationMarkdown(r: AblationReport): string {
  const probe = r.rows.find((row) => row.probe)?.probe;
  const probeHead = probe ? ` probe ${probe.name} |` : '';
  const sizeHead = r.bySize.map((k) => ` ${k} |`).join('');
  const head = `| method | cost | ${r.metric.name} |${sizeHead}${probeHead} updates | update s | trials | total s |`;
  const rule = `|---|---:|---:|${'---:|'.repeat(r.bySize.length)}${probe ? '---:|' : ''}---:|---:|---:|---:|`;
  const lines = [head, rule];
  for (const row of r.rows) {
    const sizes = row.bySize.map((m) => ` ${spreadCell(m)} |`).join('');
    lines.push(
      `| ${row.method} | ${row.meanCost.toFixed(3)} | ${metricCell(row)} |${sizes}${probe ? ` ${probeCell(row)} |` : ''} ` +
        `${row.updates} | ${row.updateSeconds.toFixed(1)} | ${row.trials} | ${row.seconds.toFixed(1)} |`,
    );
  }
  const probeNote = probe
    ? "\n\nProbe: a head trained for a few steps on the frozen student (eval.probe), on the branch's student only."
    : '';
  const sizeNote =
    r.bySize.length > 0
      ? `\n\n${r.bySize.join(', ')}: COCO AP over objects of area < 32², 32²–96², > 96² pixels of the input.`
      : '';
  return `${lines.join('\n')}\n\n${r.footer}${probeNote}${sizeNote}\n`;
}

/**
 * The table as CSV (one row per method; std empty with one seed, probe empty when not measured; the size
 * metrics, when measured, as `<name>,<name>_std` pairs after total_s).
 */
export function ablationCsv(r: AblationReport): string {
  const lines: string[] = [[...COLUMNS, ...r.bySize.flatMap((k) => [k, `${k}_std`])].join(',')];
  for (const row of r.rows) {
    lines.push(
      [
        row.method,
        row.meanCost,
        row.metric.mean,
        row.metric.std ?? '',
        row.probe?.mean ?? '',
        row.probe?.std ?? '',
        row.updates,
        row.updateSeconds,
        row.trials,
        row.seconds,
        ...row.bySize.flatMap((m) => [m.mean, m.std ?? '']),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** pareto.json for `rlpkd visualize --ablation` (viz/pareto-input.ts). */
export function ablationPareto(r: AblationReport): Record<string, unknown> {
  return {
    metric: r.metric.name,
    cost: 'distillation cost share',
    higherIsBetter: r.metric.higherIsBetter,
    points: r.rows.map((row) => ({
      method: row.method,
      cost: row.meanCost,
      metric: row.metric.mean,
      ...(row.metric.std !== null ? { std: row.metric.std } : {}),
      fixed: row.fixed,
    })),
  };
}
