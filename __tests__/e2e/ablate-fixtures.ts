/** The tiny project the ablation e2e tests compare on: two levels, the shortest phases, no phase 4. */
import type { RunConfig } from '../../src/config/schema';
import { tinyConfig, writeTinyModels } from '../distill/run-fixtures';

/** Writes the tiny graphs into `dir` and returns the config (policy epochs as given). */
export function tinyAblationConfig(dir: string, policyEpochs = 1): RunConfig {
  return tinyConfig(dir, writeTinyModels(dir), {
    models: { levels: ['p4', 'p5'] },
    phases: {
      pretrain: { epochs: 1 },
      policy: { epochs: policyEpochs },
      joint: { epochs: 1 },
      meta: { enabled: false },
    },
  });
}
