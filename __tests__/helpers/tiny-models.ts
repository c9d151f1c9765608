/**
 * Tiny one-op models for gradient tests: the op under test, then loss = Σ_k Σ R_k ⊙ Y_k with fixed random
 * weights R_k, so every output element gets a different upstream gradient.
 */
import type { AttributeInput } from '../../src/onnx';
import {
  DataType,
  GraphBuilder,
  floatTensor,
  int64Tensor,
  type OnnxModel,
  type OnnxTensor,
} from '../../src/onnx';
import type { HostTensor } from '../../src/runtime';
import { createRng, type Rng } from '../../src/util';
import { checkGradients, type GradCheckReport } from './grad-check';
import { runReference } from './reference';

/** One input of the op under test. */
export interface TensorSpec {
  name: string;
  shape: number[];
  /**
   * param: trainable initializer (default for float); input: trainable graph input; const: frozen
   * initializer (default for int); feed: non-trainable graph input.
   */
  role?: 'param' | 'input' | 'const' | 'feed';
  dtype?: DataType;
  values?: number[];
  /** Range of the random values (default [-1, 1]). */
  range?: [number, number];
}

export interface OpCase {
  name: string;
  opType: string;
  /** Inputs in order; null for an omitted optional input. */
  inputs: (TensorSpec | null)[];
  attributes?: Record<string, AttributeInput>;
  /** Number of outputs (default 1). */
  outputs?: number;
  opset?: number;
  rtol?: number;
  atol?: number;
}

/** Seeded random values. */
export function randomValues(rng: Rng, n: number, range: [number, number] = [-1, 1]): number[] {
  return Array.from({ length: n }, () => rng.uniform(range[0], range[1]));
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function makeTensor(spec: TensorSpec, values: number[]): OnnxTensor {
  const dt = spec.dtype ?? DataType.FLOAT;
  if (dt === DataType.INT64) {
    const t = int64Tensor(
      spec.name,
      spec.shape,
      values.map(() => 0),
    );
    t.data = BigInt64Array.from(values.map(toInt64));
    return t;
  }
  if (dt === DataType.FLOAT) return floatTensor(spec.name, spec.shape, values);
  if (dt === DataType.BOOL)
    return { name: spec.name, dataType: dt, dims: [...spec.shape], data: Uint8Array.from(values) };
  throw new Error(`tiny-models: unsupported dtype ${dt}`);
}

const INT64_MAX = (1n << 63n) - 1n;

/** int64 value of a number, saturating: ±2^63 stand for INT64_MAX / INT64_MIN (Slice's "to the end"). */
function toInt64(v: number): bigint {
  if (v >= 2 ** 63) return INT64_MAX;
  if (v <= -(2 ** 63)) return -INT64_MAX - 1n;
  return BigInt(Math.trunc(v));
}

function host(spec: TensorSpec, values: number[]): HostTensor {
  const dt = spec.dtype ?? DataType.FLOAT;
  if (dt === DataType.INT64) return { data: BigInt64Array.from(values.map(toInt64)), dims: spec.shape };
  if (dt === DataType.BOOL) return { data: Uint8Array.from(values), dims: spec.shape };
  return { data: Float32Array.from(values), dims: spec.shape };
}

/** A tiny model + feeds for an op case. */
export interface BuiltCase {
  model: OnnxModel;
  loss: string;
  params: string[];
  feeds: Record<string, HostTensor>;
}

/** Builds the one-op model with its weighted-sum loss. */
export function opCaseModel(c: OpCase, seed: number | string = c.name): BuiltCase {
  const rng = createRng(seed);
  const b = new GraphBuilder({ name: c.opType, opset: c.opset ?? 17 });
  const params: string[] = [];
  const feeds: Record<string, HostTensor> = {};
  const created = new Set<string>();
  const names = c.inputs.map((spec) => {
    if (!spec) return '';
    if (created.has(spec.name)) return spec.name; // the same tensor read twice
    created.add(spec.name);
    const dt = spec.dtype ?? DataType.FLOAT;
    const role = spec.role ?? (dt === DataType.FLOAT ? 'param' : 'const');
    const values = spec.values ?? randomValues(rng, size(spec.shape), spec.range);
    if (role === 'param' || role === 'const') b.initializer(makeTensor(spec, values), { exactName: true });
    else {
      b.input(spec.name, dt, spec.shape);
      feeds[spec.name] = host(spec, values);
    }
    if (role === 'param' || role === 'input') params.push(spec.name);
    return spec.name;
  });
  const outs = b.node(c.opType, names, c.attributes ?? {}, { name: 'op', outputs: c.outputs ?? 1 });
  // Shapes of the outputs come from the reference, so the loss weights can be constants.
  const forward = b.build();
  forward.graph.outputs = outs.map((o) => ({ name: o, dataType: DataType.FLOAT }));
  const values = runReference(forward, feeds);
  const terms = outs.map((o, k) => {
    const y = values.get(o)!;
    const r = b.constFloat(randomValues(rng, y.data.length), y.dims, `R${k}`);
    return b.op('ReduceSum', [b.op('Mul', [o, r])], { keepdims: 0 });
  });
  let loss = terms[0];
  for (let k = 1; k < terms.length; k++) loss = b.op('Add', [loss, terms[k]]);
  loss = b.op('Identity', [loss], {}, { outputs: ['loss'] });
  b.output(loss, DataType.FLOAT, []);
  return { model: b.build(), loss, params, feeds };
}

/** Builds and gradient-checks an op case. */
export async function checkOpCase(c: OpCase): Promise<GradCheckReport> {
  const built = opCaseModel(c);
  return checkGradients({ ...built, rtol: c.rtol, atol: c.atol });
}
