/**
 * A NAS run's result as nas.json and as the printed table: the chosen selection (and the
 * `distill.selection` line to paste into a config), its objective parts, the regret against the
 * exhaustive oracle when one was run or given, the search curve and the measured search cost.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlpkdError } from '../errors';
import { stableJson } from '../util/content-hash';
import type { CurvePoint, NasMethod } from './methods';
import type { SelectionEvaluation } from './objective';

/** nas.json's format version. */
export const NAS_REPORT_VERSION = 1;

/** What makes two runs' objectives comparable (an oracle from a file must match it). */
export interface NasObjectiveKey {
  config: string;
  seed: number | string;
  yardstick: string;
  cost: 'distill' | 'inference';
  proxySteps: number;
  lambda: number;
  /** 'initial student' or the run checkpoint the search started from. */
  start: string;
}

/** One evaluated selection as reported. */
export type ReportedEvaluation = Omit<SelectionEvaluation, 'mask'> & { label: string };

/** The exhaustive oracle: every selection's objective. */
export interface NasOracle {
  best: string[];
  bestObjective: number;
  /** Label ('P4+P5') → objective. */
  objectives: Record<string, number>;
}

/** nas.json. */
export interface NasReport {
  version: number;
  method: NasMethod;
  methodName: string;
  key: NasObjectiveKey;
  levels: string[];
  /** Per-level cost of selecting that level alone (the cost column's scale). */
  levelCosts: number[];
  /** L_val of the starting student. */
  baseLoss: number;
  chosen: ReportedEvaluation;
  /** J(chosen) − J(oracle's best), from the oracle's table (absent without an oracle). */
  regret?: number;
  oracle?: NasOracle;
  /** Where the oracle came from: 'this run' or a nas.json path. */
  oracleSource?: string;
  curveUnit: 'evaluation' | 'step';
  curve: CurvePoint[];
  /** Every proxy training of this run, in order (the oracle's included when it ran here). */
  evaluated: ReportedEvaluation[];
  search: {
    /** Device-seconds of the search: wall seconds of its engine work on one device (`ep`). */
    seconds: number;
    scoringSeconds: number;
    /** Teacher features and the starting validation loss (once per run, shared by every method). */
    setupSeconds: number;
    evaluations: number;
    cacheHits: number;
    ep: string;
  };
  alpha?: number[];
  /** The line to paste into a config. */
  distillSelection: string;
  settings: Record<string, number | string>;
}

/** `distill.selection: [P4, P5]`. */
export function selectionLine(levels: readonly string[]): string {
  return `distill.selection: [${levels.join(', ')}]`;
}

/** The oracle of a NAS report read from disk, checked to score selections as this run does. */
export function readOracle(file: string, key: NasObjectiveKey): NasOracle {
  let report: NasReport;
  try {
    report = JSON.parse(fs.readFileSync(file, 'utf8')) as NasReport;
  } catch (err) {
    throw new RlpkdError(`--oracle '${file}' is not a readable nas.json: ${(err as Error).message}`, {
      hint: 'pass the nas.json written by `rlpkd nas --method exhaustive`',
    });
  }
  if (!report.oracle) {
    throw new RlpkdError(`--oracle '${file}' holds no exhaustive oracle (method ${report.method})`, {
      hint: 'run `rlpkd nas --method exhaustive` with the same config and pass its nas.json',
    });
  }
  if (stableJson(report.key) !== stableJson(key)) {
    throw new RlpkdError(`--oracle '${file}' scored selections differently from this run`, {
      hint: `its settings ${stableJson(report.key)}, this run's ${stableJson(key)}: rerun the exhaustive search with the same config and options`,
    });
  }
  return report.oracle;
}

/** Writes `<dir>/nas.json` (temp file, then rename); returns its path. */
export function writeNasReport(dir: string, report: NasReport): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'nas.json');
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`);
  fs.renameSync(tmp, file);
  return file;
}

function num(x: number): string {
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toPrecision(4);
}

/** The printed summary: the chosen selection, the regret, the search cost and every evaluated selection. */
export function formatNasReport(r: NasReport, file?: string): string {
  const lines: string[] = [];
  lines.push(
    `${r.methodName}: objective = L_val/L_val(start) + ${r.key.lambda}·cost (${r.key.yardstick} yardstick, ` +
      `${r.key.cost} cost, ${r.key.proxySteps} proxy steps from the ${r.key.start}; L_val(start) ${num(r.baseLoss)})`,
  );
  const c = r.chosen;
  lines.push(
    `chosen: ${c.label}  objective ${num(c.objective)} (L_val ratio ${num(c.relativeLoss)}, cost ${c.cost.toFixed(3)})`,
  );
  if (r.regret !== undefined && r.oracle) {
    lines.push(
      `regret vs the oracle (${r.oracle.best.join('+')}, ${num(r.oracle.bestObjective)}; ${r.oracleSource}): ${num(r.regret)}`,
    );
  } else {
    lines.push('regret: no oracle (run with --with-oracle, or --oracle <nas.json of --method exhaustive>)');
  }
  const s = r.search;
  lines.push(
    `search cost: ${s.seconds.toFixed(1)} device-seconds (${s.ep}), ${s.evaluations} proxy trainings, ` +
      `${s.cacheHits} cache hits` +
      (s.scoringSeconds > 0 ? `; scoring the choice ${s.scoringSeconds.toFixed(1)} s` : '') +
      `; setup ${s.setupSeconds.toFixed(1)} s`,
  );
  if (r.evaluated.length > 0) {
    const width = Math.max(9, ...r.evaluated.map((e) => e.label.length));
    lines.push(`  ${'selection'.padEnd(width)}  objective  L_val ratio   cost  seconds`);
    const sorted = [...r.evaluated].sort((a, b) => a.objective - b.objective);
    for (const e of sorted) {
      lines.push(
        `  ${e.label.padEnd(width)}  ${num(e.objective).padStart(9)}  ${num(e.relativeLoss).padStart(11)}  ` +
          `${e.cost.toFixed(3).padStart(5)}  ${e.seconds.toFixed(1).padStart(7)}`,
      );
    }
  }
  lines.push(`paste into a config: ${r.distillSelection}`);
  if (file) lines.push(`written: ${file}`);
  return `${lines.join('\n')}\n`;
}
