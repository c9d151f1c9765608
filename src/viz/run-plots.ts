/**
 * Every plot of a run directory, from what the run already holds: metrics.jsonl (loss, reward, PPO
 * curves), the GradNorm weight history of its latest checkpoint (or the logged weights), and the held-out
 * selections of summary.json (policy heatmap). Plots whose data the run lacks are skipped with a reason;
 * an ablation directory's pareto.json/.csv gives the quality–cost plot.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputFileError, RlpkdError } from '../errors';
import { readMetrics, type MetricsRecord } from '../logging/metrics';
import { openRunDir, type RunDir } from '../logging/run-dir';
import type { GradNormState } from '../distill/gradnorm';
import type { TrainSummary } from '../distill/evaluation';
import { CHECKPOINT_FILES, LATEST_POINTER } from '../distill/run-checkpoint';
import {
  gradnormWeightsSpec,
  weightsFromHistory,
  weightsFromMetrics,
  type WeightCurves,
} from './gradnorm-weights';
import { paretoSpec } from './pareto';
import { readParetoInput } from './pareto-input';
import {
  policyHeatmapData,
  policyHeatmapSpec,
  type HeatmapSort,
  type HeatmapSortName,
} from './policy-heatmap';
import { writePlot, type PlotSpec, type RenderOptions, type WrittenPlot } from './render';
import { curvesSpec, lossCurvePoints, rlCurvePoints } from './training-curves';

/** A plot that was not drawn, and why. */
export interface SkippedPlot {
  name: string;
  reason: string;
}

/** What a visualize call wrote. */
export interface VisualizeResult {
  outDir: string;
  written: WrittenPlot[];
  skipped: SkippedPlot[];
}

/** Options of visualizeRun. */
export interface VisualizeRunOptions extends RenderOptions {
  /** Output folder (default `<run>/plots`). */
  outDir?: string;
  /** Heatmap image order (default: object size when the data has boxes, else the cost chosen). */
  sort?: HeatmapSort | HeatmapSortName;
}

/** The summary of a finished run, or undefined (a run still going or stopped early has none). */
function readSummary(run: RunDir): TrainSummary | undefined {
  const file = run.file('summary.json');
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as TrainSummary;
  } catch (err) {
    throw new InputFileError(`'${file}' is unreadable: ${(err as Error).message}`, {
      hint: 'rerun `rlpkd eval --run RUN` to recompute the held-out summary',
    });
  }
}

/** The GradNorm state of the run's latest checkpoint, or undefined when it has none. */
function readGradNorm(run: RunDir): GradNormState | undefined {
  const pointer = path.join(run.checkpointsDir, LATEST_POINTER);
  if (!fs.existsSync(pointer)) return undefined;
  const file = path.join(
    run.checkpointsDir,
    fs.readFileSync(pointer, 'utf8').trim(),
    CHECKPOINT_FILES.gradnorm,
  );
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as GradNormState;
  } catch (err) {
    throw new InputFileError(`'${file}' is unreadable: ${(err as Error).message}`);
  }
}

/** GradNorm curves: the checkpoint's full history when there is one, else the logged weights. */
function gradnormCurves(run: RunDir, records: readonly MetricsRecord[]): WeightCurves | undefined {
  const state = readGradNorm(run);
  if (state && state.history.length > 1) return weightsFromHistory(state.levels, state.history);
  const logged = weightsFromMetrics(records);
  return logged.points.length > 0 ? logged : undefined;
}

/** The plot specs of a run (name → spec), and the plots it has no data for. */
export function runPlotSpecs(
  runDir: string,
  options: Pick<VisualizeRunOptions, 'sort'> = {},
): { specs: Map<string, PlotSpec>; skipped: SkippedPlot[] } {
  const run = openRunDir(runDir);
  const specs = new Map<string, PlotSpec>();
  const skipped: SkippedPlot[] = [];
  const records = fs.existsSync(run.metricsFile) ? readMetrics(run.metricsFile) : [];
  const summary = readSummary(run);
  if (summary) {
    const data = policyHeatmapData(
      {
        levelNames: summary.levelNames,
        selections: summary.selection.selections,
        costs: summary.levelCosts,
        objectSizes: summary.heldOutObjectSizes,
      },
      options.sort,
    );
    const who = summary.selection.source === 'policy' ? 'deterministic policy' : 'fixed selection';
    specs.set(
      'policy-heatmap',
      policyHeatmapSpec(data, {
        title: `Levels distilled per held-out image (${who}, ${data.order.length} images)`,
      }),
    );
  } else {
    skipped.push({ name: 'policy-heatmap', reason: 'no summary.json (the run has not finished)' });
  }
  const curves = gradnormCurves(run, records);
  if (curves) specs.set('gradnorm-weights', gradnormWeightsSpec(curves));
  else skipped.push({ name: 'gradnorm-weights', reason: 'the run used no GradNorm' });
  const losses = lossCurvePoints(records);
  if (losses.length > 0)
    specs.set('loss-curves', curvesSpec(losses, { title: 'Distillation loss', sharedX: true }));
  else skipped.push({ name: 'loss-curves', reason: 'metrics.jsonl has no loss values' });
  const rl = rlCurvePoints(records);
  if (rl.length > 0)
    specs.set(
      'reward-curves',
      curvesSpec(rl, { title: 'Level-selection policy: reward and PPO statistics', columns: 3 }),
    );
  else
    skipped.push({
      name: 'reward-curves',
      reason: 'metrics.jsonl has no reward values (no policy phase ran)',
    });
  return { specs, skipped };
}

async function writeAll(
  outDir: string,
  specs: Map<string, PlotSpec>,
  options: RenderOptions,
): Promise<WrittenPlot[]> {
  try {
    fs.mkdirSync(outDir, { recursive: true });
  } catch (err) {
    throw new RlpkdError(`cannot create the plot folder '${outDir}': ${(err as Error).message}`, {
      hint: 'pass a writable folder with --out',
      cause: err,
    });
  }
  const written: WrittenPlot[] = [];
  for (const [name, spec] of specs) written.push(await writePlot(outDir, name, spec, options));
  return written;
}

/** Writes every plot of a run as SVG and PNG into `<run>/plots` (or options.outDir). */
export async function visualizeRun(
  runDir: string,
  options: VisualizeRunOptions = {},
): Promise<VisualizeResult> {
  const { specs, skipped } = runPlotSpecs(runDir, options);
  const outDir = path.resolve(options.outDir ?? path.join(runDir, 'plots'));
  return { outDir, written: await writeAll(outDir, specs, options), skipped };
}

/** Writes the quality–cost plot of an ablation directory (pareto.json or pareto.csv) as `pareto.svg/.png`. */
export async function visualizeAblation(
  dir: string,
  options: RenderOptions & { outDir?: string } = {},
): Promise<VisualizeResult> {
  const input = readParetoInput(dir);
  const outDir = path.resolve(options.outDir ?? path.join(dir, 'plots'));
  const specs = new Map([['pareto', paretoSpec(input.points, input.options)]]);
  return { outDir, written: await writeAll(outDir, specs, options), skipped: [] };
}
