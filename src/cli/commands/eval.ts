/** `rlpkd eval`: a thin layer over evaluateRun (distillation loss, task metrics, policy, cost; eval.json/.md). */
import type { Command } from 'commander';
import { evaluateRun } from '../../distill/evaluate-run';
import type { HeadTask } from '../../heads/types';
import type { ExecutionProviderName } from '../../runtime/session';
import { printJson } from '../run-cli';
import { choice, integer, provider } from '../option-parsers';

interface EvalCliOptions {
  run: string;
  checkpoint?: string;
  ep?: ExecutionProviderName;
  json?: boolean;
  taskModel?: string;
  prefix?: string;
  task?: HeadTask;
  rewards?: boolean;
  rewardImages?: number;
}

/**
 * `rlpkd eval --run RUN [--checkpoint LABEL] [--ep cpu|cuda|webgpu|auto]
 * [--task-model M.onnx [--prefix P] [--task detection|segmentation|classification]]
 * [--rewards [--reward-images N]] [--json]`.
 */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      "evaluate a run's checkpoint on its held-out images: all-level distillation loss per level (now vs before " +
        'training), level subsets the deterministic policy picks, mean used cost; per-level fidelity to the ' +
        "teacher, task metric through the teacher's head, probes, own heads, selection by object size, " +
        'inference cost (also written to eval.json and eval.md in the run)',
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
    .option(
      '--task-model <file>',
      "transplant the student's weights by name into this task model (e.g. `rlpkd teach`'s task-model.onnx) " +
        "and report its task metric on the run's held-out split; mismatched names or shapes exit 1",
    )
    .option(
      '--prefix <prefix>',
      "name prefix of the student's parameters in the task model (default: detected)",
    )
    .option(
      '--task <task>',
      "the task model's task (default: read off its outputs)",
      choice<HeadTask>('detection', 'segmentation', 'classification'),
    )
    .option(
      '--rewards',
      'also measure the reward landscape: one trial update per held-out image and level subset, the ' +
        "policy's mean reward against random at its cost, the best fixed subset, per bin and per image",
    )
    .option('--reward-images <n>', 'held-out images the landscape measures (default: all)', integer(1))
    .option('--json', 'print one JSON object instead of the table')
    .action(async (opts: EvalCliOptions) => {
      const r = await evaluateRun({
        run: opts.run,
        ...(opts.checkpoint ? { checkpoint: opts.checkpoint } : {}),
        ...(opts.ep ? { ep: opts.ep } : {}),
        ...(opts.rewards || opts.rewardImages
          ? { rewards: opts.rewardImages ? { images: opts.rewardImages } : {} }
          : {}),
        ...(opts.taskModel
          ? {
              taskModel: {
                file: opts.taskModel,
                ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
                ...(opts.task ? { task: opts.task } : {}),
              },
            }
          : {}),
      });
      if (opts.json) printJson(r.json);
      else process.stdout.write(r.text);
    });
}
