import * as fs from 'node:fs';
import type { Command } from 'commander';
import {
  DEMO_GRAPHS,
  RESNET_FPN_ARCHS,
  RESNET_SPECS,
  buildResnetFpnWithInfo,
  countResnetFpnParameters,
  parseArch,
  stageChannels,
  stemWidth,
  writeDemoGraphs,
  type ResnetFpnInfo,
} from '../../models';
import { saveModel } from '../../onnx/model-io';
import { buildDemoTeacher, defaultTeachDemoConfig } from '../../teach';
import { withSigintAbort } from '../abort-on-sigint';
import { printJson } from '../run-cli';
import { choice, integer, positiveNumber } from '../option-parsers';

interface BuildOptions {
  arch: string;
  out: string;
  widthMult: number;
  fpnChannels: number;
  seed: number;
  height: number;
  width: number;
  opset: number;
  p6?: boolean;
  fpnBias: 'zero' | 'random';
  batchNorm: 'random' | 'identity';
  tieIdentical?: boolean;
  externalData?: boolean;
}

const int = (n: number): string => n.toLocaleString('en-US');

function mb(file: string): string {
  return `${(fs.statSync(file).size / 1e6).toFixed(2)} MB`;
}

function summary(info: ResnetFpnInfo): string {
  const levels = info.levels.map((l) => `${l.name} ${l.height}x${l.width}/${l.stride}`).join(', ');
  return (
    `${info.arch} width ${info.widthMult} (C2..C5 ${info.stageChannels.join('/')}), FPN ${info.fpnChannels} ` +
    `channels, input ${info.height}x${info.width}, ${int(info.trainableParameters)} trainable parameters; ${levels}`
  );
}

/** `rlpkd models`: build torchvision-style ResNet-FPN graphs, list the architectures, rebuild the demo graphs. */
export function registerModels(program: Command): void {
  const models = program
    .command('models')
    .description('build torchvision-style ResNet-FPN ONNX graphs (teacher/student) and list architectures');

  models
    .command('build')
    .description('build a ResNet-FPN backbone graph (outputs p2..p5, dynamic batch) with seeded weights')
    .requiredOption('--arch <arch>', `architecture: ${RESNET_FPN_ARCHS.join(' | ')}`)
    .requiredOption('--out <file>', 'ONNX file to write')
    .option(
      '--width-mult <w>',
      'channel width multiplier of the ResNet body (0.25 = tiny)',
      positiveNumber,
      1,
    )
    .option('--fpn-channels <c>', 'FPN output channels', integer(1), 256)
    .option('--seed <s>', 'initialization seed', integer(-Number.MAX_SAFE_INTEGER), 0)
    .option('--height <pixels>', 'input height', integer(32), 224)
    .option('--width <pixels>', 'input width', integer(32), 224)
    .option('--opset <n>', 'ONNX opset (13..18)', integer(1), 17)
    .option('--p6', 'also output P6 (max-pool of P5, torchvision LastLevelMaxPool)')
    .option('--fpn-bias <init>', 'FPN biases: zero (torchvision) | random', choice('zero', 'random'), 'zero')
    .option(
      '--batch-norm <init>',
      'frozen BN statistics: random | identity',
      choice('random', 'identity'),
      'random',
    )
    .option('--tie-identical', 'tie identical initializers through Identity nodes, as torch.onnx.export does')
    .option('--external-data', 'store weights in <out>.data (ONNX external data)')
    .action((opts: BuildOptions) => {
      const { model, info } = buildResnetFpnWithInfo({
        arch: opts.arch,
        widthMult: opts.widthMult,
        fpnChannels: opts.fpnChannels,
        seed: opts.seed,
        height: opts.height,
        width: opts.width,
        opset: opts.opset,
        p6: opts.p6,
        fpnBias: opts.fpnBias,
        batchNorm: opts.batchNorm,
        tieIdentical: opts.tieIdentical,
      });
      const files = saveModel(model, opts.out, opts.externalData ? { externalDataThreshold: 1024 } : {});
      process.stdout.write(`wrote ${files.map((f) => `${f} (${mb(f)})`).join(' + ')}\n  ${summary(info)}\n`);
    });

  models
    .command('list')
    .description('list the architectures the builder knows and the shipped demo graphs')
    .option('--json', 'print one JSON object')
    .action((opts: { json?: boolean }) => {
      const archs = RESNET_FPN_ARCHS.map((arch) => {
        const { depth } = parseArch(arch);
        const spec = RESNET_SPECS[depth];
        return {
          arch,
          block: spec.block,
          blocks: spec.layers,
          stageChannels: stageChannels(depth, stemWidth(1)),
          fpnChannels: 256,
          trainableParameters: countResnetFpnParameters({ arch }),
        };
      });
      const demo = Object.entries(DEMO_GRAPHS).map(([role, o]) => ({
        role,
        file: `onnx-graphs/${o.file}`,
        arch: o.arch,
        widthMult: o.widthMult,
        fpnChannels: o.fpnChannels,
        input: [o.height, o.width],
        trainableParameters: countResnetFpnParameters(o),
      }));
      if (opts.json) {
        printJson({ architectures: archs, demo });
        return;
      }
      const lines = ['architectures (full width, FPN 256):'];
      for (const a of archs) {
        lines.push(
          `  ${a.arch.padEnd(14)} ${a.block.padEnd(10)} blocks ${a.blocks.join('-').padEnd(9)} ` +
            `C2..C5 ${a.stageChannels.join('/').padEnd(19)} ${int(a.trainableParameters).padStart(10)} parameters`,
        );
      }
      lines.push('demo graphs (rlpkd models demo rebuilds them):');
      for (const d of demo) {
        lines.push(
          `  ${d.role.padEnd(8)} ${d.file.padEnd(25)} ${d.arch} ×${d.widthMult}, FPN ${d.fpnChannels}, ` +
            `${d.input.join('x')} input, ${int(d.trainableParameters)} parameters`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  models
    .command('demo')
    .description('rebuild the shipped tiny teacher/student graphs (deterministic, same bytes every run)')
    .option('--out-dir <dir>', 'folder to write teacher.onnx and student.onnx into', 'onnx-graphs')
    .action((opts: { outDir: string }) => {
      for (const w of writeDemoGraphs(opts.outDir)) {
        process.stdout.write(`wrote ${w.file} (${mb(w.file)}): ${w.role}, ${summary(w.info)}\n`);
      }
    });

  models
    .command('demo-teacher')
    .description(
      'train the demo detection teacher (rlpkd teach with configs/teach_demo.yaml) and write its backbone, ' +
        'head and teach report (same bytes on the same CPU)',
    )
    .option('--out-dir <dir>', 'folder to write demo-teacher.onnx, -head.onnx and .json into', 'onnx-graphs')
    .option('--config <file>', 'teach config (default: the package’s configs/teach_demo.yaml)')
    .option('--keep-run', 'keep the teach run directory (default: a temporary one, removed afterwards)')
    .action(async (opts: { outDir: string; config?: string; keepRun?: boolean }) => {
      const r = await withSigintAbort('stopping after the current step; nothing is written', (signal) =>
        buildDemoTeacher({
          outDir: opts.outDir,
          configFile: opts.config ?? defaultTeachDemoConfig(),
          keepRun: opts.keepRun ?? false,
          signal,
        }),
      );
      process.stdout.write(r.summaryText);
      for (const f of [r.backbone, r.head]) process.stdout.write(`wrote ${f} (${mb(f)})\n`);
      process.stdout.write(`wrote ${r.report}\n`);
    });
}
