import type { Command } from 'commander';
import { RlpkdError } from '../../errors';

/** `rlpkd train`: the main job (distillation with RL level selection). */
export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'distil the teacher into the student with RL pyramid-level selection (no args: embedded demo)',
    )
    .option('-c, --config <file>', 'YAML config (default: configs/demo.yaml)')
    .option('--set <key=value...>', 'override config values by dotted key')
    .option('--ep <provider>', 'execution provider: cpu | cuda | auto', 'cpu')
    .action(() => {
      throw new RlpkdError(
        'rlpkd train is not available yet: it will run configs/demo.yaml (tiny teacher/student graphs from onnx-graphs/, ' +
          'synthetic data, phases 1-4: uniform pre-training, RL policy learning, joint fine-tuning with GradNorm, MAML)',
        {
          hint: 'the training engine and RL core land first; `rlpkd inspect` and `rlpkd models build` work today',
        },
      );
    });
}
