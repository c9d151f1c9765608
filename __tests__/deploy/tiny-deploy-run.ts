/** A tiny finished run (one pretraining and one policy epoch) for the deployment tests. */
import { Writable } from 'node:stream';
import { runTraining } from '../../src/distill/pipeline';
import { tinyConfig, writeTinyModels } from '../distill/run-fixtures';

/** Trains the tiny run in `dir` on the given policy state kind and returns its run directory. */
export async function tinyDeployRun(
  dir: string,
  state: 'train' | 'deploy',
  policy: Record<string, unknown> = {},
): Promise<string> {
  const models = writeTinyModels(dir);
  const r = await runTraining({
    config: tinyConfig(dir, models, {
      rl: { policy: { state, ...policy } },
      phases: {
        pretrain: { epochs: 1 },
        policy: { epochs: 1 },
        joint: { enabled: false },
        meta: { enabled: false },
      },
    }),
    logger: { stream: new Writable({ write: (_c, _e, done) => done() }), progress: 'lines' },
  });
  if (r.status !== 'completed') throw new Error(`the tiny run ended ${r.status}`);
  return r.runDir;
}
