/**
 * `--resume` continues exactly: a run stopped by Ctrl-C (an aborted signal) at several points — mid phase
 * 1, in phase 2, mid phase 3 and in phase 4's second epoch — and resumed each time ends with the same
 * student and policy parameters, bit for bit, as the same run without interruptions. The run's one PPO
 * trainer (phases 2 and 3) and one MAML trainer (phase 4) are restored from the checkpoints each stop
 * wrote (optimizer moments and RNG streams), not re-created.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { runTraining, type TrainResult } from '../../src/distill/pipeline';
import { CHECKPOINT_FILES, readRunCheckpoint } from '../../src/distill/run-checkpoint';
import { openRunDir } from '../../src/logging/run-dir';
import { initializers, tempDir, tinyConfig, writeTinyModels } from '../distill/run-fixtures';

jest.setTimeout(600000);

/** A log stream that aborts the run when a line matching `trigger` is logged. */
function abortingLog(trigger: RegExp | null, controller: AbortController, lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const text = chunk.toString();
      lines.push(text);
      if (trigger && trigger.test(text)) controller.abort();
      done();
    },
  });
}

async function train(
  options: Parameters<typeof runTraining>[0],
  trigger: RegExp | null,
  lines: string[] = [],
): Promise<TrainResult> {
  const controller = new AbortController();
  return runTraining({
    ...options,
    signal: controller.signal,
    logger: { stream: abortingLog(trigger, controller, lines), progress: 'lines' },
  });
}

describe('rlpkd train --resume', () => {
  it.each([
    ['a fixed budget', 1],
    ['budgets sampled per episode', [0.2, 1]],
  ])(
    'gives the same final parameters as an uninterrupted run, whatever phase it was stopped in (%s)',
    async (_what, budget) => {
      const dir = tempDir('resume');
      const models = writeTinyModels(dir);
      // Two meta epochs, so the phase-4 stop (which saves its epoch's start) holds a MAML trainer's state.
      const env = { rl: { environment: { budget } }, phases: { meta: { epochs: 2 } } };
      const full = await train(
        {
          config: tinyConfig(dir, models, {
            ...env,
            run: { name: 'full' },
            distill: { feature_cache: { dir: path.join(dir, 'cache-a') } },
          }),
        },
        null,
      );
      expect(full.status).toBe('completed');

      const config = tinyConfig(dir, models, {
        ...env,
        run: { name: 'chain' },
        distill: { feature_cache: { dir: path.join(dir, 'cache-b') } },
      });
      const triggers = [
        /held-out all-level distillation loss before training/, // after the first phase-1 step
        /phase 1 \(pretrain\) done/, // after the first PPO iteration of phase 2
        /GradNorm measures gradient norms/, // after the first joint iteration of phase 3
        /phase 4 meta\s+epoch 1\/2 .*\(100%\)/, // inside phase 4's second epoch
      ];
      let r = await train({ config }, triggers[0]);
      const stops: string[] = [];
      const trainersAtStops: { ppo: boolean; maml: boolean }[] = [];
      for (const trigger of [...triggers.slice(1), null]) {
        expect(r.status).toBe('interrupted');
        stops.push(path.basename(r.checkpoint));
        const saved = readRunCheckpoint(openRunDir(r.runDir));
        trainersAtStops.push({ ppo: saved.ppo?.optimizer != null, maml: saved.maml?.outer != null });
        // No partial checkpoint: every checkpoint folder is complete, and no temporary folder is left.
        const ckDir = path.join(r.runDir, 'checkpoints');
        for (const e of fs.readdirSync(ckDir)) {
          expect(e.startsWith('.tmp-')).toBe(false);
          if (e !== 'latest') expect(fs.existsSync(path.join(ckDir, e, CHECKPOINT_FILES.state))).toBe(true);
        }
        r = await train({ resume: r.runDir }, trigger);
      }
      expect(r.status).toBe('completed');
      // Stops landed in phases 1, 2, 3 and 4 (its second epoch's start: phase 4 saves the epoch's start).
      expect(stops.map((s) => /-p(\d)-e(\d)/.exec(s)!.slice(1).join('.'))).toEqual([
        '1.0',
        '2.0',
        '3.0',
        '4.1',
      ]);
      // What the resumes restored: the PPO trainer from phase 2 on, the MAML trainer in phase 4.
      expect(trainersAtStops).toEqual([
        { ppo: false, maml: false },
        { ppo: true, maml: false },
        { ppo: true, maml: false },
        { ppo: true, maml: true },
      ]);

      const final = (run: string, f: string) => path.join(run, 'checkpoints', 'final', f);
      const a = initializers(final(full.runDir, CHECKPOINT_FILES.studentTrain));
      const b = initializers(final(r.runDir, CHECKPOINT_FILES.studentTrain));
      expect(Object.keys(b)).toEqual(Object.keys(a));
      for (const k of Object.keys(a)) expect(b[k]).toEqual(a[k]);
      const pa = initializers(final(full.runDir, CHECKPOINT_FILES.policy));
      const pb = initializers(final(r.runDir, CHECKPOINT_FILES.policy));
      for (const k of Object.keys(pa)) expect(pb[k]).toEqual(pa[k]);
      const ga = JSON.parse(fs.readFileSync(final(full.runDir, CHECKPOINT_FILES.gradnorm), 'utf8'));
      const gb = JSON.parse(fs.readFileSync(final(r.runDir, CHECKPOINT_FILES.gradnorm), 'utf8'));
      expect(gb.weights).toEqual(ga.weights);
      expect(r.summary!.lossAfter).toBe(full.summary!.lossAfter);
      expect(r.summary!.selection.selections).toEqual(full.summary!.selection.selections);
    },
  );
});
