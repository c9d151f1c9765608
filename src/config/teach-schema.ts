/**
 * The config of `rlpkd teach` (training a task head, with or without its backbone, on labels): the run,
 * data and logging sections of the run config plus a `teach:` section. Separate from the distillation
 * config because teaching needs no student, RL or phases.
 */
import { z } from 'zod';
import { loadConfigWith, configFromObjectWith, type ConfigSpec, type LoadConfigOptions } from './load-config';
import { checkDataSection, dataSchema, loggingSchema, runSchema } from './schema';

const posInt = () => z.number().int().positive();

const headSchema = z.strictObject({
  seed: z.number().int().nonnegative().default(0).describe('seed of the head’s initial weights'),
  segmentation_width: posInt()
    .default(64)
    .describe('segmentation: common width of the per-level branches (Semantic FPN uses 128)'),
  tower_convs: z
    .number()
    .int()
    .nonnegative()
    .default(2)
    .describe('detection: 3x3 conv + ReLU layers in each tower (FCOS uses 4)'),
  box_loss: z.enum(['giou', 'iou']).default('giou').describe('detection: box regression loss'),
});

const teachOptimizerSchema = z.strictObject({
  type: z.enum(['adamw', 'sgd']).default('adamw').describe('optimizer'),
  lr: z.number().positive().default(1e-3).describe('peak learning rate'),
  weight_decay: z.number().min(0).default(0).describe('decoupled weight decay (adamw) or L2 (sgd)'),
  momentum: z.number().min(0).lt(1).default(0.9).describe('sgd momentum'),
  schedule: z
    .enum(['constant', 'cosine'])
    .default('cosine')
    .describe('learning-rate schedule over the whole run: constant, or cosine down to 0'),
  warmup_steps: z.number().int().nonnegative().default(0).describe('linear warmup steps (cosine only)'),
});

const teachSectionSchema = z.strictObject({
  backbone: z
    .string()
    .min(1)
    .describe('ResNet-FPN backbone ONNX file (pyramid outputs p2..); relative to the YAML file that sets it'),
  task: z
    .enum(['auto', 'classification', 'segmentation', 'detection'])
    .default('auto')
    .describe(
      'task of the head; auto = from data.type: imagefolder classification, coco detection, ade20k ' +
        'segmentation, synthetic detection (synthetic scenes carry class labels, boxes and masks: any task)',
    ),
  freeze_backbone: z
    .boolean()
    .default(false)
    .describe('train the head alone on the frozen backbone (a probe); false = backbone and head together'),
  levels: z
    .union([z.literal('auto'), z.array(z.string().min(1)).min(1)], {
      error: 'expected "auto" or a list of pyramid levels',
    })
    .default('auto')
    .describe('pyramid levels the head reads (p3 or P3), finest first; auto = every level of the backbone'),
  epochs: posInt().default(10).describe('passes over the training split'),
  max_steps: posInt().optional().describe('stop after this many optimizer steps (default: all epochs)'),
  grad_clip: z
    .number()
    .positive()
    .nullable()
    .default(10)
    .describe('clip gradients to this global norm (null = off)'),
  optimizer: teachOptimizerSchema.prefault({}).describe('optimizer and learning-rate schedule'),
  head: headSchema.prefault({}).describe('head architecture and loss'),
  eval_every_epochs: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe('also evaluate on the validation split every N epochs (0 = only before and after training)'),
});

/** The whole `rlpkd teach` configuration. */
export const teachConfigSchema = z
  .strictObject({
    run: runSchema.prefault({}).describe('run identity, seed, execution provider'),
    data: dataSchema.prefault({}).describe('labelled dataset and input pipeline'),
    teach: teachSectionSchema.describe('backbone, task, schedule and head'),
    logging: loggingSchema.prefault({}).describe('console, metrics, TensorBoard'),
  })
  .superRefine((c, ctx) => {
    checkDataSection(c.data, ctx);
    if (Array.isArray(c.teach.levels) && new Set(c.teach.levels).size !== c.teach.levels.length) {
      ctx.addIssue({ code: 'custom', path: ['teach', 'levels'], message: 'lists a level twice' });
    }
  });

/** The validated, defaulted `rlpkd teach` configuration. */
export type TeachConfig = z.output<typeof teachConfigSchema>;

/** Schema and path keys of the teach config. */
const TEACH_CONFIG: ConfigSpec<TeachConfig> = {
  schema: teachConfigSchema,
  inputPaths: ['teach.backbone', 'data.root'],
  outputPaths: ['run.output_dir'],
};

/** Loads a teach config file (extends, --set overrides, validation: as loadConfig). */
export function loadTeachConfig(file: string, options: LoadConfigOptions = {}): TeachConfig {
  return loadConfigWith(TEACH_CONFIG, file, options);
}

/** Validates a teach config given as an object; relative paths resolve against `options.cwd`. */
export function teachConfigFromObject(input: unknown, options: LoadConfigOptions = {}): TeachConfig {
  return configFromObjectWith(TEACH_CONFIG, input, options);
}
