import { RUN_STATE_VERSION, type RunStateJson } from '../../src/distill/run-checkpoint';
import { RunProgress } from '../../src/distill/run-progress';

describe('RunProgress', () => {
  it('moves the cursor only through its methods and writes the state a checkpoint stores', () => {
    const p = new RunProgress();
    expect(p.cursor).toEqual({ phase: 1, epoch: 0, unit: 0, globalStep: 0 });
    expect(p.atPhaseStart).toBe(true);
    p.stepDone();
    p.unitDone();
    p.stepDone();
    p.unitDone(5);
    expect(p.cursor).toEqual({ phase: 1, epoch: 0, unit: 5, globalStep: 2 });
    expect(p.label()).toBe('s00000002-p1-e0-u5');
    p.epochDone();
    expect(p.cursor).toEqual({ phase: 1, epoch: 1, unit: 0, globalStep: 2 });
    expect(p.atPhaseStart).toBe(false);
    p.phaseDone();
    expect(p.cursor).toEqual({ phase: 2, epoch: 0, unit: 0, globalStep: 2 });
    // The cursor getter is a copy: writing to it changes nothing.
    (p.cursor as { unit: number }).unit = 9;
    expect(p.unit).toBe(0);

    p.setStream('policy', { epoch: 0, batch: 3, offset: 1 });
    expect(p.stream('policy')).toEqual({ epoch: 0, batch: 3, offset: 1 });
    expect(p.stream('joint')).toBeUndefined();
    p.fixLossReference(undefined);
    expect(p.lossReference).toBeUndefined();
    p.fixLossReference(2.5);
    p.fixLossReference(7);
    expect(p.lossReference).toBe(2.5);
    p.setHeldOutStart({ loss: 3, levels: [1, 2] });
    expect(() => p.setHeldOutStart({ loss: 4, levels: [2, 2] })).toThrow(/measured once/);
    p.addSeconds(2, 1.5);
    p.addSeconds(2, 0.25);
    p.addSeconds(7, 100); // outside 1..4: ignored
    expect(p.phaseSeconds).toEqual([0, 1.75, 0, 0]);

    const state = p.toState({ label: 'x', savedAt: 'now' });
    expect(state).toEqual({
      version: RUN_STATE_VERSION,
      label: 'x',
      cursor: { phase: 2, epoch: 0, unit: 0, globalStep: 2 },
      streams: { policy: { epoch: 0, batch: 3, offset: 1 } },
      lossReference: 2.5,
      heldOutStart: { loss: 3, levels: [1, 2] },
      phaseSeconds: [0, 1.75, 0, 0],
      savedAt: 'now',
    });
    // A run continued from that state starts where it stood, sharing nothing with it.
    const q = new RunProgress(state as RunStateJson);
    state.cursor.unit = 42;
    expect(q.cursor).toEqual({ phase: 2, epoch: 0, unit: 0, globalStep: 2 });
    expect(q.toState({ label: 'x', savedAt: 'now' })).toEqual({
      ...state,
      cursor: { ...state.cursor, unit: 0 },
    });
  });
});

describe('RunProgress update accounts', () => {
  const update = (flip: boolean) => ({
    hashes: ['a', 'b'],
    flipped: [false, flip],
    cost: 0.5,
    seconds: 0.25,
  });

  it('counts kept updates, images, cost, seconds and trials per phase, and survives a checkpoint', () => {
    const p = new RunProgress();
    p.recordUpdate(3, update(false));
    p.recordUpdate(3, update(true));
    p.recordTrials(2, 4);
    const a = p.updateAccounts;
    expect(a[0]).toEqual({ updates: 0, images: 0, cost: 0, seconds: 0, trials: 0, digest: '' });
    expect(a[1].trials).toBe(4);
    expect([a[2].updates, a[2].images, a[2].cost, a[2].seconds]).toEqual([2, 4, 1, 0.5]);
    expect(new RunProgress(p.toState()).updateAccounts).toEqual(a);
  });

  it('chains the images into a digest: equal for the same batches, different for another flip', () => {
    const digest = (flips: boolean[]) => {
      const p = new RunProgress();
      for (const f of flips) p.recordUpdate(1, update(f));
      return p.updateAccounts[0].digest;
    };
    expect(digest([false, true])).toBe(digest([false, true]));
    expect(digest([false, true])).not.toBe(digest([true, false]));
    expect(digest([false, true])).toMatch(/^[0-9a-f]{64}$/);
  });
});
