/** `rlpkd export-weights`: a thin layer over exportWeights (trainable parameters → .safetensors for PyTorch). */
import type { Command } from 'commander';
import { exportWeights, type WeightsSource } from '../../distill/export-weights';
import { RlpkdError } from '../../errors';
import { printJson } from '../run-cli';

interface ExportWeightsCliOptions {
  run?: string;
  model?: string;
  checkpoint?: string;
  out: string;
  json?: boolean;
}

function source(opts: ExportWeightsCliOptions): WeightsSource {
  if ((opts.run === undefined) === (opts.model === undefined)) {
    throw new RlpkdError('give exactly one of --run RUN and --model M.onnx', {
      hint: 'rlpkd export-weights --run runs/demo-… --out student.safetensors',
      exitCode: 2,
    });
  }
  if (opts.model !== undefined) {
    if (opts.checkpoint !== undefined) {
      throw new RlpkdError('--checkpoint goes with --run, not --model', { exitCode: 2 });
    }
    return { model: opts.model };
  }
  return { run: opts.run!, ...(opts.checkpoint !== undefined ? { checkpoint: opts.checkpoint } : {}) };
}

/** `rlpkd export-weights (--run RUN [--checkpoint LABEL] | --model M.onnx) --out F.safetensors [--json]`. */
export function registerExportWeights(program: Command): void {
  program
    .command('export-weights')
    .description(
      "write a student's trainable parameters under their PyTorch names as .safetensors " +
        '(load them with tools/load_distilled.py)',
    )
    .option('--run <dir>', 'run directory created by `rlpkd train` (its trained student)')
    .option(
      '--checkpoint <label>',
      'with --run: checkpoint folder name under <run>/checkpoints (default: the latest, final when finished)',
    )
    .option('--model <file>', 'an ONNX model (e.g. a torchvision export, or a trained student)')
    .requiredOption('--out <file>', 'the .safetensors file to write')
    .option('--json', 'print one JSON object instead of the summary line')
    .action((opts: ExportWeightsCliOptions) => {
      const r = exportWeights(source(opts), opts.out);
      if (opts.json) {
        printJson(r);
        return;
      }
      const from = r.checkpoint ? `checkpoint ${r.checkpoint} (${r.source})` : r.source;
      process.stdout.write(
        `wrote ${r.tensors} parameters (${r.elements.toLocaleString('en-US')} values, ` +
          `${r.bytes.toLocaleString('en-US')} bytes) from ${from} to ${r.file}` +
          (r.untied > 0 ? `; ${r.untied} of them untied from shared initializers` : '') +
          '\n',
      );
    });
}
