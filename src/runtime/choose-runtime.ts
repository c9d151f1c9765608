/**
 * The one place that picks which onnxruntime runs a graph: onnxruntime-node (CPU or CUDA) or
 * onnxruntime-web's wasm backend. Callers describe what they want once (RuntimeChoice) and open every
 * graph through openGraphSession, so no other module branches on the runtime.
 */
import type { OnnxModel } from '../onnx/types';
import {
  createSession,
  resolveExecutionProvider,
  type ExecutionProviderName,
  type GraphSession,
  type ResolvedExecutionProvider,
} from './session';
import { createWebSession } from './web-session';

/** Which onnxruntime runs the graphs: onnxruntime-node (cpu/cuda) or onnxruntime-web's wasm backend. */
export type TrainingRuntime = 'node' | 'web';

/** What a caller asks of the runtime. */
export interface RuntimeChoice {
  /** Default 'node'. */
  runtime?: TrainingRuntime;
  /** onnxruntime-node provider (default cpu); ignored by the wasm runtime. */
  executionProvider?: ExecutionProviderName;
  intraOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** onnxruntime-node's CPU memory arena (default off here; see TrainingSessionOptions.memArena). */
  memArena?: boolean;
}

/** A session the runtime opened: the Node sessions' contract (the wasm one reports 'wasm'). */
export type RunnableGraph = Pick<GraphSession, 'inputNames' | 'outputNames' | 'run' | 'release' | 'runInto'>;

/** Where graphs of this choice execute: 'cpu', 'cuda' or 'webgpu' under onnxruntime-node, 'wasm' under onnxruntime-web. */
export function resolveDevice(choice: RuntimeChoice): ResolvedExecutionProvider | 'wasm' {
  if ((choice.runtime ?? 'node') === 'web') return 'wasm';
  return resolveExecutionProvider(choice.executionProvider ?? 'cpu');
}

/** Opens `model` (an object, bytes or a file path) on the runtime `choice` names. */
export function openGraphSession(
  model: OnnxModel | Uint8Array | string,
  choice: RuntimeChoice,
): Promise<RunnableGraph> {
  const level = choice.graphOptimizationLevel
    ? { graphOptimizationLevel: choice.graphOptimizationLevel }
    : {};
  if ((choice.runtime ?? 'node') === 'web') return createWebSession(model, level);
  return createSession(model, {
    executionProvider: choice.executionProvider ?? 'cpu',
    memArena: choice.memArena ?? false,
    ...(choice.intraOpNumThreads ? { intraOpNumThreads: choice.intraOpNumThreads } : {}),
    ...level,
  });
}
