/**
 * The task head a bundle deploys, as a graph whose inputs are the student's level outputs: `--head FILE`
 * when given; else the checkpoint's `student-task-model.onnx` (a task-loss run: the student's own head,
 * cut off the student at its level outputs, so 1×1 adapters the head reads through come with it); else
 * `models.teacher_head` (the teacher's head, which the student's pyramid feeds). A head graph read from a
 * file may name its inputs by the student's level outputs or by the teacher's (matched by pyramid level).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findPyramidLevels, type InputSize } from '../analysis/pyramid';
import type { RunConfig } from '../config/schema';
import { TASK_CHECKPOINT_FILES } from '../distill/task-checkpoint-files';
import { RlpkdError } from '../errors';
import { pruneToOutputs } from '../onnx/extract-subgraph';
import { loadModel } from '../onnx/model-io';
import { DataType, type OnnxModel } from '../onnx/types';
import type { BundleHead } from '../web/bundle-format';

/** A student pyramid level as the bundle has it. */
export interface DeployLevel {
  name: string;
  output: string;
  channels: number;
}

/** The head to deploy and where it came from. */
export interface DeployHead {
  /** Level outputs of the student in, task outputs out. */
  graph: OnnxModel;
  source: BundleHead['source'];
  file: string;
}

/** What picks the head. */
export interface DeployHeadOptions {
  /** `--head FILE`: a head graph (levels in, task outputs out). */
  headFile?: string;
  /** The exported checkpoint's folder. */
  checkpointDir: string;
  config: RunConfig;
  levels: readonly DeployLevel[];
  size: InputSize;
}

/** The head to deploy, or undefined when the run has none (see module doc). */
export function deployHead(options: DeployHeadOptions): DeployHead | undefined {
  if (options.headFile !== undefined) {
    if (!fs.existsSync(options.headFile)) {
      throw new RlpkdError(`--head '${options.headFile}' does not exist`, {
        hint: 'pass a head graph ONNX (pyramid levels in, task outputs out), as `rlpkd teach` writes head.onnx',
      });
    }
    return {
      graph: onStudentLevels(loadModel(options.headFile), options),
      source: 'file',
      file: options.headFile,
    };
  }
  const own = path.join(options.checkpointDir, TASK_CHECKPOINT_FILES.studentTaskModel);
  if (fs.existsSync(own)) {
    return {
      graph: cutAtLevels(loadModel(own), options.levels, own),
      source: 'student-task-model',
      file: own,
    };
  }
  const teacherHead = options.config.models.teacher_head;
  if (teacherHead !== undefined) {
    return {
      graph: onStudentLevels(loadModel(teacherHead), options),
      source: 'teacher-head',
      file: teacherHead,
    };
  }
  return undefined;
}

/** The head of a task model (image in, head outputs out): what follows the student's level outputs. */
function cutAtLevels(taskModel: OnnxModel, levels: readonly DeployLevel[], file: string): OnnxModel {
  const cut = levels.map((l) => ({
    name: l.output,
    dataType: DataType.FLOAT,
    shape: ['batch', l.channels, 'height', 'width'],
  }));
  const head = pruneToOutputs(taskModel, taskModel.graph.outputs, cut);
  const outputs = new Set(levels.map((l) => l.output));
  const other = head.graph.inputs.filter((v) => !outputs.has(v.name));
  if (other.length > 0) {
    throw new RlpkdError(
      `the task model '${file}' reads ${other.map((v) => `'${v.name}'`).join(', ')} besides the student's pyramid levels`,
      { hint: 'its head must read the pyramid levels only; pass a head graph with --head' },
    );
  }
  return { ...head, graph: { ...head.graph, name: `${taskModel.graph.name}_head` } };
}

/** A head graph with its inputs renamed to the student's level outputs (checked: level, channels). */
function onStudentLevels(head: OnnxModel, options: DeployHeadOptions): OnnxModel {
  const inits = new Set(head.graph.initializers.map((t) => t.name));
  let teacherLevels: { name: string; output: string }[] | undefined;
  const rename = new Map<string, string>();
  for (const input of head.graph.inputs.filter((v) => !inits.has(v.name))) {
    let level = options.levels.find((l) => l.output === input.name);
    if (!level) {
      teacherLevels ??= findPyramidLevels(loadModel(options.config.models.teacher), options.size);
      const t = teacherLevels.find((l) => l.output === input.name);
      level = t && options.levels.find((l) => l.name === t.name);
    }
    if (!level) {
      throw new RlpkdError(
        `the head reads '${input.name}', which is neither a pyramid level of the student (${options.levels
          .map((l) => `'${l.output}'`)
          .join(', ')}) nor one of the teacher`,
        { hint: 'pass the head `rlpkd teach` wrote for this run’s teacher, or one built on the student' },
      );
    }
    const channels = input.shape?.[1];
    if (typeof channels === 'number' && channels !== level.channels) {
      throw new RlpkdError(
        `the head reads ${channels} channels from '${input.name}', the student's level ${level.name} has ${level.channels}`,
        {
          hint: 'train the run with distill.task_loss_weight > 0 (its checkpoint then holds the student’s own head, adapters included)',
        },
      );
    }
    rename.set(input.name, level.output);
  }
  const r = (n: string): string => rename.get(n) ?? n;
  const g = head.graph;
  return {
    ...head,
    graph: {
      ...g,
      inputs: g.inputs.map((v) => ({ ...v, name: r(v.name) })),
      nodes: g.nodes.map((n) => ({ ...n, inputs: n.inputs.map(r) })),
    },
  };
}
