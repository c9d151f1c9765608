/**
 * The Pareto plot's input file in an ablation directory: `pareto.json` or `pareto.csv`.
 *
 * pareto.json: `{ "metric": "AP", "cost": "cost share", "higherIsBetter": true,
 *                 "points": [{ "method": "P3+P4", "cost": 0.4, "metric": 31.2, "std": 0.3, "fixed": true }, …] }`
 *   (every key but `points` optional; a bare array of points is accepted too).
 * pareto.csv: a header naming the columns `method,cost,metric` and optionally `std` and `fixed`
 *   (true/false/1/0/yes/no) and `metric_name`, any order, one row per method; empty std = none. The
 *   metric is taken as higher-is-better (use the JSON form for a loss).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputFileError } from '../errors';
import { validateParetoPoints, type ParetoPlotOptions, type ParetoPoint } from './pareto';

/** File names read, in order of preference. */
export const PARETO_FILES = ['pareto.json', 'pareto.csv'] as const;

/** Points and labels read from an ablation directory. */
export interface ParetoInput {
  file: string;
  points: ParetoPoint[];
  options: ParetoPlotOptions;
}

/** Reads `<dir>/pareto.json` or `<dir>/pareto.csv`. */
export function readParetoInput(dir: string): ParetoInput {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new InputFileError(`ablation directory '${dir}' does not exist`, {
      hint: 'pass the folder rlpkd ablate wrote',
    });
  }
  const found = PARETO_FILES.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (!found) {
    throw new InputFileError(`'${dir}' holds neither ${PARETO_FILES.join(' nor ')}`, {
      hint: 'write pareto.json ({points: [{method, cost, metric, std?, fixed?}]}) or pareto.csv (method,cost,metric,std,fixed)',
    });
  }
  const text = fs.readFileSync(found, 'utf8');
  const input = found.endsWith('.json') ? parseParetoJson(text, found) : parseParetoCsv(text, found);
  validateParetoPoints(input.points, found);
  return { file: found, ...input };
}

/** Parses the JSON form (see module doc). */
export function parseParetoJson(text: string, source: string): Omit<ParetoInput, 'file'> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InputFileError(`${source} is not JSON: ${(err as Error).message}`);
  }
  const obj = (Array.isArray(doc) ? { points: doc } : doc) as Record<string, unknown> | null;
  if (!obj || typeof obj !== 'object' || !Array.isArray(obj.points)) {
    throw new InputFileError(`${source} has no "points" list`, {
      hint: 'write {"points": [{"method": "...", "cost": 0.5, "metric": 30.1}]}',
    });
  }
  const points = (obj.points as Record<string, unknown>[]).map((p) => ({
    method: p.method as string,
    cost: p.cost as number,
    metric: p.metric as number,
    ...(p.std === undefined || p.std === null ? {} : { std: p.std as number }),
    ...(p.fixed === undefined ? {} : { fixed: p.fixed === true }),
  }));
  const options: ParetoPlotOptions = {};
  if (typeof obj.metric === 'string') options.metricName = obj.metric;
  if (typeof obj.cost === 'string') options.costName = obj.cost;
  if (typeof obj.higherIsBetter === 'boolean') options.higherIsBetter = obj.higherIsBetter;
  if (typeof obj.title === 'string') options.title = obj.title;
  return { points, options };
}

const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no', '']);

/** Parses the CSV form (see module doc); fields are plain (no quoting: method names have no commas). */
export function parseParetoCsv(text: string, source: string): Omit<ParetoInput, 'file'> {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new InputFileError(`${source} is empty`);
  const header = lines[0].split(',').map((h) => h.trim());
  const col = (name: string) => header.indexOf(name);
  for (const need of ['method', 'cost', 'metric']) {
    if (col(need) < 0) {
      throw new InputFileError(
        `${source}: the header has no '${need}' column (it has ${header.join(', ')})`,
        {
          hint: 'the first line must name the columns: method,cost,metric[,std][,fixed]',
        },
      );
    }
  }
  let metricName: string | undefined;
  const points = lines.slice(1).map((line, i) => {
    const f = line.split(',').map((s) => s.trim());
    if (f.length !== header.length) {
      throw new InputFileError(`${source} line ${i + 2} has ${f.length} fields, the header ${header.length}`);
    }
    const num = (name: string) => (f[col(name)] === '' ? Number.NaN : Number(f[col(name)]));
    const p: ParetoPoint = { method: f[col('method')], cost: num('cost'), metric: num('metric') };
    if (col('std') >= 0 && f[col('std')] !== '') p.std = num('std');
    if (col('fixed') >= 0) {
      const v = f[col('fixed')].toLowerCase();
      if (!TRUE.has(v) && !FALSE.has(v))
        throw new InputFileError(
          `${source} line ${i + 2}: fixed must be true or false, got '${f[col('fixed')]}'`,
        );
      p.fixed = TRUE.has(v);
    }
    if (col('metric_name') >= 0 && f[col('metric_name')]) metricName = f[col('metric_name')];
    return p;
  });
  return { points, options: metricName ? { metricName } : {} };
}
