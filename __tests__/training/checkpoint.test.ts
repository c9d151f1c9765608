import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import {
  checkCheckpointFits,
  initialCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  withoutOptimizerState,
  type CheckpointState,
} from '../../src/training/checkpoint';

describe('checkpoints as ONNX files', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-ckpt-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function sample(): CheckpointState {
    const state = initialCheckpoint(
      {
        'conv.weight': { data: Float32Array.of(1, 2, 3, 4, 5, 6), dims: [2, 3] },
        'conv.bias': { data: Float32Array.of(-1, 0.5), dims: [2] },
      },
      { type: 'adamw', lr: 0.01, weightDecay: 0 },
    );
    state.optimizer.step = 7;
    (state.optimizer.state['conv.weight.exp_avg'].data as Float32Array).fill(0.25);
    (state.optimizer.state['conv.bias.exp_avg_sq'].data as Float32Array).set([1e-3, 2e-3]);
    state.metadata = { epoch: '3' };
    return state;
  }

  it('round-trips parameters, moments, step, optimizer settings and metadata exactly', () => {
    const file = path.join(dir, 'a.onnx');
    const state = sample();
    saveCheckpoint(file, state);
    const back = loadCheckpoint(file);
    expect(back.optimizer.step).toBe(7);
    expect(back.optimizer.config).toEqual({
      type: 'adamw',
      lr: 0.01,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 0,
      noWeightDecay: [],
    });
    expect(Object.keys(back.parameters)).toEqual(['conv.weight', 'conv.bias']);
    for (const [k, v] of Object.entries(state.parameters)) {
      expect(back.parameters[k].dims).toEqual(v.dims);
      expect(Array.from(back.parameters[k].data as Float32Array)).toEqual(Array.from(v.data as Float32Array));
    }
    for (const [k, v] of Object.entries(state.optimizer.state)) {
      expect(Array.from(back.optimizer.state[k].data as Float32Array)).toEqual(
        Array.from(v.data as Float32Array),
      );
    }
    expect(back.metadata).toEqual({ epoch: '3' });
    // It is an ordinary ONNX file whose initializers carry the parameter names.
    const model = loadModel(file);
    expect(model.graph.initializers.map((t) => t.name)).toEqual([
      'conv.weight',
      'conv.bias',
      'conv.weight.exp_avg',
      'conv.weight.exp_avg_sq',
      'conv.bias.exp_avg',
      'conv.bias.exp_avg_sq',
      'optimizer.step',
    ]);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('saves without optimizer state when asked: parameters only, zero moments and a flag when read back', () => {
    const file = path.join(dir, 'light.onnx');
    saveCheckpoint(file, withoutOptimizerState(sample()));
    expect(loadModel(file).graph.initializers.map((t) => t.name)).toEqual([
      'conv.weight',
      'conv.bias',
      'optimizer.step',
    ]);
    const back = loadCheckpoint(file);
    expect(back.optimizerStateOmitted).toBe(true);
    expect(back.optimizer.step).toBe(7);
    expect(Array.from(back.parameters['conv.bias'].data as Float32Array)).toEqual([-1, 0.5]);
    expect(Object.keys(back.optimizer.state).sort()).toEqual(Object.keys(sample().optimizer.state).sort());
    for (const [k, v] of Object.entries(back.optimizer.state)) {
      expect(v.dims).toEqual(sample().optimizer.state[k].dims);
      expect(Array.from(v.data as Float32Array).every((x) => x === 0)).toBe(true);
    }
    expect(loadCheckpoint(path.join(dir, 'a.onnx')).optimizerStateOmitted).toBeUndefined();
  });

  it('reports every mismatch with the session in one clear error', () => {
    const state = sample();
    expect(() =>
      checkCheckpointFits(
        state,
        {
          parameters: [
            { name: 'conv.weight', dims: [3, 2] },
            { name: 'fc.weight', dims: [4] },
          ],
          optimizer: { type: 'adamw' },
        },
        "checkpoint 'a.onnx'",
      ),
    ).toThrow(
      /checkpoint 'a.onnx' does not fit this training session: missing parameters 'fc.weight'; parameters the session does not train: 'conv.bias'; 'conv.weight' is \[2, 3\] in the checkpoint but \[3, 2\] in the session/,
    );
    expect(() =>
      checkCheckpointFits(
        state,
        {
          parameters: [
            { name: 'conv.weight', dims: [2, 3] },
            { name: 'conv.bias', dims: [2] },
          ],
          optimizer: { type: 'sgd', momentum: 0.9 },
        },
        'ckpt',
      ),
    ).toThrow(/holds adamw state but the session uses sgd/);
    expect(() =>
      checkCheckpointFits(
        state,
        {
          parameters: [
            { name: 'conv.weight', dims: [2, 3] },
            { name: 'conv.bias', dims: [2] },
          ],
          optimizer: { type: 'adamw', lr: 0.5 },
        },
        'ckpt',
      ),
    ).not.toThrow();
  });

  it('refuses an ONNX file that is not a checkpoint', () => {
    const file = path.join(dir, 'plain.onnx');
    const b = new GraphBuilder();
    b.output(b.op('Identity', [b.constFloat(1, [], 'w')]));
    saveModel(b.build(), file);
    expect(() => loadCheckpoint(file)).toThrow(
      /is not an rl-pyramidkd checkpoint: metadata 'rlpkd.checkpoint.format' is missing/,
    );
    expect(() => loadCheckpoint(path.join(dir, 'none.onnx'))).toThrow(/does not exist/);
  });
});
