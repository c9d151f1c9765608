import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRunDir } from '../../src/logging/run-dir';
import {
  CHECKPOINT_FILES,
  checkpointLabel,
  readRunCheckpoint,
  RUN_STATE_VERSION,
  writeRunCheckpoint,
  type RunCheckpoint,
} from '../../src/distill/run-checkpoint';
import { Rng } from '../../src/util/rng';
import { GradNorm } from '../../src/distill/gradnorm';
import { PolicyNetwork } from '../../src/rl/policy';
import { initialCheckpoint } from '../../src/training/checkpoint';
import { runStudentModel } from '../../src/distill/export-weights';
import { tinyFpn } from './fixtures';
import { tempDir } from './run-fixtures';

async function checkpoint(globalStep: number, phase = 1, epoch = 1): Promise<RunCheckpoint> {
  const cursor = { phase, epoch, unit: 2, globalStep };
  const policy = await PolicyNetwork.create(
    { mode: 'sequential', stateDim: 6, numLevels: 2, hiddenSize: 4, costs: [0.7, 0.3] },
    { seed: 1 },
  );
  const gn = new GradNorm({ levels: ['P2', 'P3'] });
  gn.update({ gradNorms: [2, 1], losses: [1, 1] });
  return {
    state: {
      version: RUN_STATE_VERSION,
      label: checkpointLabel(cursor),
      cursor,
      streams: { policy: { epoch: 0, batch: 3, offset: 1 } },
      phaseSeconds: [1, 2, 0, 0],
      savedAt: 'now',
    },
    student: tinyFpn(),
    studentTrain: initialCheckpoint(
      { w: { data: Float32Array.of(1, 2, 3), dims: [3] } },
      { type: 'adamw', lr: 1e-3 },
    ),
    policy: policy.exportForInference(),
    ppo: {
      optimizer: initialCheckpoint(
        { p: { data: Float32Array.of(4, 5), dims: [2] } },
        { type: 'adamw', lr: 1e-3 },
      ),
      rng: new Rng(1).fork('ppo-minibatches').getState(),
    },
    maml: {
      outer: initialCheckpoint({ p: { data: Float32Array.of(6), dims: [1] } }, { type: 'adamw', lr: 1e-3 }),
      rng: new Rng(2).fork('maml').getState(),
    },
    gradnorm: gn.toJSON(),
  };
}

/**
 * Rewrites a checkpoint folder into the previous format (1), as the code before format 2 wrote it: the
 * same state.json with version 1, the PPO optimizer but no trainer RNG streams and no MAML state.
 */
function downgrade(dir: string): void {
  const stateFile = path.join(dir, CHECKPOINT_FILES.state);
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  fs.writeFileSync(stateFile, JSON.stringify({ ...state, version: 1 }, null, 2));
  fs.rmSync(path.join(dir, CHECKPOINT_FILES.trainers), { force: true });
  fs.rmSync(path.join(dir, CHECKPOINT_FILES.mamlOptimizer), { force: true });
}

describe('run checkpoints', () => {
  it('write atomically, point latest at the newest, prune to keep_last and read back', async () => {
    const run = createRunDir(tempDir('ckpt'), 'x');
    fs.mkdirSync(path.join(run.checkpointsDir, '.tmp-stale-1'), { recursive: true }); // a crashed write
    for (const step of [3, 7, 11]) await writeRunCheckpoint(run, await checkpoint(step), 2);
    const entries = fs.readdirSync(run.checkpointsDir).sort();
    expect(entries).toEqual(['latest', 's00000007-p1-e1-u2', 's00000011-p1-e1-u2']);
    const back = readRunCheckpoint(run);
    expect(back.state.cursor.globalStep).toBe(11);
    expect(back.state.streams.policy).toEqual({ epoch: 0, batch: 3, offset: 1 });
    expect(Array.from(back.studentTrain.parameters.w.data as Float32Array)).toEqual([1, 2, 3]);
    expect(back.gradnorm!.weights).toEqual((await checkpoint(1)).gradnorm!.weights);
    const policy = await PolicyNetwork.load(back.policyFile!);
    const original = await PolicyNetwork.fromModel((await checkpoint(1)).policy!);
    expect(policy.getParameters()).toEqual(original.getParameters());
    expect(policy.samplingRng.getState()).toEqual(original.samplingRng.getState());
    const written = await checkpoint(1);
    expect(back.ppo!.rng).toEqual(written.ppo!.rng);
    expect(back.ppo!.optimizer!.parameters).toEqual(written.ppo!.optimizer!.parameters);
    expect(back.maml!.rng).toEqual(written.maml!.rng);
    expect(back.maml!.outer!.parameters).toEqual(written.maml!.outer!.parameters);
    expect(back.writtenVersion).toBe(RUN_STATE_VERSION);
    // A 'final' checkpoint is never pruned, and rewriting one replaces it whole.
    const final = await checkpoint(12, 5);
    final.state.label = 'final';
    await writeRunCheckpoint(run, final, 1);
    await writeRunCheckpoint(run, final, 1);
    expect(fs.readdirSync(run.checkpointsDir).sort()).toEqual(['final', 'latest', 's00000011-p1-e1-u2']);
    expect(readRunCheckpoint(run).state.label).toBe('final');
  });

  it('keep_last 0 keeps only the newest, then only the final; optimizer_state drops moments as configured', async () => {
    const run = createRunDir(tempDir('ckpt-light'), 'x');
    const size = (label: string) =>
      fs.statSync(path.join(run.checkpointsDir, label, 'student.train.onnx')).size;
    const retention = { keep_last: 0, optimizer_state: 'except_final' as const };
    const first = await checkpoint(3);
    first.ppo = { optimizer: first.studentTrain, rng: new Rng('ppo').getState() };
    await writeRunCheckpoint(run, first, retention);
    await writeRunCheckpoint(run, await checkpoint(7), retention);
    expect(fs.readdirSync(run.checkpointsDir).sort()).toEqual(['latest', 's00000007-p1-e1-u2']);
    expect(readRunCheckpoint(run).studentTrain.optimizerStateOmitted).toBeUndefined();
    const final = await checkpoint(9, 5);
    final.state.label = 'final';
    final.ppo = { optimizer: final.studentTrain, rng: new Rng('ppo').getState() };
    await writeRunCheckpoint(run, final, retention);
    expect(fs.readdirSync(run.checkpointsDir).sort()).toEqual(['final', 'latest']);
    const back = readRunCheckpoint(run);
    expect(back.studentTrain.optimizerStateOmitted).toBe(true);
    expect(back.ppo).toBeUndefined();
    expect(Array.from(back.studentTrain.parameters.w.data as Float32Array)).toEqual([1, 2, 3]);
    // 'never' drops them from ordinary checkpoints too; 'always' (the default) keeps them in the final one.
    await writeRunCheckpoint(run, await checkpoint(10), { keep_last: 1, optimizer_state: 'never' });
    expect(readRunCheckpoint(run).studentTrain.optimizerStateOmitted).toBe(true);
    const heavy = await checkpoint(11, 5);
    heavy.state.label = 'final';
    await writeRunCheckpoint(run, heavy, { keep_last: 1 });
    expect(readRunCheckpoint(run).studentTrain.optimizerStateOmitted).toBeUndefined();
    expect(size('final')).toBeGreaterThan(size('s00000010-p1-e1-u2'));
  });

  it('leaves the previous checkpoint in place when a write fails', async () => {
    const run = createRunDir(tempDir('ckpt-fail'), 'x');
    await writeRunCheckpoint(run, await checkpoint(3), 2);
    const bad = await checkpoint(4);
    bad.ppo!.optimizer!.parameters.p.data = Float64Array.of(1, 2); // not float32: the write fails midway
    await expect(writeRunCheckpoint(run, bad, 2)).rejects.toThrow(
      /could not write checkpoint 's00000004-p1-e1-u2'/,
    );
    expect(fs.readdirSync(run.checkpointsDir).sort()).toEqual(['latest', 's00000003-p1-e1-u2']);
    expect(readRunCheckpoint(run).state.cursor.globalStep).toBe(3);
  });

  it('explains a run without checkpoints', () => {
    const run = createRunDir(tempDir('ckpt-none'), 'x');
    expect(() => readRunCheckpoint(run)).toThrow(/has no checkpoint to resume from/);
  });

  describe('of the previous format (1)', () => {
    async function written(phase: number, epoch: number, withPpo: boolean) {
      const run = createRunDir(tempDir('ckpt-v1'), 'x');
      const c = await checkpoint(5, phase, epoch);
      if (!withPpo) delete c.ppo;
      delete c.maml;
      downgrade(await writeRunCheckpoint(run, c, 2));
      return run;
    }

    it('migrate where nothing they lack is needed: any eval, a resume before PPO or at phase 4 start', async () => {
      for (const [phase, epoch, withPpo] of [
        [1, 1, false],
        [3, 0, false], // a fixed selection: no PPO trainer
        [4, 0, true], // PPO is done, MAML starts fresh
      ] as const) {
        const back = readRunCheckpoint(await written(phase, epoch, withPpo), undefined, 'resume');
        expect(back.writtenVersion).toBe(1);
        expect(back.state.version).toBe(RUN_STATE_VERSION);
        expect(back.state.cursor).toEqual({ phase, epoch, unit: 2, globalStep: 5 });
        expect(back.ppo).toBeUndefined();
      }
      const evaluated = readRunCheckpoint(await written(2, 1, true), undefined, 'eval');
      expect(evaluated.state.version).toBe(RUN_STATE_VERSION);
      expect(evaluated.policyFile).toBeDefined();
      // Exporting or transplanting its weights reads it as evaluation does, not as a resume.
      const midPpo = await written(2, 1, true);
      fs.writeFileSync(midPpo.configFile, ''); // openRunDir wants a run's resolved config to exist
      expect(runStudentModel(midPpo.root).label).toBe(
        readRunCheckpoint(midPpo, undefined, 'eval').state.label,
      );
    });

    it('fail with one clear message where a resume needs trainer state they lack', async () => {
      const ppo = await written(2, 1, true);
      expect(() => readRunCheckpoint(ppo, undefined, 'resume')).toThrow(
        /has format 1, which does not hold the PPO trainer's state that resuming phase 2 needs \(format 2 does\)/,
      );
      try {
        readRunCheckpoint(ppo, undefined, 'resume');
      } catch (err) {
        expect((err as { hint?: string }).hint).toMatch(
          /start a new run; `rlpkd eval` still reads this checkpoint/,
        );
      }
      const maml = await written(4, 1, true);
      expect(() => readRunCheckpoint(maml, undefined, 'resume')).toThrow(
        /does not hold the MAML trainer's state that resuming phase 4 needs/,
      );
    });

    it('and an unknown format is refused for eval too', async () => {
      const run = createRunDir(tempDir('ckpt-v9'), 'x');
      const dir = await writeRunCheckpoint(run, await checkpoint(5), 2);
      const stateFile = path.join(dir, CHECKPOINT_FILES.state);
      fs.writeFileSync(
        stateFile,
        JSON.stringify({ ...JSON.parse(fs.readFileSync(stateFile, 'utf8')), version: 9 }),
      );
      expect(() => readRunCheckpoint(run, undefined, 'eval')).toThrow(
        /has format 9; this rl-pyramidkd reads formats 1 and 2/,
      );
    });
  });
});
