/**
 * Weights into a user's task model: each trainable parameter of a distilled student (names as the run's
 * student has them, e.g. `body.layer1.0.conv1.weight`) written over the task model's initializer named
 * `<prefix><name>`. Torchvision detectors keep their backbone under `backbone.`, so the prefix is given or
 * detected: the one under which the most student names exist, when exactly one prefix does best.
 */
import { RlpkdError } from '../errors';
import { DataType, type OnnxModel, type OnnxTensor } from '../onnx/types';

/** A student parameter that could not be written into the task model. */
export interface TransplantMismatch {
  /** The student's parameter name. */
  name: string;
  /** The task model's initializer it was to replace (`<prefix><name>`). */
  target: string;
  kind: 'missing' | 'shape' | 'dtype';
  /** The student's shape and data type. */
  shape: number[];
  dataType: DataType;
  /** The task model's (for `shape`/`dtype` mismatches). */
  targetShape?: number[];
  targetDataType?: DataType;
}

/** What transplantWeights did. */
export interface TransplantResult {
  /** The task model with the student's weights (the input is not modified). */
  model: OnnxModel;
  prefix: string;
  /** Parameters written. */
  transplanted: number;
  /** Parameters not written (an empty list means every one was). */
  mismatches: TransplantMismatch[];
}

/** Options of transplantWeights. */
export interface TransplantOptions {
  /** Prepended to every student name; detected when absent. */
  prefix?: string;
}

/**
 * The prefix P for which `P + name` is a task-model initializer for the most student names. Throws when
 * no name fits under any prefix, or when several prefixes fit equally many names.
 */
export function detectTransplantPrefix(taskModel: OnnxModel, names: readonly string[]): string {
  const counts = new Map<string, number>();
  const targets = taskModel.graph.initializers.map((t) => t.name);
  for (const name of names) {
    const prefixes = new Set(targets.filter((t) => t.endsWith(name)).map((t) => t.slice(0, -name.length)));
    for (const p of prefixes) counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  const best = Math.max(0, ...counts.values());
  const tied = [...counts].filter(([, c]) => c === best).map(([p]) => p);
  if (best === 0) {
    throw new RlpkdError(
      `none of the student's ${names.length} parameter names (e.g. '${names[0] ?? ''}') ends any initializer name of task model '${taskModel.graph.name}'`,
      { hint: 'check that the task model contains the student architecture, or pass --prefix' },
    );
  }
  if (tied.length > 1) {
    throw new RlpkdError(
      `the student's parameter names fit task model '${taskModel.graph.name}' under several prefixes equally well (${tied
        .map((p) => `'${p}'`)
        .join(', ')}: ${best} names each)`,
      { hint: 'pass the prefix to use with --prefix' },
    );
  }
  return tied[0]!;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Writes every student parameter in `weights` into `taskModel` (see module doc). Names missing from the
 * task model and shape or data-type mismatches are returned in `mismatches`, not thrown; the model then
 * holds only the parameters that matched.
 */
export function transplantWeights(
  taskModel: OnnxModel,
  weights: readonly OnnxTensor[],
  options: TransplantOptions = {},
): TransplantResult {
  const prefix =
    options.prefix ??
    detectTransplantPrefix(
      taskModel,
      weights.map((w) => w.name),
    );
  const index = new Map(taskModel.graph.initializers.map((t, i) => [t.name, i]));
  const initializers = [...taskModel.graph.initializers];
  const mismatches: TransplantMismatch[] = [];
  let transplanted = 0;
  for (const w of weights) {
    const target = prefix + w.name;
    const at = index.get(target);
    const base = { name: w.name, target, shape: [...w.dims], dataType: w.dataType };
    if (at === undefined) {
      mismatches.push({ ...base, kind: 'missing' });
      continue;
    }
    const t = initializers[at]!;
    const found = { targetShape: [...t.dims], targetDataType: t.dataType };
    if (!sameDims(t.dims, w.dims)) {
      mismatches.push({ ...base, kind: 'shape', ...found });
    } else if (t.dataType !== w.dataType) {
      mismatches.push({ ...base, kind: 'dtype', ...found });
    } else {
      // A copy: the student's model keeps its own buffer.
      initializers[at] = { ...t, data: w.data.slice() };
      transplanted++;
    }
  }
  const model: OnnxModel = { ...taskModel, graph: { ...taskModel.graph, initializers } };
  return { model, prefix, transplanted, mismatches };
}

/** One line per mismatch, e.g. `body.conv1.weight → backbone.body.conv1.weight: shape [8, 3, 3, 3] vs [4, 3, 3, 3]`. */
export function formatTransplantMismatch(m: TransplantMismatch): string {
  const shape = (d: readonly number[]): string => `[${d.join(', ')}]`;
  const head = `${m.name} → ${m.target}`;
  if (m.kind === 'missing') return `${head}: not in the task model (student shape ${shape(m.shape)})`;
  if (m.kind === 'shape') return `${head}: shape ${shape(m.shape)} vs ${shape(m.targetShape ?? [])}`;
  const dt = (t: DataType | undefined): string => (t === undefined ? '?' : (DataType[t] ?? String(t)));
  return `${head}: data type ${dt(m.dataType)} vs ${dt(m.targetDataType)}`;
}

/** Throws one RlpkdError listing every mismatch of `result` (nothing when there is none). */
export function requireCompleteTransplant(result: TransplantResult, taskFile: string): void {
  if (result.mismatches.length === 0) return;
  const lines = result.mismatches.map((m) => `  ${formatTransplantMismatch(m)}`).join('\n');
  throw new RlpkdError(
    `${result.mismatches.length} of the student's parameters do not fit task model '${taskFile}' (prefix '${result.prefix}'):\n${lines}`,
    {
      hint: 'the task model must contain the student architecture under one name prefix (pass --prefix to choose it)',
    },
  );
}
