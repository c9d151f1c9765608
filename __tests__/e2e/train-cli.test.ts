/**
 * `rlpkd train` as a user runs it (the built CLI, `npm run build` first): the shipped COCO, ADE20K and
 * ImageNet configs on tiny dataset folders of each format (tiny epochs via --set), the error cases (one
 * clear message, non-zero exit, no partial checkpoint), corrupt images (logged skip or fatal), a channel
 * mismatch handled by an adapter, and Ctrl-C (exit 130 with a checkpoint, then --resume to the end).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { readEventFile } from '../../src/logging/tfevents';
import { loadModel } from '../../src/onnx/model-io';
import { createSession } from '../../src/runtime';
import { Rng } from '../../src/util/rng';
import { tempDir, writeTinyModels } from '../distill/run-fixtures';

jest.setTimeout(600000);

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'bin', 'rlpkd.js');

async function png(file: string, seed: number, size = 40): Promise<void> {
  const rng = new Rng(seed);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const px = Buffer.from(Uint8Array.from({ length: size * size * 3 }, () => rng.int(256)));
  await sharp(px, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toFile(file);
}

async function mask(file: string, seed: number, size = 40): Promise<void> {
  const rng = new Rng(seed);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const px = Buffer.from(Uint8Array.from({ length: size * size }, () => rng.int(4)));
  await sharp(px, { raw: { width: size, height: size, channels: 1 } })
    .png()
    .toFile(file);
}

async function makeCoco(root: string): Promise<void> {
  for (const [split, n] of [
    ['train2017', 10],
    ['val2017', 4],
  ] as const) {
    const images = [];
    const annotations = [];
    for (let i = 0; i < n; i++) {
      await png(path.join(root, split, `${i}.png`), i + (split === 'val2017' ? 100 : 0));
      images.push({ id: i + 1, file_name: `${i}.png`, width: 40, height: 40 });
      annotations.push({
        id: i + 1,
        image_id: i + 1,
        category_id: 3,
        bbox: [4, 5, 10, 12],
        area: 120,
        iscrowd: 0,
      });
    }
    const file = path.join(root, 'annotations', `instances_${split}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ images, annotations, categories: [{ id: 3, name: 'thing' }] }));
  }
}

async function makeAde20k(root: string): Promise<void> {
  for (const [split, n] of [
    ['training', 10],
    ['validation', 4],
  ] as const) {
    for (let i = 0; i < n; i++) {
      await png(path.join(root, 'images', split, `ADE_${i}.png`), i + 7);
      await mask(path.join(root, 'annotations', split, `ADE_${i}.png`), i);
    }
  }
}

async function makeImageFolder(root: string, corrupt = false): Promise<void> {
  let seed = 0;
  for (const split of ['train', 'val']) {
    for (const c of ['cat', 'dog']) {
      for (let i = 0; i < (split === 'train' ? 5 : 2); i++)
        await png(path.join(root, split, c, `${i}.png`), seed++);
    }
  }
  if (corrupt) fs.writeFileSync(path.join(root, 'train', 'cat', 'broken.png'), 'this is not a PNG file');
}

/** --set arguments that make any shipped config tiny (models, sizes, epochs, folders). */
function tinySets(dir: string, models: { teacher: string; student: string }, extra: string[] = []): string[] {
  const sets = [
    `models.teacher=${models.teacher}`,
    `models.student=${models.student}`,
    // The demo's detection head and task yardstick belong to its own teacher.
    'models.teacher_head=null',
    'rl.reward.yardstick=features',
    'data.synthetic.train_images=32',
    'data.synthetic.val_images=16',
    `run.output_dir=${path.join(dir, 'runs')}`,
    `distill.feature_cache.dir=${path.join(dir, 'cache')}`,
    'data.image_size=32',
    'data.batch_size=4',
    'data.num_workers=2',
    'rl.policy.hidden_dim=16',
    'rl.environment.num_parallel_envs=4',
    'rl.ppo.rollout_episodes=4',
    // One episode per environment and rollout: the demo's group of 4 episodes per image cannot divide it.
    'rl.ppo.group_size=1',
    'rl.ppo.minibatch_size=8',
    'rl.ppo.ppo_epochs=1',
    'phases.pretrain.epochs=1',
    'phases.policy.epochs=1',
    'phases.joint.epochs=1',
    'phases.meta.epochs=1',
    'maml.inner_steps=1',
    'maml.support_episodes=4',
    'maml.query_episodes=4',
    'logging.progress=lines',
    'logging.every_steps=1',
    ...extra,
  ];
  return sets.flatMap((s) => ['--set', s]);
}

function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, RLPKD_DEBUG: '', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runDirs(dir: string): string[] {
  const runs = path.join(dir, 'runs');
  return fs.existsSync(runs) ? fs.readdirSync(runs).map((d) => path.join(runs, d)) : [];
}

/** No temporary or state-less checkpoint folder anywhere under `dir`'s runs. */
function expectNoPartialCheckpoint(dir: string): void {
  for (const run of runDirs(dir)) {
    const ck = path.join(run, 'checkpoints');
    if (!fs.existsSync(ck)) continue;
    for (const e of fs.readdirSync(ck)) {
      expect(e.startsWith('.tmp-')).toBe(false);
      if (e !== 'latest') expect(fs.existsSync(path.join(ck, e, 'state.json'))).toBe(true);
    }
  }
}

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')))
    throw new Error('run `npm run build` before the e2e tests');
});

describe('rlpkd train on each dataset format', () => {
  it.each([
    ['coco', 'coco_detection.yaml', makeCoco, 'pkd'],
    ['ade20k', 'ade20k_segmentation.yaml', makeAde20k, 'cwd'],
    ['imagefolder', 'imagenet_classification.yaml', (r: string) => makeImageFolder(r), 'mse'],
  ] as const)('%s with configs/%s completes all four phases', async (_format, config, make, loss) => {
    const dir = tempDir(`cli-${_format}`);
    const models = writeTinyModels(dir);
    await make(path.join(dir, 'data'));
    const r = cli(
      [
        'train',
        '--config',
        path.join(ROOT, 'configs', config),
        ...tinySets(dir, models, [`data.root=${path.join(dir, 'data')}`]),
      ],
      dir,
    );
    expect(r.stderr).not.toMatch(/^error/m);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`held-out all-level distillation loss \\(${loss}, 4 images\\)`));
    expect(r.stdout).toMatch(/mean used cost: /);
    for (const p of [
      'phase 1 (pretrain) done',
      'phase 2 (policy) done',
      'phase 3 (joint) done',
      'phase 4 (meta) done',
    ]) {
      expect(r.stderr).toContain(p);
    }
    const [run] = runDirs(dir);
    for (const f of [
      'config.resolved.yaml',
      'metrics.jsonl',
      'summary.json',
      'policy-heatmap.png',
      'policy-heatmap.svg',
      'train.log',
    ]) {
      expect(fs.existsSync(path.join(run, f))).toBe(true);
    }
    // TensorBoard events read back (CRCs checked) with losses per level, rewards, PPO stats, GradNorm weights.
    const tb = path.join(run, 'tensorboard');
    const tags = new Set(
      fs
        .readdirSync(tb)
        .flatMap((f) =>
          readEventFile(path.join(tb, f)).flatMap((e) => e.summary?.value.map((v) => v.tag) ?? []),
        ),
    );
    for (const t of [
      'distill/level_loss/P2',
      'rl/reward',
      'ppo/approx_kl',
      'gradnorm/weight/P5',
      'rl/used_cost',
      'policy/heatmap_levels_x_heldout_images',
    ]) {
      expect(tags).toContain(t);
    }
    // `rlpkd eval` reproduces the run's own summary from its final checkpoint.
    const ev = cli(['eval', '--run', run, '--json'], dir);
    expect(ev.code).toBe(0);
    const summary = JSON.parse(fs.readFileSync(path.join(run, 'summary.json'), 'utf8'));
    const evaluated = JSON.parse(ev.stdout);
    expect(evaluated.lossAfter).toBe(summary.lossAfter);
    expect(evaluated.selection).toEqual(summary.selection);
    // The checkpoint evaluation beside it: no teacher head in this config, so no task metric, and why.
    expect(evaluated.task).toBeNull();
    expect(evaluated.teacherHead.skipped).toMatch(/models.teacher_head is not set/);
    expect(evaluated.fidelity.levels).toEqual(['P2', 'P3', 'P4', 'P5']);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'eval.json'), 'utf8'))).toEqual(evaluated);
    expect(fs.readFileSync(path.join(run, 'eval.md'), 'utf8')).toMatch(/## inference cost per image/);
    // The final student is a plain inference graph with the student's own outputs.
    const student = loadModel(path.join(run, 'checkpoints', 'final', 'student.onnx'));
    expect(student.graph.outputs.map((o) => o.name)).toEqual(['p2', 'p3', 'p4', 'p5']);
    const s = await createSession(student);
    const out = await s.run({ images: { data: new Float32Array(3 * 32 * 32), dims: [1, 3, 32, 32] } });
    expect(out.p2.dims).toEqual([1, 8, 8, 8]);
    await s.release();
  });
});

describe('rlpkd train: bad input gives one clear message and a non-zero exit', () => {
  const dir = tempDir('cli-errors');
  const models = writeTinyModels(dir);

  it('rejects an unknown config key, naming it and the allowed keys', () => {
    const r = cli(['train', '--set', 'distill.bogus=1'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: --set distill.bogus=1: unknown key 'distill.bogus'; allowed keys at 'distill': loss, /m,
    );
    expect(runDirs(dir)).toEqual([]);
  });

  it('reports a missing dataset root before creating a run directory', () => {
    const r = cli(
      [
        'train',
        '--config',
        path.join(ROOT, 'configs', 'coco_detection.yaml'),
        ...tinySets(dir, models, ['data.root=/nonexistent/coco']),
      ],
      dir,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: coco dataset root '\/nonexistent\/coco' does not exist/m);
    expect(r.stderr.match(/^error:/gm)).toHaveLength(1);
    expect(runDirs(dir)).toEqual([]);
  });

  it('reports a CUDA provider that is not installed, before creating a run directory', () => {
    // RLPKD_GPU_DIR points at an empty folder, so this holds whether or not this machine has the GPU
    // runtime installed (where it has, `rlpkd gpu doctor` and tools/gpu-check.sh check the real thing).
    const gpuDir = path.join(dir, 'no-gpu-runtime');
    const r = cli(
      ['train', '--ep', 'cuda', ...tinySets(dir, models, [`data.root=${path.join(dir, 'data')}`])],
      dir,
      { RLPKD_GPU_DIR: gpuDir },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^error: the CUDA execution provider is not installed: no GPU runtime is installed in ${gpuDir}$`,
        'm',
      ),
    );
    expect(r.stderr).toMatch(/^ {2}hint: run `npx rlpkd gpu install`/m);
    expect(r.stderr.match(/^error:/gm)).toHaveLength(1);
    expect(runDirs(dir)).toEqual([]);
  });

  it('reports teacher/student levels that do not match', () => {
    const big = tempDir('cli-mismatch');
    const teacher = path.join(big, 'teacher.onnx');
    const student = path.join(big, 'student.onnx');
    // A 64×64 student with an extra P6 level the teacher does not have.
    fs.copyFileSync(writeTinyModels(big).teacher, teacher);
    const { saveModel } = jest.requireActual(
      '../../src/onnx/model-io',
    ) as typeof import('../../src/onnx/model-io');
    const { tinyFpn } = jest.requireActual('../distill/fixtures') as typeof import('../distill/fixtures');
    saveModel(tinyFpn({ seed: 2, height: 64, width: 64, p6: true }), student);
    saveModel(tinyFpn({ seed: 1, height: 64, width: 64 }), teacher);
    const r = cli(['train', ...tinySets(big, { teacher, student }, ['data.image_size=64'])], big);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: the student's level P6 \('p6', stride 64\) has no teacher level of the same stride/m,
    );
    expect(runDirs(big)).toEqual([]);
  });

  it('skips a corrupt image with a warning naming it (on_corrupt skip), or stops on it (fatal)', async () => {
    const d = tempDir('cli-corrupt');
    const m = writeTinyModels(d);
    await makeImageFolder(path.join(d, 'data'), true);
    const config = path.join(ROOT, 'configs', 'imagenet_classification.yaml');
    const skip = cli(
      [
        'train',
        '--config',
        config,
        ...tinySets(d, m, [
          `data.root=${path.join(d, 'data')}`,
          'phases.meta.enabled=false',
          'phases.policy.enabled=false',
        ]),
      ],
      d,
    );
    expect(skip.code).toBe(0);
    expect(skip.stderr).toMatch(/warn: skipping corrupt or missing image '.*broken\.png'/);
    const fatal = cli(
      [
        'train',
        '--config',
        config,
        ...tinySets(d, m, [`data.root=${path.join(d, 'data')}`, 'data.on_corrupt=fatal', 'run.name=fatal']),
      ],
      d,
    );
    expect(fatal.code).toBe(1);
    expect(fatal.stderr).toMatch(/^error: corrupt or missing image '.*broken\.png'/m);
    expectNoPartialCheckpoint(d);
  });

  it('trains through a 1×1 adapter when the channel counts differ', () => {
    const d = tempDir('cli-adapter');
    const m = writeTinyModels(d, { teacherChannels: 16, studentChannels: 8 });
    const r = cli(
      [
        'train',
        ...tinySets(d, m, [
          `data.root=${path.join(d, 'data')}`,
          'data.synthetic.train_images=8',
          'data.synthetic.val_images=4',
        ]),
      ],
      d,
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /level P2: student has 8 channels, teacher 16; adding a 1×1 adapter on the student side/,
    );
    const [run] = runDirs(d);
    const student = loadModel(path.join(run, 'checkpoints', 'final', 'student.onnx'));
    expect(student.graph.initializers.some((t) => t.name.startsWith('adapter.'))).toBe(false);
  });
});

describe('rlpkd train: Ctrl-C', () => {
  it('saves a checkpoint and exits 130; --resume finishes the run', async () => {
    const dir = tempDir('cli-sigint');
    const models = writeTinyModels(dir);
    const args = [
      'train',
      ...tinySets(dir, models, [
        `data.root=${path.join(dir, 'data')}`,
        'data.synthetic.train_images=16',
        'data.synthetic.val_images=8',
        'phases.policy.epochs=3',
      ]),
    ];
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /phase 1 \(pretrain\) done/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    expect(stderr).toMatch(/^error: training interrupted; checkpoint saved in .*checkpoints\/s\d{8}-p2-/m);
    expect(stderr).toMatch(/hint: continue with: rlpkd train --resume /);
    expectNoPartialCheckpoint(dir);
    const [run] = runDirs(dir);
    const resumed = cli(['train', '--resume', run], dir);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/resuming .* \(phase 2, epoch 1\)/);
    expect(resumed.stdout).toMatch(/mean used cost: /);
  });
});
