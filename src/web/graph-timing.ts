/**
 * Times bare session runs of a given graph on onnxruntime-web, with the execution provider and threads
 * a loaded bundle uses: `rlpkd bench deploy` runs an identity graph on a one-value tensor to measure what
 * every session run costs whatever its work (the fixed time the MACs cost model cannot see).
 */
import { RlpkdError } from '../errors';
import { loadOrtWeb, type WebExecutionProvider } from './ort-web';

const now = (): number => globalThis.performance.now();

/**
 * Milliseconds of each of `repeats` runs (after `warmup` untimed ones) of `model` (ONNX bytes) fed
 * zeros of `dims` under its only input; the session is released afterwards.
 */
export async function timeGraphRuns(
  model: Uint8Array,
  dims: readonly number[],
  options: { executionProvider: WebExecutionProvider; repeats: number; warmup?: number },
): Promise<number[]> {
  const ort = await loadOrtWeb();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: [options.executionProvider],
    graphOptimizationLevel: 'all',
  });
  try {
    if (session.inputNames.length !== 1) {
      throw new RlpkdError(
        `timeGraphRuns takes a graph with one input, this one has ${session.inputNames.length}`,
      );
    }
    const size = dims.reduce((n, d) => n * d, 1);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(size), [...dims]) };
    for (let i = 0; i < (options.warmup ?? 0); i++) await session.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < options.repeats; i++) {
      const t = now();
      await session.run(feeds);
      times.push(now() - t);
    }
    return times;
  } finally {
    await session.release();
  }
}
