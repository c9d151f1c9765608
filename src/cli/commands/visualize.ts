/** `rlpkd visualize --run RUN | --ablation DIR`: SVG and PNG plots, a thin layer over src/viz. */
import type { Command } from 'commander';
import { RlpkdError } from '../../errors';
import {
  HEATMAP_SORTS,
  visualizeAblation,
  visualizeRun,
  type HeatmapSortName,
  type VisualizeResult,
} from '../../viz';
import { choice, positiveNumber } from '../option-parsers';

interface VisualizeOptions {
  run?: string;
  ablation?: string;
  out?: string;
  sort?: HeatmapSortName;
  scale: number;
}

/** Registers `rlpkd visualize`. */
export function registerVisualize(program: Command): void {
  program
    .command('visualize')
    .description(
      'plots of a run (policy heatmap, GradNorm weights, loss and reward curves) or an ablation (Pareto)',
    )
    .option('--run <dir>', 'run directory written by `rlpkd train`')
    .option('--ablation <dir>', 'ablation directory holding pareto.json or pareto.csv')
    .option('--out <dir>', 'output folder (default: <run or ablation>/plots)')
    .option(
      '--sort <key>',
      'heatmap image order (default: object size when the data has boxes, else the cost chosen)',
      choice(...(Object.keys(HEATMAP_SORTS) as HeatmapSortName[])),
    )
    .option('--scale <x>', 'PNG pixels per SVG unit', positiveNumber, 2)
    .action(async (opts: VisualizeOptions) => {
      if ((opts.run === undefined) === (opts.ablation === undefined)) {
        throw new RlpkdError('visualize needs exactly one of --run and --ablation', {
          hint: 'rlpkd visualize --run runs/demo-… or rlpkd visualize --ablation DIR',
          exitCode: 2,
        });
      }
      const common = { scale: opts.scale, ...(opts.out ? { outDir: opts.out } : {}) };
      const result = opts.run
        ? await visualizeRun(opts.run, { ...common, ...(opts.sort ? { sort: opts.sort } : {}) })
        : await visualizeAblation(opts.ablation!, common);
      process.stdout.write(formatResult(result));
    });
}

function formatResult(r: VisualizeResult): string {
  const lines = [`plots in ${r.outDir}`];
  for (const w of r.written) lines.push(`  ${w.name}.svg  ${w.name}.png (${w.width}×${w.height})`);
  for (const s of r.skipped) lines.push(`  skipped ${s.name}: ${s.reason}`);
  return `${lines.join('\n')}\n`;
}
