/**
 * Checks on host tensors that the training layer makes at its boundaries (parameters, checkpoints,
 * gradients), written once so every caller reports a wrong tensor the same way.
 */
import { RlpkdError } from '../errors';
import type { Dim } from '../onnx/types';
import type { HostTensor } from '../runtime/tensors';

/** The tensor's data as a Float32Array, or an error naming `what` (e.g. "parameter 'w'"). */
export function float32Data(t: HostTensor, what: string): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new RlpkdError(`${what} must be a float32 tensor`);
  return t.data;
}

/** True when two shapes have the same rank and the same dims (symbolic dims compare by name). */
export function sameDims(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
