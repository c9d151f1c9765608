import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRunDir } from '../../src/logging/run-dir';
import {
  checkpointLabel,
  readRunCheckpoint,
  writeRunCheckpoint,
  type RunCheckpoint,
} from '../../src/distill/run-checkpoint';
import { GradNorm } from '../../src/distill/gradnorm';
import { PolicyNetwork } from '../../src/rl/policy';
import { initialCheckpoint } from '../../src/training/checkpoint';
import { tinyFpn } from './fixtures';
import { tempDir } from './run-fixtures';

async function checkpoint(globalStep: number, phase = 1): Promise<RunCheckpoint> {
  const cursor = { phase, epoch: 1, unit: 2, globalStep };
  const policy = await PolicyNetwork.create(
    { mode: 'sequential', stateDim: 6, numLevels: 2, hiddenSize: 4, costs: [0.7, 0.3] },
    { seed: 1 },
  );
  const gn = new GradNorm({ levels: ['P2', 'P3'] });
  gn.update({ gradNorms: [2, 1], losses: [1, 1] });
  return {
    state: {
      version: 1,
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
    policy: policy.toCheckpoint(),
    gradnorm: gn.toJSON(),
  };
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
    expect(policy.toCheckpoint()).toEqual((await checkpoint(1)).policy);
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
    first.ppoOptimizer = first.studentTrain;
    await writeRunCheckpoint(run, first, retention);
    await writeRunCheckpoint(run, await checkpoint(7), retention);
    expect(fs.readdirSync(run.checkpointsDir).sort()).toEqual(['latest', 's00000007-p1-e1-u2']);
    expect(readRunCheckpoint(run).studentTrain.optimizerStateOmitted).toBeUndefined();
    const final = await checkpoint(9, 5);
    final.state.label = 'final';
    final.ppoOptimizer = final.studentTrain;
    await writeRunCheckpoint(run, final, retention);
    expect(fs.readdirSync(run.checkpointsDir).sort()).toEqual(['final', 'latest']);
    const back = readRunCheckpoint(run);
    expect(back.studentTrain.optimizerStateOmitted).toBe(true);
    expect(back.ppoOptimizer).toBeUndefined();
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
    bad.policy = { ...bad.policy!, version: 2 as 1 }; // unreadable policy state
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
});
