/**
 * Emitters for the ops whose form depends on the opset (axes as attribute or as input), so that rules
 * never branch on versions themselves: ReduceSum's axes became an input in opset 13, the other Reduce*
 * ops' in 18, Squeeze/Unsqueeze's and Split's in 13.
 */
import { GraphError } from '../errors';
import { attr } from '../onnx/attributes';
import type { GraphBuilder } from '../onnx/graph-builder';
import { floatTensor, int64Tensor } from '../onnx/tensor-data';
import type { OnnxTensor } from '../onnx/types';

/** What the emitters need: the builder, the opset and a way to make (cached) int64 constants. */
export interface EmitTarget {
  readonly b: GraphBuilder;
  readonly opset: number;
  ints(values: readonly number[]): string;
}

/** Opset from which op `opType` takes its axes as an input. */
export function axesInputSince(opType: string): number {
  if (opType === 'ReduceSum' || opType === 'Squeeze' || opType === 'Unsqueeze' || opType === 'Split')
    return 13;
  return 18;
}

function axesArgs(
  t: EmitTarget,
  opType: string,
  axes: readonly number[] | string | undefined,
): { inputs: string[]; attrs: Record<string, ReturnType<typeof attr.ints>> } {
  const asInput = t.opset >= axesInputSince(opType);
  if (axes === undefined || (typeof axes !== 'string' && axes.length === 0)) return { inputs: [], attrs: {} };
  if (typeof axes === 'string') {
    if (!asInput) {
      throw new GraphError(
        `${opType} with run-time axes needs opset ≥ ${axesInputSince(opType)}, the model has ${t.opset}`,
        {
          hint: 're-export the model with a newer opset',
        },
      );
    }
    return { inputs: [axes], attrs: {} };
  }
  return asInput
    ? { inputs: [t.ints(axes)], attrs: {} }
    : { inputs: [], attrs: { axes: attr.ints([...axes]) } };
}

/**
 * Any Reduce* op. Empty or undefined `axes` reduce every axis; a string is an int64 axes tensor.
 */
export function emitReduce(
  t: EmitTarget,
  opType: string,
  x: string,
  axes: readonly number[] | string | undefined,
  keepdims: boolean,
  name?: string,
): string {
  const { inputs, attrs } = axesArgs(t, opType, axes);
  return t.b.op(opType, [x, ...inputs], { ...attrs, keepdims: keepdims ? 1 : 0 }, name ? { name } : {});
}

/** Unsqueeze (axes relative to the output rank; negative allowed). */
export function emitUnsqueeze(t: EmitTarget, x: string, axes: readonly number[] | string): string {
  if (typeof axes !== 'string' && axes.length === 0) return x;
  const { inputs, attrs } = axesArgs(t, 'Unsqueeze', axes);
  return t.b.op('Unsqueeze', [x, ...inputs], attrs);
}

/** Squeeze of the given axes (never "all size-1 axes": that would depend on run-time shapes). */
export function emitSqueeze(t: EmitTarget, x: string, axes: readonly number[] | string): string {
  if (typeof axes !== 'string' && axes.length === 0) return x;
  const { inputs, attrs } = axesArgs(t, 'Squeeze', axes);
  return t.b.op('Squeeze', [x, ...inputs], attrs);
}

/** Split into pieces of the given static sizes along `axis`. */
export function emitSplit(t: EmitTarget, x: string, axis: number, sizes: readonly number[]): string[] {
  const asInput = t.opset >= 13;
  return t.b.node(
    'Split',
    asInput ? [x, t.ints(sizes)] : [x],
    asInput ? { axis } : { axis, split: attr.ints([...sizes]) },
    { outputs: sizes.length },
  );
}

/** A tensor attribute holding one value of the given type, for ConstantOfShape. */
export function scalarTensorAttr(value: number, int64 = false): OnnxTensor {
  return int64 ? int64Tensor('value', [1], [value]) : floatTensor('value', [1], [value]);
}
