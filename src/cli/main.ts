/** The `rlpkd` command line: a thin layer that parses arguments and calls the library. */
import { Command } from 'commander';
import { COMMANDS } from './commands';
import { reportError } from './run-cli';

/** Builds the commander program (exported for tests). */
export function buildProgram(): Command {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { version } = require('../../package.json') as { version: string };
  const program = new Command('rlpkd')
    .description('ResNet-FPN knowledge distillation with RL pyramid-level selection, on ONNX Runtime')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  for (const register of Object.values(COMMANDS)) register(program);
  return program;
}

/** Runs the CLI with `argv` (process.argv form) and returns the exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
