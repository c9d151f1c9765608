import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import {
  ConfigError,
  configFromObject,
  demoConfigPath,
  loadConfig,
  packageRoot,
  overrideSets,
  parseOverride,
  writeResolvedConfig,
  type RunConfig,
} from '../../src/config';
import { InputFileError } from '../../src/errors';

const CONFIGS = path.join(packageRoot(), 'configs');
let tmp: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-config-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** The error a call throws (fails the test when it does not throw). */
function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

const MODELS = 'models:\n  teacher: t.onnx\n  student: s.onnx\n';

describe('shipped configs', () => {
  it.each([
    'default.yaml',
    'demo.yaml',
    'coco_detection.yaml',
    'ade20k_segmentation.yaml',
    'imagenet_classification.yaml',
    'memory_r101_r50.yaml',
  ])('%s validates and yields absolute paths', (name) => {
    const c = loadConfig(path.join(CONFIGS, name), { cwd: tmp });
    expect(path.isAbsolute(c.models.teacher)).toBe(true);
    expect(path.isAbsolute(c.data.root!)).toBe(true);
    expect(path.isAbsolute(c.run.output_dir)).toBe(true);
    // the seed defaults of the schema survive every extends chain unless a file changes them
    expect(c.rl.ppo.lr).toBe(3e-4);
    expect(c.rl.ppo.clip_epsilon).toBe(0.2);
    expect(c.rl.ppo.gamma).toBe(0.99);
    expect(c.rl.ppo.gae_lambda).toBe(0.95);
    expect(c.rl.environment.lambda_tradeoff).toBe(0.5);
    expect(c.gradnorm.alpha).toBe(1.5);
    expect(c.gradnorm.lr_weights).toBe(1e-2);
  });

  it('default.yaml spells out every key with its schema default', () => {
    const fromFile = loadConfig(path.join(CONFIGS, 'default.yaml'), { cwd: tmp });
    const fromSchema = configFromObject(
      { models: { teacher: fromFile.models.teacher, student: fromFile.models.student } },
      { cwd: tmp },
    );
    expect(fromFile).toEqual(fromSchema);
    const leaves = (v: unknown, prefix: string, out: Set<string>): Set<string> => {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        for (const [k, x] of Object.entries(v)) leaves(x, prefix ? `${prefix}.${k}` : k, out);
      } else if (v !== undefined) out.add(prefix);
      return out;
    };
    const written = leaves(
      YAML.parse(fs.readFileSync(path.join(CONFIGS, 'default.yaml'), 'utf8')),
      '',
      new Set(),
    );
    const expected = leaves(fromSchema, '', new Set());
    expected.delete('data.root'); // filled in by the loader for synthetic data (datasets/synthetic under the cwd)
    expect([...written].sort()).toEqual([...expected].sort());
  });

  it('demo.yaml is the embedded default: synthetic data, all four phases on', () => {
    expect(demoConfigPath()).toBe(path.join(CONFIGS, 'demo.yaml'));
    const c = loadConfig(demoConfigPath(), { cwd: tmp });
    expect(c.data.type).toBe('synthetic');
    expect(c.data.root).toBe(path.join(tmp, 'datasets', 'synthetic'));
    expect([c.phases.pretrain, c.phases.policy, c.phases.joint, c.phases.meta].every((p) => p.enabled)).toBe(
      true,
    );
    expect(c.models.teacher).toBe(path.join(packageRoot(), 'onnx-graphs', 'demo-teacher.onnx'));
    expect(c.models.teacher_head).toBe(path.join(packageRoot(), 'onnx-graphs', 'demo-teacher-head.onnx'));
    expect(c.models.student).toBe(path.join(packageRoot(), 'onnx-graphs', 'student.onnx'));
    expect([c.models.teacher, c.models.teacher_head!, c.models.student].every((f) => fs.existsSync(f))).toBe(
      true,
    );
    expect(c.data.synthetic.family).toBe('scales');
  });
});

describe('validation messages', () => {
  it('a typo at a nested level is one message with file:line:col and the allowed keys', () => {
    const file = write('bad.yaml', `${MODELS}rl:\n  ppo:\n    clip_epsilon: 0.1\n    lrr: 1e-4\n`);
    const err = errorOf(() => loadConfig(file, { cwd: tmp }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message.split('\n')).toHaveLength(1);
    expect(err.message).toBe(
      "bad.yaml:7:5: unknown key 'rl.ppo.lrr'; allowed keys at 'rl.ppo': lr, adam_eps, clip_epsilon, gamma, " +
        'gae_lambda, value_coef, entropy_coef, max_grad_norm, ppo_epochs, minibatch_size, rollout_episodes, ' +
        'target_kl, normalize_advantage, normalize_reward, group_size',
    );
  });

  it('a typo inside a list item names the item and its allowed keys', () => {
    const file = write('task.yaml', `${MODELS}maml:\n  tasks:\n    - name: a\n      lamda_tradeoff: 1\n`);
    expect(errorOf(() => loadConfig(file, { cwd: tmp })).message).toBe(
      "task.yaml:7:7: unknown key 'maml.tasks.0.lamda_tradeoff'; allowed keys at 'maml.tasks.0': name, lambda_tradeoff, budget, data",
    );
  });

  it('a typo at the top level lists the sections', () => {
    const err = errorOf(() => loadConfig(write('top.yaml', `${MODELS}phasez: {}\n`), { cwd: tmp }));
    expect(err.message).toMatch(
      /^top\.yaml:4:1: unknown key 'phasez'; allowed keys at the top level: run, models, data, distill, rl,/,
    );
  });

  it('a bad enum value names the key and the allowed values', () => {
    const err = errorOf(() =>
      loadConfig(write('enum.yaml', `${MODELS}data:\n  type: cocoo\n`), { cwd: tmp }),
    );
    expect(err.message).toBe(
      "enum.yaml:5:3: data.type: got 'cocoo', allowed values: imagefolder, coco, ade20k, synthetic",
    );
  });

  it('a wrong type and an out-of-range number name the key', () => {
    const err = errorOf(() =>
      loadConfig(
        write('range.yaml', `${MODELS}rl:\n  ppo:\n    gamma: 1.5\n  policy:\n    hidden_dim: big\n`),
        { cwd: tmp },
      ),
    );
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines).toContain('range.yaml:6:5: rl.ppo.gamma: got 1.5; expected number to be <=1');
    expect(lines).toContain("range.yaml:8:5: rl.policy.hidden_dim: expected number, got string 'big'");
  });

  it('a bad budget names the key and the accepted forms', () => {
    const err = errorOf(() =>
      configFromObject({
        models: { teacher: 't', student: 's' },
        rl: { environment: { budget: [0.9, 0.3] } },
      }),
    );
    expect(err.message).toBe(
      'rl.environment.budget: got [0.9,0.3]; a budget range [min, max] needs min <= max',
    );
  });

  it('a missing required key and cross-field rules are reported by key', () => {
    expect(errorOf(() => configFromObject({})).message).toBe('models is required (object)');
    expect(errorOf(() => configFromObject({ models: { teacher: 't' } })).message).toBe(
      'models.student is required (string)',
    );
    const wide = errorOf(() =>
      configFromObject({ models: { teacher: 't', student: 's' }, rl: { environment: { budget: 'x' } } }),
    );
    expect(wide.message).toBe(
      "rl.environment.budget: got 'x'; expected a budget in (0, 1] or a range [min, max] with 0 < min <= max <= 1",
    );
    const err = errorOf(() =>
      configFromObject({ models: { teacher: 't', student: 's' }, data: { type: 'coco' } }),
    );
    expect(err.message).toBe("data.root: required for data.type 'coco' (the dataset folder)");
  });

  it('YAML syntax errors carry file:line:col', () => {
    const err = errorOf(() => loadConfig(write('syntax.yaml', `${MODELS}rl:\n  ppo: [1, 2\n`), { cwd: tmp }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/^syntax\.yaml:\d+:\d+: YAML error: /);
    const dup = errorOf(() =>
      loadConfig(write('dup.yaml', `${MODELS}run:\n  seed: 1\n  seed: 2\n`), { cwd: tmp }),
    );
    expect(dup.message).toMatch(/^dup\.yaml:6:3: YAML error: .*unique/i);
  });

  it('defaults fill omitted nested sections', () => {
    const c = configFromObject({ models: { teacher: 't', student: 's' } });
    expect(c.data.normalize.mean).toEqual([0.485, 0.456, 0.406]);
    expect(c.phases).toEqual({
      pretrain: { enabled: true, epochs: 10 },
      policy: { enabled: true, epochs: 20 },
      joint: { enabled: true, epochs: 10, schedule: 'epochs' },
      meta: { enabled: true, epochs: 10 },
    });
    expect(c.rl.policy.state_dim).toBe('auto');
    expect(c.rl.policy.hidden_dim).toBe(256);
    expect(c.rl.environment.min_levels).toBe(1);
  });
});

describe('extends and --set', () => {
  it('merges sections, replaces lists and values, and resolves paths per file', () => {
    write(
      'base/base.yaml',
      `${MODELS}data:\n  type: coco\n  root: coco-data\n  batch_size: 4\nmaml:\n  tasks: [{name: a}, {name: b}]\n`,
    );
    const child = write(
      'child.yaml',
      'extends: base/base.yaml\ndata:\n  batch_size: 2\nmaml:\n  tasks: [{name: c}]\n',
    );
    const c = loadConfig(child, { cwd: tmp });
    expect(c.data.type).toBe('coco');
    expect(c.data.batch_size).toBe(2);
    expect(c.data.root).toBe(path.join(tmp, 'base', 'coco-data')); // relative to base.yaml, not child.yaml
    expect(c.models.teacher).toBe(path.join(tmp, 'base', 't.onnx'));
    expect(c.maml.tasks.map((t) => t.name)).toEqual(['c']);
  });

  it('--set values are typed by YAML and applied in order after the files', () => {
    const file = write('c.yaml', MODELS);
    const elsewhere = path.join(tmp, 'cwd');
    const c = loadConfig(file, {
      cwd: elsewhere,
      overrides: [
        'rl.ppo.lr=1e-4',
        'rl.ppo.lr=3e-5',
        'data.shuffle=false',
        'data.image_size=[256,320]',
        'rl.environment.budget=[0.3,1]',
        'data.type=imagefolder',
        'data.root=imgs',
        'maml.tasks.0.name=only',
        'maml.tasks.0.lambda_tradeoff=0.7',
        'distill.grad_clip=null',
      ],
    });
    expect(c.rl.ppo.lr).toBe(3e-5);
    expect(c.data.shuffle).toBe(false);
    expect(c.data.image_size).toEqual([256, 320]);
    expect(c.rl.environment.budget).toEqual([0.3, 1]);
    expect(c.data.root).toBe(path.join(elsewhere, 'imgs')); // --set paths are relative to the current folder
    expect(c.maml.tasks[0]).toEqual({ name: 'only', lambda_tradeoff: 0.7 });
    expect(c.distill.grad_clip).toBeNull();
  });

  it('an unknown --set key lists the allowed keys at its level', () => {
    const file = write('c.yaml', MODELS);
    expect(errorOf(() => loadConfig(file, { overrides: ['rl.ppo.lrr=1'] })).message).toBe(
      "--set rl.ppo.lrr=1: unknown key 'rl.ppo.lrr'; allowed keys at 'rl.ppo': lr, adam_eps, clip_epsilon, gamma, " +
        'gae_lambda, value_coef, entropy_coef, max_grad_norm, ppo_epochs, minibatch_size, rollout_episodes, ' +
        'target_kl, normalize_advantage, normalize_reward, group_size',
    );
    expect(errorOf(() => loadConfig(file, { overrides: ['rl.ppo.lr.x=1'] })).message).toBe(
      "--set rl.ppo.lr.x=1: 'rl.ppo.lr' is a value, not a section",
    );
    expect(errorOf(() => loadConfig(file, { overrides: ['rl.ppo.lr'] })).message).toMatch(
      /expected dotted\.key=value/,
    );
  });

  it('a bad --set value is reported against the --set, not the file', () => {
    const file = write('c.yaml', MODELS);
    const err = errorOf(() => loadConfig(file, { overrides: ['distill.loss=kl'] }));
    expect(err.message).toBe("--set distill.loss=kl: distill.loss: got 'kl', allowed values: mse, pkd, cwd");
  });

  it('a bad key in an extended file points into that file', () => {
    write('base.yaml', `${MODELS}gradnorm:\n  alpah: 1.5\n`);
    const err = errorOf(() => loadConfig(write('child.yaml', 'extends: base.yaml\n'), { cwd: tmp }));
    expect(err.message).toMatch(
      /^base\.yaml:5:3: unknown key 'gradnorm\.alpah'; allowed keys at 'gradnorm': enabled, alpha,/,
    );
  });

  it('detects extends cycles and missing parents', () => {
    write('a.yaml', 'extends: b.yaml\n');
    write('b.yaml', 'extends: [a.yaml]\n');
    const cycle = errorOf(() => loadConfig(path.join(tmp, 'a.yaml'), { cwd: tmp }));
    expect(cycle).toBeInstanceOf(ConfigError);
    expect(cycle.message).toBe('config extends cycle: a.yaml -> b.yaml -> a.yaml');
    const missing = errorOf(() => loadConfig(write('m.yaml', `${MODELS}extends: nope.yaml\n`), { cwd: tmp }));
    expect(missing).toBeInstanceOf(InputFileError);
    expect(missing.message).toMatch(/^m\.yaml:4:1: extends 'nope\.yaml', which does not exist/);
    expect(errorOf(() => loadConfig(path.join(tmp, 'none.yaml'), { cwd: tmp })).message).toBe(
      "config file 'none.yaml' does not exist",
    );
  });

  it('parseOverride types values with YAML', () => {
    expect(parseOverride('a.b=3e-4')).toEqual({ path: ['a', 'b'], value: 3e-4 });
    expect(parseOverride('a.0=true')).toEqual({ path: ['a', 0], value: true });
    expect(parseOverride('a=[1,2]')).toEqual({ path: ['a'], value: [1, 2] });
    expect(parseOverride('a=x=y')).toEqual({ path: ['a'], value: 'x=y' });
  });
});

describe('unsetting keys and model paths', () => {
  it('--set key=null, ~ or an empty value unsets an optional key; a nullable key keeps null', () => {
    const file = write(
      'c.yaml',
      `${MODELS}data:\n  type: imagefolder\n  root: d\n  val_split: val\n  holdout: 5\ndistill:\n  grad_clip: 1\n`,
    );
    expect(loadConfig(file, { cwd: tmp }).data.val_split).toBe('val');
    for (const v of ['null', '~', '']) {
      const c = loadConfig(file, { cwd: tmp, overrides: [`data.val_split=${v}`, `data.holdout=${v}`] });
      expect(c.data.val_split).toBeUndefined();
      expect(c.data.holdout).toBe(32); // back to the schema default
    }
    expect(
      loadConfig(file, { cwd: tmp, overrides: ['distill.grad_clip=null'] }).distill.grad_clip,
    ).toBeNull();
    // A required key cannot be unset: the message names it.
    expect(errorOf(() => loadConfig(file, { cwd: tmp, overrides: ['models.student=~'] })).message).toMatch(
      /models\.student is required/,
    );
  });

  it('overrideSets says whether --set gives a key a value (the last one wins; an unset does not count)', () => {
    expect(overrideSets(['data.val_split=val'], 'data.val_split')).toBe(true);
    expect(overrideSets(['data.val_split=val', 'data.val_split=null'], 'data.val_split')).toBe(false);
    expect(overrideSets(['data.split=train'], 'data.val_split')).toBe(false);
  });

  it('requireModelFiles names where a missing model was set and the folder it was resolved against', () => {
    write('models/s.onnx', 'x');
    const file = write(
      'configs/c.yaml',
      'models:\n  teacher: ../models/t.onnx\n  student: ../models/s.onnx\n',
    );
    expect(() => loadConfig(file, { cwd: tmp })).not.toThrow(); // off by default
    const err = errorOf(() => loadConfig(file, { cwd: tmp, requireModelFiles: true })) as InputFileError;
    expect(err).toBeInstanceOf(InputFileError);
    expect(err.message).toBe(
      `models.teacher '${path.join(tmp, 'models', 't.onnx')}' (configs/c.yaml:2:3) does not exist`,
    );
    expect(err.hint).toContain(`resolved against the folder of configs/c.yaml, ${path.join(tmp, 'configs')}`);
    expect(err.hint).toContain('`rlpkd models build`');
    expect(err.hint).toContain('`python3 tools/export_fpn.py`');
    const viaSet = errorOf(() =>
      loadConfig(file, { cwd: tmp, requireModelFiles: true, overrides: ['models.teacher=t2.onnx'] }),
    ) as InputFileError;
    expect(viaSet.message).toMatch(/\(--set models\.teacher=t2\.onnx\) does not exist$/);
    expect(viaSet.hint).toContain(`resolved against the current folder, ${tmp}`);
  });
});

describe('resolved config', () => {
  it('writes config.resolved.yaml atomically and reloads to the same config', () => {
    const c = loadConfig(path.join(CONFIGS, 'coco_detection.yaml'), {
      cwd: tmp,
      overrides: ['rl.ppo.lr=1e-5'],
    });
    const file = writeResolvedConfig(tmp, c, ['configs/coco_detection.yaml']);
    expect(path.basename(file)).toBe('config.resolved.yaml');
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const again: RunConfig = loadConfig(file, { cwd: os.tmpdir() });
    expect(again).toEqual(c);
  });
});
