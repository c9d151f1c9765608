/** `rlpkd eval`: a thin layer over evaluateRun (held-out distillation loss, policy subsets, cost). */
import type { Command } from 'commander';
import { evaluateRun } from '../../distill/evaluate-run';
import type { ExecutionProviderName } from '../../runtime/session';
import { printJson } from '../run-cli';
import { provider } from '../option-parsers';

interface EvalCliOptions {
  run: string;
  checkpoint?: string;
  ep?: ExecutionProviderName;
  json?: boolean;
}

/** `rlpkd eval --run RUN [--checkpoint LABEL] [--ep cpu|cuda|webgpu|auto] [--json]`. */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      "evaluate a run's checkpoint on its held-out images: all-level distillation loss per level (now vs before " +
        'training), level subsets the deterministic policy picks, mean used cost',
    )
    .requiredOption('--run <dir>', 'run directory created by `rlpkd train`')
    .option(
      '--checkpoint <label>',
      'checkpoint folder name under <run>/checkpoints (default: the latest, final when finished)',
    )
    .option(
      '--ep <provider>',
      'execution provider: cpu | cuda | webgpu | auto (default: run.ep of the run config)',
      provider,
    )
    .option('--json', 'print one JSON object instead of the table')
    .action(async (opts: EvalCliOptions) => {
      const r = await evaluateRun({
        run: opts.run,
        ...(opts.checkpoint ? { checkpoint: opts.checkpoint } : {}),
        ...(opts.ep ? { ep: opts.ep } : {}),
      });
      if (opts.json) printJson({ ...r.summary, checkpoint: r.checkpoint });
      else process.stdout.write(r.text);
    });
}
