/**
 * Nodes onnxruntime's WebGPU provider claims but cannot run. Its MaxPool kernel takes every MaxPool node,
 * then fails at run time when the node's Indices output is used ("The Indices output is not supported
 * yet", onnxruntime 1.30), which the gradient graphs of any model with a max-pool need. Naming those
 * nodes in the provider's `forceCpuNodeNames` option places them on the CPU at session creation instead,
 * where the no-fallback rule (session.ts) sees them: refused with the usual error, or run on the CPU when
 * fallback is allowed.
 */
import { loadModel, loadModelFromBytes } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';

/**
 * Names of the top-level nodes of `model` that the WebGPU provider must leave to the CPU (MaxPool with
 * its Indices output). Nodes without a name cannot be named to onnxruntime and are left as they are.
 */
export function webgpuCpuNodeNames(model: OnnxModel | Uint8Array | string): string[] {
  const m =
    typeof model === 'string'
      ? loadModel(model)
      : model instanceof Uint8Array
        ? loadModelFromBytes(model)
        : model;
  return m.graph.nodes
    .filter((n) => n.opType === 'MaxPool' && n.domain === '' && (n.outputs[1] ?? '') !== '' && n.name !== '')
    .map((n) => n.name);
}
