/**
 * Runs on a user's own image folder, end to end through runTraining: early warnings and the fatal error
 * reach train.log, an unreadable training split fails before a run directory exists, `rlpkd eval` names its
 * checkpoint and says when the run is unfinished, a resume prints no line for the epoch it finds complete,
 * and a checkpoint saved without optimizer state is refused for resuming.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluateRun } from '../../src/distill/evaluate-run';
import { runTraining, type TrainOptions } from '../../src/distill/pipeline';
import { makeImageFolder } from '../data/fixtures';
import { tempDir, tinyConfig, writeTinyModels } from './run-fixtures';

jest.setTimeout(180000);

/** A console stand-in: collects the text, and calls `on` with each write (to abort or fail mid-run). */
function fakeConsole(on: (text: string) => void = () => {}) {
  let text = '';
  const stream = {
    write(chunk: string | Uint8Array): boolean {
      const s = String(chunk);
      text += s;
      on(s);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return { stream, text: () => text };
}

/** An image folder with train/ (8 images) and val/ (4 images plus one that is not an image). */
async function ownData(dir: string): Promise<string> {
  const root = path.join(dir, 'data');
  await makeImageFolder(root, 'train', ['a', 'b'], 4);
  await makeImageFolder(root, 'val', ['a', 'b'], 2);
  fs.writeFileSync(path.join(root, 'val', 'a', 'broken.png'), 'not a PNG');
  return root;
}

function config(dir: string, root: string, extra: Record<string, unknown> = {}) {
  return tinyConfig(dir, writeTinyModels(dir), {
    data: { type: 'imagefolder', root, image_size: 32 },
    // one PPO iteration per phase-2 epoch: an interrupt after it falls between the epoch's last unit and its end
    rl: { ppo: { rollout_episodes: 8 } },
    phases: {
      pretrain: { epochs: 1 },
      policy: { epochs: 1 },
      joint: { enabled: false },
      meta: { enabled: false },
    },
    ...extra,
  });
}

/** Options that stop the run (Ctrl-C) once phase 1 is done: phase 2 then saves after its first unit. */
function interruptAfterPhase1(): { out: ReturnType<typeof fakeConsole>; options: Partial<TrainOptions> } {
  const controller = new AbortController();
  const out = fakeConsole((s) => {
    if (s.includes('phase 1 (pretrain) done')) controller.abort();
  });
  return { out, options: { signal: controller.signal, logger: { stream: out.stream, progress: 'lines' } } };
}

describe('a run on its own image folder', () => {
  it('logs everything to train.log, names the evaluated checkpoint and resumes without a stale line', async () => {
    const dir = tempDir('own-data');
    const root = await ownData(dir);
    const first = interruptAfterPhase1();
    const r = await runTraining({ config: config(dir, root), ...first.options });
    expect(r.status).toBe('interrupted');
    // The held-out loader's warning came before the run directory existed: shown at once, and in the log.
    const warning =
      /warn: skipping corrupt or missing image '.*broken\.png' in the held-out evaluation split 'val'/;
    expect(first.out.text()).toMatch(warning);
    const log = () => fs.readFileSync(path.join(r.runDir, 'train.log'), 'utf8');
    expect(log()).toMatch(warning);
    expect(log().match(/skipping corrupt/g)).toHaveLength(1);

    const unfinished = await evaluateRun({ run: r.runDir });
    expect(unfinished.checkpoint).toMatchObject({ final: false, next: { phase: 2, epoch: 1 } });
    expect(unfinished.checkpoint.label).toMatch(/^s\d{8}-p2-e0-u1$/);
    expect(unfinished.text.split('\n')[0]).toBe(
      `checkpoint ${unfinished.checkpoint.label}: the run is unfinished (next: phase 2, epoch 1); ` +
        `continue it with \`rlpkd train --resume ${r.runDir}\``,
    );

    const again = fakeConsole();
    const resumed = await runTraining({
      resume: r.runDir,
      logger: { stream: again.stream, progress: 'lines' },
    });
    expect(resumed.status).toBe('completed');
    // Phase 2's only epoch was complete when the run stopped: no "1/1 (100%) took 0s" line for it.
    expect(again.text()).not.toMatch(/phase 2 policy\s+epoch 1\/1/);
    expect(again.text()).toMatch(/warn: held-out split 'val': skipped 1 of 5 images \(corrupt or missing\)/);
    expect(log()).toMatch(/held-out split 'val': skipped 1 of 5 images/);

    const final = await evaluateRun({ run: r.runDir });
    expect(final.checkpoint).toEqual({
      label: 'final',
      dir: path.join(r.runDir, 'checkpoints', 'final'),
      final: true,
    });
    expect(final.text.split('\n')[0]).toBe('checkpoint final (final: the run finished)');
  });

  it('the fatal error of a run goes to train.log too', async () => {
    const dir = tempDir('own-data-fail');
    const root = await ownData(dir);
    const out = fakeConsole((s) => {
      if (s.includes('phase 1 (pretrain) done')) throw new Error('the console went away');
    });
    await expect(
      runTraining({ config: config(dir, root), logger: { stream: out.stream, progress: 'lines' } }),
    ).rejects.toThrow('the console went away');
    const [runDir] = fs.readdirSync(path.join(dir, 'runs'));
    const log = fs.readFileSync(path.join(dir, 'runs', runDir!, 'train.log'), 'utf8');
    expect(log).toMatch(/error: Error: the console went away/);
  });

  it('an unreadable training split fails before any run directory exists', async () => {
    const dir = tempDir('own-data-corrupt');
    const root = await ownData(dir);
    for (const c of ['a', 'b'])
      for (const f of fs.readdirSync(path.join(root, 'train', c)))
        fs.writeFileSync(path.join(root, 'train', c, f), 'truncated');
    await expect(
      runTraining({ config: config(dir, root), logger: { stream: fakeConsole().stream } }),
    ).rejects.toThrow(
      /^none of the 8 images of the training split 'train' under '.*' can be decoded \(first: '.*0\.png': /,
    );
    expect(fs.existsSync(path.join(dir, 'runs'))).toBe(false);
  });

  it('checkpoint.optimizer_state never: light checkpoints, and resume refuses them clearly', async () => {
    const dir = tempDir('own-data-light');
    const root = await ownData(dir);
    const { options } = interruptAfterPhase1();
    const r = await runTraining({
      config: config(dir, root, { checkpoint: { keep_last: 0, optimizer_state: 'never' } }),
      ...options,
    });
    expect(r.status).toBe('interrupted');
    expect(fs.readdirSync(path.join(r.runDir, 'checkpoints')).sort()).toEqual([
      'latest',
      path.basename(r.checkpoint),
    ]);
    await expect(runTraining({ resume: r.runDir, logger: { stream: fakeConsole().stream } })).rejects.toThrow(
      /was saved without optimizer state \(checkpoint\.optimizer_state: never\), which resuming needs$/,
    );
  });
});
