/** `rlpkd export-policy`: a thin layer over exportPolicy (a run's policy + split student → browser bundle). */
import type { Command } from 'commander';
import { exportPolicy } from '../../deploy/export-policy';
import { printJson } from '../run-cli';

interface ExportPolicyCliOptions {
  run: string;
  out: string;
  checkpoint?: string;
  head?: string;
  json?: boolean;
}

/** `rlpkd export-policy --run RUN --out DIR [--checkpoint LABEL] [--json]`. */
export function registerExportPolicy(program: Command): void {
  program
    .command('export-policy')
    .description(
      "write a run's policy and its student split into trunk + per-level parts as a bundle for the browser runtime",
    )
    .requiredOption(
      '--run <dir>',
      'run directory created by `rlpkd train` (trained with rl.policy.state: deploy)',
    )
    .requiredOption('--out <dir>', 'bundle folder to write (an earlier bundle there is replaced)')
    .option(
      '--checkpoint <label>',
      'checkpoint folder name under <run>/checkpoints (default: the latest, final when finished)',
    )
    .option(
      '--head <file>',
      "head graph ONNX to deploy (levels in, task outputs out; default: the checkpoint's own head, else models.teacher_head)",
    )
    .option('--json', 'print meta.json instead of the summary lines')
    .action(async (opts: ExportPolicyCliOptions) => {
      const r = await exportPolicy({
        run: opts.run,
        out: opts.out,
        ...(opts.checkpoint !== undefined ? { checkpoint: opts.checkpoint } : {}),
        ...(opts.head !== undefined ? { head: opts.head } : {}),
      });
      if (opts.json) {
        printJson(r.meta);
        return;
      }
      const m = r.meta;
      const lines = [
        `wrote a policy bundle (${r.totalBytes.toLocaleString('en-US')} bytes) from checkpoint ${m.source.checkpoint} to ${r.dir}`,
        `  trunk: ${m.trunk.macs.toLocaleString('en-US')} MACs, ${m.trunk.bytes.toLocaleString('en-US')} bytes`,
        ...m.levels.map(
          (l) =>
            `  ${l.name}: ${l.macs.toLocaleString('en-US')} MACs (skipping saves ${(100 * l.saving).toFixed(1)}%), ${l.bytes.toLocaleString('en-US')} bytes`,
        ),
        `  policy: ${m.policy.mode}, state ${m.state.dim} values, ${m.policy.bytes.toLocaleString('en-US')} bytes`,
        ...(m.head
          ? [
              `  ${m.head.task} head (${m.head.source}, ${m.head.numClasses} classes, ${m.head.combine}): ` +
                m.head.parts
                  .map(
                    (p) =>
                      `${p.level} ${p.macs.toLocaleString('en-US')} MACs ${p.bytes.toLocaleString('en-US')} bytes`,
                  )
                  .join(', ') +
                (m.head.merge
                  ? `; merge ${m.head.merge.macs.toLocaleString('en-US')} MACs ${m.head.merge.bytes.toLocaleString('en-US')} bytes`
                  : ''),
            ]
          : ['  no task head (the run has none; --head FILE deploys one)']),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
