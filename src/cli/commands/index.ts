/** Every CLI command, in the order `rlpkd --help` lists them. A test checks this matches the folder. */
import type { Command } from 'commander';
import { registerAblate } from './ablate';
import { registerArtifacts } from './artifacts';
import { registerBench } from './bench';
import { registerDemo } from './demo';
import { registerEval } from './eval';
import { registerExportPolicy } from './export-policy';
import { registerExportWeights } from './export-weights';
import { registerGpu } from './gpu';
import { registerGrad } from './grad';
import { registerInspect } from './inspect';
import { registerMetrics } from './metrics';
import { registerModels } from './models';
import { registerNas } from './nas';
import { registerTeach } from './teach';
import { registerTrain } from './train';
import { registerVisualize } from './visualize';
import { registerWorker } from './worker';

export const COMMANDS: Record<string, (program: Command) => void> = {
  inspect: registerInspect,
  artifacts: registerArtifacts,
  grad: registerGrad,
  models: registerModels,
  train: registerTrain,
  teach: registerTeach,
  eval: registerEval,
  nas: registerNas,
  ablate: registerAblate,
  worker: registerWorker,
  metrics: registerMetrics,
  'export-weights': registerExportWeights,
  'export-policy': registerExportPolicy,
  demo: registerDemo,
  visualize: registerVisualize,
  bench: registerBench,
  gpu: registerGpu,
};
