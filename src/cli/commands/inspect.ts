/** `rlpkd inspect`: a thin layer over `inspectModel` that picks the input size and prints the report. */
import type { Command } from 'commander';
import { inspectModel, resolveInputSize, describeShape, type InspectReport } from '../../analysis';
import { loadModel } from '../../onnx/model-io';
import { validateModel } from '../../onnx/graph-structure';
import { printJson } from '../run-cli';
import { positiveInt } from '../option-parsers';

interface InspectOptions {
  json?: boolean;
  height?: number;
  width?: number;
  trainable?: string[];
  frozen?: string[];
}

/** `rlpkd inspect MODEL`: what a graph is made of, its pyramid levels and their cost, what cannot train. */
export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description(
      'show inputs/outputs, op histogram, parameters, pyramid levels with their cost, and unsupported ops',
    )
    .argument('<model>', 'ONNX model file')
    .option('--json', 'print one JSON object instead of tables')
    .option(
      '--height <pixels>',
      'input height to analyse at (default: the static input height of the graph)',
      positiveInt,
    )
    .option(
      '--width <pixels>',
      'input width to analyse at (default: the static input width of the graph)',
      positiveInt,
    )
    .option(
      '--trainable <pattern...>',
      'also count initializers matching these globs or /regex/ as trainable',
    )
    .option('--frozen <pattern...>', 'count initializers matching these globs or /regex/ as frozen')
    .action((file: string, opts: InspectOptions) => {
      const model = loadModel(file);
      validateModel(model, `'${file}'`);
      const size = resolveInputSize(model, { height: opts.height, width: opts.width });
      const report = inspectModel(model, size, {
        parameters: { trainable: opts.trainable, frozen: opts.frozen },
      });
      if (opts.json) printJson(report);
      else process.stdout.write(formatInspectReport(report, file));
    });
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** Left/right-aligned columns separated by two spaces. */
export function table(rows: string[][], rightAligned: ReadonlySet<number>, indent = '  '): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map(
      (r) =>
        indent +
        r
          .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
          .join('  ')
          .trimEnd(),
    )
    .join('\n');
}

/** The human-readable report. */
export function formatInspectReport(r: InspectReport, file: string): string {
  const out: string[] = [];
  const tensorRows = (label: string, list: InspectReport['inputs']): string[][] =>
    list.map((t, i) => [i === 0 ? label : '', t.name, t.dataType, describeShape(t.shape ?? undefined)]);
  out.push(
    table(
      [
        ['model', file],
        ['graph', `${r.graph}${r.producer ? ` (${r.producer})` : ''}`],
        ['opset', r.opsetImports.map((o) => `${o.domain} ${o.version}`).join(', ')],
      ],
      new Set(),
      '',
    ),
  );
  out.push(table([...tensorRows('inputs', r.inputs), ...tensorRows('outputs', r.outputs)], new Set(), ''));
  out.push('');
  out.push(`pyramid levels at ${r.inputSize.height}×${r.inputSize.width} (MACs per image)`);
  const levelRows = [
    ['level', 'output', 'stride', 'channels', 'size', 'exclusive MACs', 'share', 'distill cost'],
    ...r.levels.map((l) => [
      l.name,
      l.output,
      String(l.stride),
      String(l.channels),
      `${l.height}×${l.width}`,
      int(l.macs),
      pct(l.costShare),
      pct(l.distillCost),
    ]),
    ['shared', '', '', '', '', int(r.sharedMacs), pct(r.totalMacs > 0 ? r.sharedMacs / r.totalMacs : 0), ''],
    ['total', '', '', '', '', int(r.totalMacs), pct(r.totalMacs > 0 ? 1 : 0), ''],
  ];
  out.push(table(levelRows, new Set([2, 3, 5, 6, 7])));
  out.push('');
  out.push(`ops (${int(r.nodes)} nodes)`);
  out.push(
    table(
      Object.entries(r.ops).map(([op, n]) => [op, int(n)]),
      new Set([1]),
    ),
  );
  out.push('');
  const counting = r.parameterCounting === 'after-untying' ? 'after untying shared parameters' : 'as stored';
  out.push(`parameters (${counting})`);
  const paramRows = [
    ['trainable', `${int(r.trainableParameters)} elements in ${int(r.trainableTensors)} tensors`],
    ['constants', `${int(r.constantElements)} elements in ${int(r.constants)} initializers`],
  ];
  if (r.trainableParametersAsStored !== r.trainableParameters) {
    paramRows.splice(1, 0, [
      'as stored',
      `${int(r.trainableParametersAsStored)} trainable elements (tied copies once)`,
    ]);
  }
  out.push(table(paramRows, new Set()));
  out.push('');
  out.push('shared initializers (one stored tensor read under several names)');
  const tiedParams = r.sharedInitializers.filter((g) => g.kind === 'parameter');
  const tiedConsts = r.sharedInitializers.filter((g) => g.kind === 'constant');
  if (r.sharedInitializers.length === 0) out.push('  none');
  if (tiedParams.length > 0) {
    out.push(
      table(
        tiedParams.map((g) => [g.initializer, describeShape(g.dims), `parameter, ${g.uses} uses`]),
        new Set(),
      ),
    );
    for (const g of tiedParams) out.push(`    ${g.initializer} is read as ${g.readAs.join(', ')}`);
    out.push('    (counted once per use above; training unties them)');
  }
  if (tiedConsts.length > 0) {
    const reads = tiedConsts.reduce((a, g) => a + g.uses, 0);
    const examples = tiedConsts.slice(0, 2).map((g) => `${g.initializer} ×${g.uses}`);
    out.push(
      `  ${int(tiedConsts.length)} constant initializers read ${int(reads)} times ` +
        `(${examples.join(', ')}${tiedConsts.length > 2 ? ', …' : ''}); harmless, constants do not train`,
    );
  }
  out.push('');
  out.push('unsupported ops (no gradient rule, on a path from a trainable parameter to an output)');
  if (r.unsupportedOps.length === 0) out.push('  none');
  else
    out.push(
      table(
        r.unsupportedOps.map((u) => [u.opType, int(u.count), `e.g. ${u.example}`]),
        new Set([1]),
      ),
    );
  return `${out.join('\n')}\n`;
}
