/** `rlpkd artifacts`: a thin layer over generateArtifacts that prints what it wrote (or found cached). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { RlpkdError } from '../../errors';
import { loadModel } from '../../onnx/model-io';
import type { ValueInfo } from '../../onnx/types';
import { generateArtifacts, type TrainingArtifacts } from '../../training/artifacts';
import type { LossSpec } from '../../training/losses';
import type { OptimizerConfig } from '../../training/optimizers';
import { printJson } from '../run-cli';
import { choice, nonNegative } from '../option-parsers';

/** Loss names the command accepts (kebab-case spellings of the LossSpec types). */
export const ARTIFACT_LOSSES = ['mse', 'l1', 'smooth-l1', 'cross-entropy', 'distill'] as const;
type LossName = (typeof ARTIFACT_LOSSES)[number];

interface ArtifactsOptions {
  model: string;
  out: string;
  loss: LossName;
  outputs?: string[];
  beta?: number;
  optimizer: 'adamw' | 'sgd';
  lr?: number;
  weightDecay?: number;
  momentum?: number;
  trainable?: string[];
  frozen?: string[];
  untie: boolean;
  fused: boolean;
  json?: boolean;
}

/** The LossSpec a command line asks for; `modelOutputs` are the distillation levels when none are named. */
export function lossSpecFromOptions(
  loss: LossName,
  options: { outputs?: string[]; beta?: number; modelOutputs: string[] },
): LossSpec {
  const { outputs, beta } = options;
  switch (loss) {
    case 'mse':
    case 'l1':
      return { type: loss, ...(outputs ? { outputs } : {}) };
    case 'smooth-l1':
      return { type: 'smoothL1', ...(outputs ? { outputs } : {}), ...(beta !== undefined ? { beta } : {}) };
    case 'cross-entropy':
      if (outputs && outputs.length !== 1) {
        throw new RlpkdError(`--loss cross-entropy takes one --outputs (the logits), got ${outputs.length}`);
      }
      return { type: 'crossEntropy', ...(outputs ? { logits: outputs[0] } : {}) };
    case 'distill':
      return {
        type: 'distillation',
        levels: (outputs ?? options.modelOutputs).map((student) => ({ student })),
      };
  }
}

/** The OptimizerConfig a command line asks for. */
export function optimizerFromOptions(
  o: Pick<ArtifactsOptions, 'optimizer' | 'lr' | 'weightDecay' | 'momentum'>,
): OptimizerConfig {
  if (o.optimizer === 'adamw') {
    if (o.momentum !== undefined) throw new RlpkdError('--momentum applies to --optimizer sgd only');
    return {
      type: 'adamw',
      ...(o.lr !== undefined ? { lr: o.lr } : {}),
      ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}),
    };
  }
  return {
    type: 'sgd',
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}),
    ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
  };
}

const fmtShape = (v: ValueInfo): string => `[${(v.shape ?? ['?']).map((d) => d ?? '?').join(', ')}]`;

function fileRows(a: TrainingArtifacts): { file: string; bytes: number }[] {
  return Object.values(a.manifest.files)
    .filter((f): f is string => !!f)
    .concat('manifest.json')
    .map((file) => ({ file, bytes: fs.statSync(path.join(a.dir!, file)).size }));
}

async function runArtifacts(opts: ArtifactsOptions): Promise<void> {
  const model = loadModel(opts.model);
  const loss = lossSpecFromOptions(opts.loss, {
    outputs: opts.outputs,
    beta: opts.beta,
    modelOutputs: model.graph.outputs.map((o) => o.name),
  });
  const parameters = {
    ...(opts.trainable ? { trainable: opts.trainable } : {}),
    ...(opts.frozen ? { frozen: opts.frozen } : {}),
  };
  const started = Date.now();
  const artifacts = generateArtifacts(model, {
    loss,
    optimizer: optimizerFromOptions(opts),
    outDir: opts.out,
    untieSharedInitializers: opts.untie,
    fused: opts.fused,
    ...(opts.trainable || opts.frozen ? { parameters } : {}),
  });
  const seconds = (Date.now() - started) / 1000;
  const m = artifacts.manifest;
  const elements = m.parameters.reduce((s, p) => s + p.dims.reduce((a, b) => a * b, 1), 0);
  const files = fileRows(artifacts);
  if (opts.json) {
    printJson({
      dir: artifacts.dir,
      cached: artifacts.cached === true,
      hash: m.hash,
      files,
      parameters: m.parameters.length,
      parameterValues: elements,
      untied: Object.keys(m.untied).length,
      loss: m.loss,
      stepOutputs: m.stepOutputs,
      inputs: m.inputs,
      optimizer: m.optimizer,
      seconds,
    });
    return;
  }
  const out: string[] = [];
  out.push(
    `${artifacts.cached ? 'cache hit' : 'built'}: training artifacts of ${opts.model} in ${artifacts.dir} ` +
      `(hash ${m.hash.slice(0, 12)}, ${seconds.toFixed(1)} s)`,
  );
  const width = Math.max(...files.map((f) => f.file.length));
  for (const f of files) out.push(`  ${f.file.padEnd(width)}  ${(f.bytes / 1e6).toFixed(2).padStart(9)} MB`);
  const untied = Object.keys(m.untied).length;
  out.push(
    `parameters: ${m.parameters.length} tensors, ${elements.toLocaleString('en-US')} values` +
      (untied ? ` (${untied} made by untying shared initializers)` : ''),
  );
  out.push(`loss: ${loss.type} → '${m.loss}'; step outputs ${m.stepOutputs.join(', ')}`);
  const opt = m.optimizer;
  out.push(
    `optimizer: ${opt.type} lr ${opt.lr} weight decay ${opt.weightDecay}` +
      (opt.type === 'sgd' ? ` momentum ${opt.momentum}` : ''),
  );
  out.push(`inputs: ${m.inputs.map((v) => `${v.name} ${fmtShape(v)}`).join(', ')}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

/** `rlpkd artifacts --model M.onnx --out DIR`: training, eval, optimizer, fused-step and gradient-step graphs + checkpoint. */
export function registerArtifacts(program: Command): void {
  program
    .command('artifacts')
    .description(
      'build training/eval/optimizer/fused-step/gradient-step graphs and a checkpoint (cached by content hash)',
    )
    .requiredOption('--model <file>', 'ONNX model to train')
    .requiredOption('--out <dir>', 'folder for the artifacts (reused when the model and options match)')
    .option(
      '--loss <type>',
      `loss: ${ARTIFACT_LOSSES.join(' | ')} (distill: per-level feature distillation of the outputs)`,
      choice(...ARTIFACT_LOSSES),
      'distill',
    )
    .option('--outputs <names...>', 'outputs the loss uses (default: every graph output)')
    .option('--beta <number>', 'smooth-l1 β (default 1)', nonNegative)
    .option('--optimizer <type>', 'adamw | sgd', choice('adamw', 'sgd'), 'adamw')
    .option('--lr <number>', 'base learning rate (default 1e-3)', nonNegative)
    .option('--weight-decay <number>', 'weight decay (default: adamw 1e-2, sgd 0)', nonNegative)
    .option('--momentum <number>', 'sgd momentum (default 0)', nonNegative)
    .option('--trainable <pattern...>', 'also train initializers matching these globs or /regex/')
    .option('--frozen <pattern...>', 'freeze initializers matching these globs or /regex/')
    .option('--no-untie', 'keep shared parameter initializers tied')
    .option('--no-fused', 'skip the fused step and gradient step graphs')
    .option('--json', 'print one JSON object')
    .action(async (opts: ArtifactsOptions) => runArtifacts(opts));
}
