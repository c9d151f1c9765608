/**
 * The run configuration: one zod schema that is the single source of truth for keys, types, defaults and
 * the documentation of every key (`.describe()`). Every object is a `z.strictObject`, so a typo at any depth
 * is an error, and every nested section uses `.prefault({})`, so its defaults apply when it is omitted.
 *
 * Paths: model files and dataset folders (the keys listed in INPUT_PATH_KEYS) are resolved against the folder of
 * the YAML file that sets them (the current folder for `--set`); output folders against the current folder.
 * After loading, those are absolute. Split names and COCO annotation files are relative to data.root (as
 * they are in the dataset's own layout), resolved by the dataset readers.
 */
import { z } from 'zod';
import { ConfigError } from './config-error';
import { POLICY_STATE_KINDS, stateLayout, type PolicyStateKind, type StateLevel } from '../rl/policy-state';

/** Dotted keys holding input paths; `*` matches an array index. Resolved relative to the file that sets them. */
export const INPUT_PATH_KEYS: readonly string[] = [
  'models.teacher',
  'models.student',
  'models.teacher_head',
  'data.root',
  'maml.tasks.*.data.root',
];

/** Dotted keys holding output or cache folders; resolved against the current folder. */
export const OUTPUT_PATH_KEYS: readonly string[] = ['run.output_dir', 'distill.feature_cache.dir'];

const posInt = () => z.number().int().positive();
const nonNegInt = () => z.number().int().nonnegative();
const unit = () => z.number().gt(0).lte(1);

/** A budget: one fraction of the full-pyramid distillation cost, or a [min, max] range sampled per episode. */
export const budgetSchema = z
  .union(
    [
      unit(),
      z
        .tuple([unit(), unit()])
        .refine(([lo, hi]) => lo <= hi, { message: 'a budget range [min, max] needs min <= max' }),
    ],
    { error: 'expected a budget in (0, 1] or a range [min, max] with 0 < min <= max <= 1' },
  )
  .describe(
    'share of the full-pyramid distillation cost an episode may spend: a fixed number in (0, 1], or [min, max] ' +
      'to sample one uniformly per episode (the policy then sees it as "budget remaining")',
  );

const levelNames = z.array(z.string().min(1)).min(1);

export const runSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-" only')
    .default('rlpkd')
    .describe('run name; the run directory is <output_dir>/<name>-<timestamp>/'),
  output_dir: z
    .string()
    .min(1)
    .default('runs')
    .describe('folder that receives run directories (relative to the current folder)'),
  seed: nonNegInt()
    .default(0)
    .describe('seed of every random choice: data order, flips, initialisation, budgets, action sampling'),
  ep: z
    .enum(['cpu', 'cuda', 'webgpu', 'auto'])
    .default('cpu')
    .describe(
      'onnxruntime execution provider; auto = cuda when `rlpkd gpu install` was run, else cpu; webgpu = ' +
        "onnxruntime-node's bundled WebGPU provider (the CLI --ep overrides it)",
    ),
});

const modelsSchema = z.strictObject({
  teacher: z
    .string()
    .min(1)
    .describe('teacher ResNet-FPN ONNX file (frozen); relative to the YAML file that sets it'),
  student: z
    .string()
    .min(1)
    .describe('student ResNet-FPN ONNX file (trained); relative to the YAML file that sets it'),
  teacher_head: z
    .string()
    .min(1)
    .optional()
    .describe(
      "the teacher's task head as an ONNX graph (pyramid levels in, task outputs out; `rlpkd teach` writes " +
        'one): eval scores every backbone through it; relative to the YAML file that sets it',
    ),
  levels: z
    .union([z.literal('auto'), levelNames], { error: 'expected "auto" or a list of pyramid output names' })
    .default('auto')
    .describe(
      'pyramid outputs to distil, finest first (e.g. [p2, p3, p4, p5]); auto = detected from the graphs; ' +
        'teacher and student must have the same names and spatial sizes',
    ),
  untie_shared_initializers: z
    .boolean()
    .default(true)
    .describe('give each consumer of a deduplicated initializer (torch.onnx.export) its own trainable copy'),
});

const syntheticSchema = z.strictObject({
  family: z
    .enum(['shapes', 'scales'])
    .default('shapes')
    .describe(
      'scene family: shapes (1..N shapes of similar sizes; the demo) or scales (scenes of tiny, medium, large or ' +
        'mixed objects, each image tagged with its object-size bin; min_shapes/max_shapes do not apply)',
    ),
  train_images: posInt().default(256).describe('number of generated training scenes'),
  val_images: posInt().default(64).describe('number of generated held-out scenes'),
  image_size: z
    .number()
    .int()
    .min(16)
    .max(2048)
    .default(128)
    .describe('side of the generated square images in pixels (data.image_size still sets the model input)'),
  min_shapes: posInt().default(1).describe('fewest shapes per scene'),
  max_shapes: posInt().default(4).describe('most shapes per scene'),
  seed: nonNegInt()
    .default(0)
    .describe('generation seed (separate from run.seed so every run sees the same scenes)'),
});

const normalizeSchema = z.strictObject({
  mean: z
    .tuple([z.number(), z.number(), z.number()])
    .default([0.485, 0.456, 0.406])
    .describe('per-channel RGB mean of [0, 1] pixels (ImageNet default)'),
  std: z
    .tuple([z.number().positive(), z.number().positive(), z.number().positive()])
    .default([0.229, 0.224, 0.225])
    .describe('per-channel RGB std of [0, 1] pixels (ImageNet default)'),
});

export const dataTypeSchema = z
  .enum(['imagefolder', 'coco', 'ade20k', 'synthetic'])
  .describe(
    'dataset format: imagefolder (class sub-folders), coco (images + instances JSON), ade20k (images + PNG ' +
      'label masks), synthetic (generated shapes; the demo)',
  );

export const dataSchema = z.strictObject({
  type: dataTypeSchema.default('synthetic'),
  root: z
    .string()
    .min(1)
    .optional()
    .describe(
      'dataset folder (relative to the YAML file that sets it); required except for synthetic, which ' +
        'defaults to datasets/synthetic under the current folder',
    ),
  split: z
    .string()
    .min(1)
    .optional()
    .describe('training split: imagefolder train, coco train2017, ade20k training, synthetic train'),
  val_split: z
    .string()
    .min(1)
    .optional()
    .describe(
      'held-out split: imagefolder val, coco val2017, ade20k validation, synthetic val; when it is absent ' +
        '(or unset with --set data.val_split=null), data.holdout images of the training split are held out ' +
        'instead, with a notice; a split given with --set must exist',
    ),
  annotations: z
    .string()
    .min(1)
    .optional()
    .describe(
      'coco only: instances JSON, relative to data.root (default annotations/instances_<split>.json)',
    ),
  val_annotations: z
    .string()
    .min(1)
    .optional()
    .describe(
      'coco only: instances JSON of the held-out split, relative to data.root (default ' +
        'annotations/instances_<val_split>.json)',
    ),
  image_size: z
    .union([posInt(), z.tuple([posInt(), posInt()])], { error: 'expected a size N or [height, width]' })
    .default(224)
    .describe('model input size: N (square) or [height, width]; images are resized to it (no crop)'),
  batch_size: posInt().default(8).describe('images per batch'),
  num_workers: posInt().default(4).describe('images decoded concurrently (sharp runs on libuv threads)'),
  prefetch: nonNegInt().default(2).describe('batches prepared ahead while the engine runs'),
  shuffle: z.boolean().default(true).describe('shuffle the training order each epoch (seeded)'),
  hflip: z
    .number()
    .min(0)
    .max(1)
    .default(0.5)
    .describe('probability of a horizontal flip of a training image (the teacher cache keys on the flip)'),
  normalize: normalizeSchema.prefault({}).describe('pixel normalisation after scaling to [0, 1]'),
  on_corrupt: z
    .enum(['skip', 'fatal'])
    .default('skip')
    .describe('a corrupt or missing image: skip it with a logged warning naming its path, or stop the run'),
  holdout: nonNegInt()
    .default(32)
    .describe('held-out images used for evaluation when the dataset has no val split folder'),
  max_images: posInt()
    .optional()
    .describe('use only the first N images of each split (sorted by path), for quick runs'),
  synthetic: syntheticSchema.prefault({}).describe('synthetic scene generator (data.type synthetic)'),
});

const optimizerSchema = z.strictObject({
  type: z.enum(['adamw', 'sgd']).default('adamw').describe('student optimizer'),
  lr: z.number().positive().default(1e-4).describe('student learning rate (seed lr_model 1e-4)'),
  weight_decay: z.number().min(0).default(0).describe('decoupled weight decay (adamw) or L2 (sgd)'),
  betas: z
    .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
    .default([0.9, 0.999])
    .describe('adamw moment decay rates'),
  eps: z.number().positive().default(1e-8).describe('adamw epsilon'),
  momentum: z.number().min(0).lt(1).default(0.9).describe('sgd momentum'),
});

const featureCacheSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe('cache the frozen teacher pyramid features per (image, preprocessing, flip)'),
  dir: z
    .string()
    .min(1)
    .default('.rlpkd-cache/features')
    .describe('cache folder (relative to the current folder); shared across runs, content-addressed'),
  max_size_mb: z
    .number()
    .positive()
    .default(2048)
    .describe('bound on the cache size; least recently used entries are evicted beyond it'),
});

const distillSchema = z.strictObject({
  loss: z
    .enum(['mse', 'pkd', 'cwd'])
    .default('mse')
    .describe(
      'per-level loss, mean-reduced: mse, pkd (normalized MSE / 2), cwd (channel-wise spatial KL); the RL ' +
        'reward measures with the same distance',
    ),
  cwd_tau: z.number().positive().default(1).describe('temperature of the cwd loss'),
  selection: z
    .union([z.enum(['rl', 'all', 'random']), levelNames], {
      error: 'expected "rl", "all", "random" or a list of level names (a fixed selection)',
    })
    .default('rl')
    .describe(
      'which levels each image distils: rl = the policy decides per image; all = uniform KD; a list = one ' +
        'fixed selection for every image (NAS results); random = a seeded random non-empty subset per image ' +
        'whose expected cost is distill.random_cost (the ablation baseline); all share one code path',
    ),
  random_cost: z
    .number()
    .gt(0)
    .lte(1)
    .default(0.5)
    .describe(
      'selection random: the expected cost share of the subset drawn per image (subsets drawn with ' +
        'probability ∝ exp(−β·cost), β solved so the mean cost is this)',
    ),
  grad_clip: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe('clip the student gradient to this global norm (null = off; Table 5 "clipping" baseline)'),
  updates: z
    .enum(['pruned', 'masked'])
    .default('pruned')
    .describe(
      'levels an image did not select: pruned = the batch is grouped by selected levels and each group runs ' +
        'a gradient graph pruned to them (saved cost is saved time); masked = every update runs the ' +
        'all-levels graph with the level mask in the loss (the same update up to float32 rounding)',
    ),
  optimizer: optimizerSchema.prefault({}).describe('student optimizer'),
  feature_cache: featureCacheSchema.prefault({}).describe('teacher feature cache on disk'),
  task_loss_weight: z
    .number()
    .min(0)
    .default(0)
    .describe(
      "weight of the student's own task loss on the labels (0 = off): the student carries a copy of " +
        "models.teacher_head (same architecture, initialised from the teacher head's weights, so a short " +
        'schedule starts from a head that already reads a teacher-like pyramid and the distilled and ' +
        'labels-only students start alike) and trains it with its backbone in the same step as the ' +
        "distillation losses; needs models.teacher_head and a dataset with the head task's labels",
    ),
  distill_weight: z
    .number()
    .min(0)
    .default(1)
    .describe(
      'weight of the (selected, level-weighted) distillation loss beside the task loss (only used with ' +
        'task_loss_weight > 0)',
    ),
  labels_only_baseline: z
    .boolean()
    .default(false)
    .describe(
      'also train a labels-only student (distillation weight 0) on the same schedule: beside every ' +
        'phase-1/3 update, on the same images, flips and optimizer; needs task_loss_weight > 0',
    ),
});

const policySchema = z.strictObject({
  mode: z
    .enum(['sequential', 'independent'])
    .default('sequential')
    .describe(
      'sequential = LSTM cell deciding level by level; independent = MLP, all levels at once (ablation)',
    ),
  state_dim: z
    .union([z.literal('auto'), posInt()], { error: 'expected "auto" or a positive integer' })
    .default('auto')
    .describe(
      'policy input size; auto = derived from the student: 2*C_coarsest + sum(C_l) + 1 + L + 1 ' +
        '(1542 for 4 levels x 256 channels); a number must equal that',
    ),
  state: z
    .enum(POLICY_STATE_KINDS as [PolicyStateKind, ...PolicyStateKind[]])
    .default('train')
    .describe(
      "policy state: train = SPEC.md's state (with the image's loss against the teacher); deploy = only " +
        'what the student computes before deciding (pooled trunk features, selected levels, budget): ' +
        'needed for `rlpkd export-policy`',
    ),
  hidden_dim: posInt().default(256).describe('LSTM / MLP hidden size'),
  normalize_state: z
    .boolean()
    .default(true)
    .describe('running mean/std state normalisation, saved with the policy'),
});

const ppoSchema = z.strictObject({
  lr: z.number().positive().default(3e-4).describe('policy Adam learning rate'),
  adam_eps: z.number().positive().default(1e-5).describe('policy Adam epsilon'),
  clip_epsilon: z.number().positive().lt(1).default(0.2).describe('PPO ratio clip'),
  gamma: z.number().min(0).max(1).default(0.99).describe('discount factor'),
  gae_lambda: z.number().min(0).max(1).default(0.95).describe('GAE lambda'),
  value_coef: z.number().min(0).default(0.5).describe('value loss coefficient'),
  entropy_coef: z.number().min(0).default(0.01).describe('entropy bonus coefficient'),
  max_grad_norm: z.number().positive().default(0.5).describe('policy gradient-norm clip'),
  ppo_epochs: posInt().default(4).describe('passes over each rollout'),
  minibatch_size: posInt().default(64).describe('transitions per PPO minibatch'),
  rollout_episodes: posInt().default(64).describe('episodes (images) collected per PPO update'),
  target_kl: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe('stop the PPO epochs early when the approximate KL exceeds this (null = off)'),
  normalize_advantage: z.boolean().default(true).describe('normalize advantages per minibatch'),
  normalize_reward: z.boolean().default(true).describe('scale rewards by the running std of the return'),
  group_size: posInt()
    .default(1)
    .describe(
      'phase 2: episodes per image (same budget); > 1 scores each against the mean return of the others on ' +
        'its image (leave-one-out baseline) instead of GAE; rollout_episodes / num_parallel_envs must be a multiple',
    ),
});

const environmentSchema = z.strictObject({
  lambda_tradeoff: z
    .number()
    .min(0)
    .default(0.5)
    .describe('lambda in reward = (L_before - L_after) / L_before + lambda * (1 - used_cost)'),
  max_steps: z
    .union([z.literal('auto'), posInt()], { error: 'expected "auto" or a positive integer' })
    .default('auto')
    .describe(
      'decisions per episode; auto = number of pyramid levels in sequential mode (4 for P2..P5), 1 in independent mode',
    ),
  budget: budgetSchema.default(1),
  min_levels: nonNegInt().default(1).describe('levels every image must distil, enforced inside the sampler'),
  num_parallel_envs: posInt()
    .default(8)
    .describe('images per batched distillation update (ParallelDistillationEnv)'),
  trial_optimizer_state: z
    .enum(['fresh', 'current', 'preconditioned'])
    .default('fresh')
    .describe(
      "the student optimizer state an episode's trial update starts from: fresh (a new optimizer's first " +
        "step; with AdamW every weight moves by about lr), current (the run's moments: the update a kept step " +
        "would make now, mostly the run's momentum whatever the image selected) or preconditioned (the image's " +
        "own gradient scaled by the run's second moments, no momentum: lr·g/√(v̂ + g²) with AdamW)",
    ),
  trial_lr_scale: z
    .number()
    .positive()
    .default(1)
    .describe(
      "multiplies the learning rate of an episode's trial update: a smaller step measures the first-order " +
        'effect of the selection rather than the overshoot of a full step on one image (see `rlpkd eval --rewards`)',
    ),
  level_order: z
    .enum(['fine_to_coarse', 'coarse_to_fine'])
    .default('fine_to_coarse')
    .describe('order of the sequential decisions: P2 first, or P5 first'),
});

const rewardSchema = z.strictObject({
  yardstick: z
    .enum(['features', 'task'])
    .default('features')
    .describe(
      "what L_before/L_after of the reward measure: features = the image's all-level distillation loss; " +
        "task = the image's task loss with the student's pyramid fed to the teacher's frozen head " +
        '(models.teacher_head; needs labels); trial updates train as kept updates do either way (the selected ' +
        'distillation losses, plus the task loss when task_loss_weight > 0)',
    ),
  quality: z
    .enum(['relative', 'share'])
    .default('relative')
    .describe(
      "the reward's quality term: relative = (L_before − L_after)/L_before (SPEC.md); share = the update's gain " +
        'as a share of the gain an all-level trial update of the same image achieves (one more trial per batch ' +
        'of images): it takes out how much an image can improve at all, so the reward says which levels carry ' +
        "the image's gain; scores are ~1 rather than ~0.01, so λ is set accordingly (src/rl/reward-quality.ts)",
    ),
});

const rlSchema = z.strictObject({
  policy: policySchema.prefault({}).describe('policy network'),
  ppo: ppoSchema.prefault({}).describe('PPO trainer'),
  environment: environmentSchema.prefault({}).describe('distillation MDP'),
  reward: rewardSchema.prefault({}).describe('the reward of the level-selection MDP'),
});

const gradnormSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('balance the per-level loss weights (off = "RL w/o GradNorm")'),
  alpha: z.number().min(0).default(1.5).describe('GradNorm asymmetry alpha'),
  lr_weights: z.number().positive().default(1e-2).describe('learning rate of the level weights'),
  shared_parameter: z
    .string()
    .min(1)
    .default('auto')
    .describe('parameter W where gradient norms are measured; auto = the last one every level depends on'),
});

const phaseSchema = (epochs: number, what: string) =>
  z
    .strictObject({
      enabled: z.boolean().default(true).describe(`run this phase (${what})`),
      epochs: nonNegInt().default(epochs).describe(`epochs of this phase (seed ${epochs})`),
    })
    .prefault({});

const phasesSchema = z.strictObject({
  pretrain: phaseSchema(10, 'phase 1: distillation with uniform level weights').describe('phase 1'),
  policy: phaseSchema(20, 'phase 2: RL policy learning, student fixed').describe('phase 2'),
  joint: z
    .strictObject({
      enabled: z
        .boolean()
        .default(true)
        .describe('run this phase (phase 3: joint fine-tuning of policy and student with GradNorm)'),
      epochs: nonNegInt().default(10).describe('epochs of this phase (seed 10)'),
      schedule: z
        .enum(['epochs', 'episodes'])
        .default('epochs')
        .describe(
          'images of a fixed or random selection in phase 3: epochs = passes over the training split in ' +
            'data.batch_size batches; episodes = exactly the images and batches an rl run trains on ' +
            '(its episode stream), so a comparison gets the same student updates (rlpkd ablate sets it)',
        ),
    })
    .prefault({})
    .describe('phase 3'),
  meta: phaseSchema(10, 'phase 4: MAML meta-learning of the policy across maml.tasks').describe('phase 4'),
});

const taskDataSchema = z.strictObject({
  type: dataTypeSchema.optional(),
  root: z.string().min(1).optional().describe('dataset folder of this task (relative to its YAML file)'),
  split: z.string().min(1).optional().describe('training split of this task'),
  annotations: z
    .string()
    .min(1)
    .optional()
    .describe("coco instances JSON of this task, relative to the task's data.root"),
});

/** One MAML task: a name plus what differs from the main run (λ, budget, or a dataset). */
export const mamlTaskSchema = z.strictObject({
  name: z.string().min(1).describe('task name used in logs'),
  lambda_tradeoff: z.number().min(0).optional().describe('lambda of this task (default rl.environment)'),
  budget: budgetSchema.optional(),
  data: taskDataSchema.optional().describe('dataset of this task; omitted keys come from data'),
});

const mamlSchema = z.strictObject({
  inner_lr: z.number().positive().default(1e-3).describe('inner-loop (adaptation) learning rate'),
  outer_lr: z.number().positive().default(1e-4).describe('outer-loop (meta) learning rate'),
  inner_steps: posInt().default(5).describe('adaptation steps per task (fastAdapt)'),
  first_order: z.boolean().default(true).describe('first-order MAML (no second derivatives)'),
  support_episodes: posInt().default(16).describe('episodes per task for adaptation'),
  query_episodes: posInt().default(16).describe('episodes per task for the meta-loss'),
  tasks: z
    .array(mamlTaskSchema)
    .default([
      { name: 'lambda-0.25', lambda_tradeoff: 0.25 },
      { name: 'lambda-0.5', lambda_tradeoff: 0.5 },
      { name: 'lambda-1', lambda_tradeoff: 1 },
    ])
    .describe('meta-learning tasks; each changes lambda, budget and/or dataset'),
});

export const loggingSchema = z.strictObject({
  level: z.enum(['debug', 'info', 'warn', 'error']).default('info').describe('console log level'),
  every_steps: posInt().default(10).describe('write metrics every N steps (and a plain line when not a TTY)'),
  tensorboard: z.boolean().default(true).describe('write TensorBoard event files into the run directory'),
  progress: z
    .enum(['auto', 'bars', 'lines'])
    .default('auto')
    .describe('auto = progress bars on a terminal, plain periodic lines otherwise'),
});

const probeSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe(
      'train a head on each frozen backbone (teacher, student before and after) and score it on the held-out split: ' +
        'how much task information each pyramid holds',
    ),
  steps: posInt()
    .default(40)
    .describe('optimizer steps of each probe (the same fixed budget for every backbone)'),
  lr: z.number().positive().default(1e-3).describe('AdamW learning rate of the probes (constant)'),
  batch_size: posInt().default(8).describe('training images per probe step'),
  seed: nonNegInt().default(0).describe("seed of the probe heads' initial weights and of their data order"),
});

const evalSchema = z.strictObject({
  probe: probeSchema
    .prefault({})
    .describe('the probe: a head trained on each frozen backbone under one budget'),
});

const checkpointSchema = z.strictObject({
  every_epochs: posInt()
    .default(1)
    .describe('save a checkpoint every N epochs (and at the end of each phase)'),
  keep_last: nonNegInt()
    .default(2)
    .describe(
      'ordinary checkpoints kept besides the final one; 0 = only the newest while the run goes and only ' +
        'the final one once it ends',
    ),
  optimizer_state: z
    .enum(['always', 'except_final', 'never'])
    .default('always')
    .describe(
      "save the optimizers' state (AdamW moments: twice the student's parameters) in checkpoints: always; " +
        'except_final (a finished run is never resumed, so its final checkpoint drops it); never (lightest, ' +
        'but a stopped run cannot be resumed)',
    ),
});

/** Cross-key checks of a `data` section (shared by every config that has one). */
export function checkDataSection(data: z.output<typeof dataSchema>, ctx: z.RefinementCtx): void {
  if (data.type !== 'synthetic' && data.root === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['data', 'root'],
      message: `required for data.type '${data.type}' (the dataset folder)`,
    });
  }
  if (data.synthetic.min_shapes > data.synthetic.max_shapes) {
    ctx.addIssue({
      code: 'custom',
      path: ['data', 'synthetic', 'min_shapes'],
      message: `must not exceed data.synthetic.max_shapes (${data.synthetic.max_shapes})`,
    });
  }
}

/** The whole run configuration (input form: every key optional except models.teacher/student). */
export const runConfigSchema = z
  .strictObject({
    run: runSchema.prefault({}).describe('run identity, seed, execution provider'),
    models: modelsSchema.describe('teacher and student graphs'),
    data: dataSchema.prefault({}).describe('dataset and input pipeline'),
    distill: distillSchema.prefault({}).describe('distillation loss, selection, student optimizer, cache'),
    rl: rlSchema.prefault({}).describe('policy, PPO, environment'),
    gradnorm: gradnormSchema.prefault({}).describe('GradNorm level-weight balancing (phase 3)'),
    phases: phasesSchema.prefault({}).describe('the four training phases, each skippable'),
    maml: mamlSchema.prefault({}).describe('meta-learning (phase 4)'),
    logging: loggingSchema.prefault({}).describe('console, metrics, TensorBoard'),
    checkpoint: checkpointSchema.prefault({}).describe('checkpoint cadence'),
    eval: evalSchema
      .prefault({})
      .describe('the evaluation `rlpkd eval` and the end of `rlpkd train` run on the held-out split'),
  })
  .superRefine((c, ctx) => {
    checkDataSection(c.data, ctx);
    if (c.phases.meta.enabled && c.phases.meta.epochs > 0 && c.maml.tasks.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['maml', 'tasks'],
        message: 'phase 4 (phases.meta) is enabled but no task is listed; add tasks or disable the phase',
      });
    }
    const names = new Set<string>();
    c.maml.tasks.forEach((t, i) => {
      if (names.has(t.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['maml', 'tasks', i, 'name'],
          message: `duplicate task '${t.name}'`,
        });
      }
      names.add(t.name);
    });
    checkTaskKeys(c, ctx);
    const perEnv = Math.ceil(c.rl.ppo.rollout_episodes / c.rl.environment.num_parallel_envs);
    if (perEnv % c.rl.ppo.group_size !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['rl', 'ppo', 'group_size'],
        message:
          `${c.rl.ppo.group_size} does not divide the ${perEnv} episodes each environment runs per rollout ` +
          '(rl.ppo.rollout_episodes / rl.environment.num_parallel_envs, rounded up): choose a divisor',
      });
    }
    for (const [key, list] of [
      ['models.levels', c.models.levels],
      ['distill.selection', c.distill.selection],
    ] as const) {
      if (Array.isArray(list) && new Set(list).size !== list.length) {
        ctx.addIssue({ code: 'custom', path: key.split('.'), message: 'lists a level twice' });
      }
    }
  });

/** Cross-key checks of the task-loss keys: what each needs (the teacher's head, a weight to train on). */
function checkTaskKeys(
  c: {
    models: { teacher_head?: string | undefined };
    distill: { task_loss_weight: number; distill_weight: number; labels_only_baseline: boolean };
    rl: { reward: { yardstick: 'features' | 'task' } };
  },
  ctx: z.RefinementCtx,
): void {
  const d = c.distill;
  const noHead = c.models.teacher_head === undefined;
  const need = (path: string[], what: string) =>
    ctx.addIssue({
      code: 'custom',
      path,
      message: `${what} needs models.teacher_head (the teacher's task head ONNX, as \`rlpkd teach\` writes head.onnx)`,
    });
  if (d.task_loss_weight > 0 && noHead) need(['distill', 'task_loss_weight'], 'a task loss weight > 0');
  if (c.rl.reward.yardstick === 'task' && noHead) need(['rl', 'reward', 'yardstick'], 'the task yardstick');
  if (d.labels_only_baseline && d.task_loss_weight === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['distill', 'labels_only_baseline'],
      message: 'the labels-only baseline trains on the task loss alone: set distill.task_loss_weight > 0',
    });
  }
  if (d.task_loss_weight === 0 && d.distill_weight === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['distill', 'distill_weight'],
      message: 'with distill.task_loss_weight 0 too, the student would train on nothing',
    });
  } else if (d.task_loss_weight === 0 && d.distill_weight !== 1) {
    // Alone, a weight on the only loss would silently do nothing an optimizer setting does not.
    ctx.addIssue({
      code: 'custom',
      path: ['distill', 'distill_weight'],
      message:
        'weighs the distillation loss against the task loss, which is off (distill.task_loss_weight 0); ' +
        'set task_loss_weight > 0, or scale distill.optimizer.lr instead',
    });
  }
}

/** The validated, defaulted run configuration every component reads. */
export type RunConfig = z.output<typeof runConfigSchema>;
/** What a YAML file may contain (after `extends:` is resolved). */
export type RunConfigInput = z.input<typeof runConfigSchema>;
/** The data section, also used per MAML task. */
export type DataConfig = RunConfig['data'];
/** One MAML task. */
export type MamlTask = z.output<typeof mamlTaskSchema>;
/** Budget as configured: fixed fraction or [min, max]. */
export type BudgetSpec = z.output<typeof budgetSchema>;

/** The data section of a MAML task: the run's data with the task's keys on top. */
export function taskDataConfig(config: RunConfig, task: MamlTask): DataConfig {
  if (!task.data) return config.data;
  const out: DataConfig = { ...config.data };
  for (const [k, v] of Object.entries(task.data)) if (v !== undefined) Object.assign(out, { [k]: v });
  // a task on another dataset must not inherit the run's split/annotations names by accident
  if (task.data.type !== undefined && task.data.type !== config.data.type) {
    if (task.data.split === undefined) delete out.split;
    if (task.data.annotations === undefined) delete out.annotations;
    out.val_split = undefined;
    out.val_annotations = undefined;
  }
  return out;
}

/**
 * The policy state size for a student whose pyramid levels have these channel counts (finest first);
 * the 'deploy' kind also needs the trunk tensors it pools (src/rl/deploy-state.ts).
 */
export function stateDimFor(
  levelChannels: readonly number[],
  kind: PolicyStateKind = 'train',
  trunkSources?: readonly StateLevel[],
): number {
  if (levelChannels.length === 0)
    throw new ConfigError('the student has no pyramid levels to build a policy state from');
  // The policy's one state formula; finest level first, so the last is the coarsest.
  const levels = levelChannels.map((channels, i) => ({ name: `L${i}`, stride: 2 ** i, channels }));
  return stateLayout(kind, levels, trunkSources).dim;
}

/** Model-dependent sizes: `auto` keys replaced by what the student implies; explicit values checked. */
export function resolveModelDims(
  config: RunConfig,
  levelChannels: readonly number[],
  trunkSources?: readonly StateLevel[],
): { stateDim: number; maxSteps: number; numLevels: number } {
  const stateDim = stateDimFor(levelChannels, config.rl.policy.state, trunkSources);
  const numLevels = levelChannels.length;
  const { state_dim, mode } = config.rl.policy;
  const { max_steps, min_levels } = config.rl.environment;
  const channels = `[${levelChannels.join(', ')}]`;
  if (state_dim !== 'auto' && state_dim !== stateDim) {
    throw new ConfigError(
      `rl.policy.state_dim is ${state_dim} but the student's levels (channels ${channels}) give ${stateDim} for the ${config.rl.policy.state} state`,
      { hint: 'set rl.policy.state_dim to auto (it follows the student)' },
    );
  }
  // sequential: one decision per level; independent: one step deciding every level at once
  const implied = mode === 'sequential' ? numLevels : 1;
  if (max_steps !== 'auto' && max_steps !== implied) {
    throw new ConfigError(
      `rl.environment.max_steps is ${max_steps} but ${mode} mode with ${numLevels} pyramid levels takes ${implied}`,
      { hint: 'set rl.environment.max_steps to auto (it follows the student)' },
    );
  }
  if (min_levels > numLevels) {
    throw new ConfigError(
      `rl.environment.min_levels is ${min_levels} but the student has only ${numLevels} levels`,
    );
  }
  return { stateDim, maxSteps: implied, numLevels };
}
