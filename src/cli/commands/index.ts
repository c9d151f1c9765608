/** Every CLI command, in the order `rlpkd --help` lists them. A test checks this matches the folder. */
import type { Command } from 'commander';
import { registerTrain } from './train';

export const COMMANDS: Record<string, (program: Command) => void> = {
  train: registerTrain,
};
