import {
  ConfigError,
  configFromObject,
  resolveModelDims,
  stateDimFor,
  taskDataConfig,
} from '../../src/config';

const base = { models: { teacher: 't', student: 's' } };

describe('model-derived sizes', () => {
  it('state_dim follows the student: 1542 for 4 levels x 256 channels (a ResNet-FPN), by hand for others', () => {
    // global 2*256 + pyramid 4*256 + loss 1 + selected 4 + budget 1
    expect(stateDimFor([256, 256, 256, 256])).toBe(512 + 1024 + 1 + 4 + 1);
    expect(stateDimFor([256, 256, 256, 256])).toBe(1542);
    // tiny student: 3 levels of 16/32/64 channels -> 2*64 + 112 + 1 + 3 + 1
    expect(stateDimFor([16, 32, 64])).toBe(245);
    expect(() => stateDimFor([])).toThrow(ConfigError);
  });

  it('auto keys resolve from the student; explicit ones must agree', () => {
    const c = configFromObject(base);
    expect(resolveModelDims(c, [256, 256, 256, 256])).toEqual({ stateDim: 1542, maxSteps: 4, numLevels: 4 });
    const indep = configFromObject({ ...base, rl: { policy: { mode: 'independent' } } });
    expect(resolveModelDims(indep, [32, 32, 32, 32]).maxSteps).toBe(1);
    const fixed = configFromObject({
      ...base,
      rl: { policy: { state_dim: 1542 }, environment: { max_steps: 4 } },
    });
    expect(resolveModelDims(fixed, [256, 256, 256, 256]).stateDim).toBe(1542);
    expect(() => resolveModelDims(fixed, [64, 64, 64, 64])).toThrow(
      "rl.policy.state_dim is 1542 but the student's levels (channels [64, 64, 64, 64]) give 390",
    );
    const steps = configFromObject({ ...base, rl: { environment: { max_steps: 4 } } });
    expect(() => resolveModelDims(steps, [8, 8, 8])).toThrow(
      'rl.environment.max_steps is 4 but sequential mode with 3 pyramid levels takes 3',
    );
    const minLevels = configFromObject({ ...base, rl: { environment: { min_levels: 5 } } });
    expect(() => resolveModelDims(minLevels, [8, 8, 8, 8])).toThrow(
      /min_levels is 5 but the student has only 4/,
    );
  });
});

describe('cross-field rules', () => {
  it('rejects duplicate task names, duplicate levels and min_shapes > max_shapes', () => {
    expect(() => configFromObject({ ...base, maml: { tasks: [{ name: 'a' }, { name: 'a' }] } })).toThrow(
      "maml.tasks.1.name: got 'a'; duplicate task 'a'",
    );
    expect(() => configFromObject({ ...base, distill: { selection: ['p2', 'p2'] } })).toThrow(
      'distill.selection: got ["p2","p2"]; lists a level twice',
    );
    expect(() =>
      configFromObject({ ...base, data: { synthetic: { min_shapes: 5, max_shapes: 2 } } }),
    ).toThrow('data.synthetic.min_shapes: got 5; must not exceed data.synthetic.max_shapes (2)');
    expect(() => configFromObject({ ...base, maml: { tasks: [] } })).toThrow(
      /phase 4 \(phases.meta\) is enabled but no task/,
    );
    expect(
      configFromObject({ ...base, maml: { tasks: [] }, phases: { meta: { enabled: false } } }).maml.tasks,
    ).toEqual([]);
  });

  it('rl.ppo.group_size must divide the episodes each environment runs per rollout', () => {
    const ppo = (group_size: number, rollout_episodes: number, num_parallel_envs = 1) =>
      configFromObject({
        ...base,
        rl: { ppo: { group_size, rollout_episodes }, environment: { num_parallel_envs } },
      }).rl.ppo.group_size;
    expect(ppo(4, 32)).toBe(4);
    expect(ppo(2, 32, 4)).toBe(2); // 8 per environment
    expect(() => ppo(3, 32)).toThrow(/rl\.ppo\.group_size: .*does not divide the 32 episodes/);
    expect(() => ppo(4, 32, 4)).not.toThrow();
    expect(() => ppo(3, 32, 4)).toThrow(/does not divide the 8 episodes/);
  });

  it('selection accepts rl, all, random or a fixed list', () => {
    expect(configFromObject({ ...base, distill: { selection: 'all' } }).distill.selection).toBe('all');
    const r = configFromObject({ ...base, distill: { selection: 'random', random_cost: 0.2 } }).distill;
    expect([r.selection, r.random_cost]).toEqual(['random', 0.2]);
    expect(() => configFromObject({ ...base, distill: { selection: 'random', random_cost: 0 } })).toThrow(
      /distill\.random_cost/,
    );
    expect(configFromObject({ ...base, distill: { selection: ['p3', 'p5'] } }).distill.selection).toEqual([
      'p3',
      'p5',
    ]);
    expect(() => configFromObject({ ...base, distill: { selection: 'some' } })).toThrow(
      `distill.selection: got 'some'; expected "rl", "all", "random" or a list of level names (a fixed selection)`,
    );
  });
});

describe('taskDataConfig', () => {
  it('overlays a task dataset and drops split names that belonged to the run dataset', () => {
    const c = configFromObject({
      ...base,
      data: {
        type: 'coco',
        root: '/data/coco',
        split: 'train2017',
        annotations: '/data/a.json',
        batch_size: 3,
      },
      maml: {
        tasks: [
          { name: 'seg', data: { type: 'ade20k', root: '/data/ade' } },
          { name: 'lam', lambda_tradeoff: 1 },
        ],
      },
    });
    const seg = taskDataConfig(c, c.maml.tasks[0]!);
    expect(seg.type).toBe('ade20k');
    expect(seg.root).toBe('/data/ade');
    expect(seg.split).toBeUndefined();
    expect(seg.annotations).toBeUndefined();
    expect(seg.batch_size).toBe(3);
    expect(taskDataConfig(c, c.maml.tasks[1]!)).toBe(c.data);
  });
});
