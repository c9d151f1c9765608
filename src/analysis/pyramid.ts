/**
 * Finds the feature-pyramid outputs of a graph (rank-4 float outputs), their strides relative to the image
 * input and their channels, and names them P2..P6. This is the one place that names pyramid levels.
 */
import { RlpkdError } from '../errors';
import { isFloatType } from '../onnx/infer/fold';
import { inferShapes, type TensorInfo } from '../onnx/shape-inference';
import { DataType, type Dim, type OnnxModel, type ValueInfo } from '../onnx/types';

/** Input image height and width in pixels. */
export interface InputSize {
  height: number;
  width: number;
}

/** One detected pyramid level. */
export interface PyramidLevel {
  /** P2, P3, ... (levelName of the stride). */
  name: string;
  /** Graph output that carries the level. */
  output: string;
  /** Downsampling factor relative to the input, a power of two. */
  stride: number;
  channels: number;
  /** Spatial size of the level for the analysed input size. */
  height: number;
  width: number;
}

/** Name of the pyramid level with this stride: stride 2^k is `Pk` (4 → P2, 8 → P3, ..., 64 → P6). */
export function levelName(stride: number): string {
  const k = Math.log2(stride);
  if (!Number.isInteger(k) || k < 0) {
    throw new RlpkdError(`pyramid stride ${stride} is not a power of two`, {
      hint: 'pyramid levels are named P<k> for stride 2^k',
    });
  }
  return `P${k}`;
}

/** The graph input that carries images: the first rank-4 float input that is not also an initializer. */
export function imageInput(model: OnnxModel): ValueInfo {
  const inits = new Set(model.graph.initializers.map((t) => t.name));
  const candidates = model.graph.inputs.filter((v) => !inits.has(v.name));
  const found = candidates.find((v) => v.shape?.length === 4 && isFloatType(v.dataType));
  if (!found) {
    const list = candidates.map((v) => `${v.name} ${describeShape(v.shape)}`).join(', ') || 'none';
    throw new RlpkdError(
      `graph '${model.graph.name}' has no image input (a rank-4 float input N×C×H×W); inputs: ${list}`,
      {
        hint: 'pyramid analysis needs a backbone whose first input is an image batch',
      },
    );
  }
  return found;
}

/**
 * The input size to analyse at: `requested` where given, else the graph's static input shape.
 * Throws with a hint to pass --height/--width when neither says.
 */
export function resolveInputSize(model: OnnxModel, requested: Partial<InputSize> = {}): InputSize {
  const input = imageInput(model);
  const [, , h, w] = input.shape!;
  const height = requested.height ?? (typeof h === 'number' ? h : undefined);
  const width = requested.width ?? (typeof w === 'number' ? w : undefined);
  for (const [what, v] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new RlpkdError(`input ${what} must be a positive integer, got ${v}`);
    }
  }
  if (height === undefined || width === undefined) {
    throw new RlpkdError(
      `graph input '${input.name}' has a dynamic size ${describeShape(input.shape)}, so the input size is unknown`,
      { hint: 'pass the size to analyse at, e.g. --height 224 --width 224' },
    );
  }
  return { height, width };
}

/** Shapes to analyse a graph with: the image input at `size` with batch 1 (costs are per image). */
export function analysisInputShapes(model: OnnxModel, size: InputSize): Record<string, Dim[]> {
  const input = imageInput(model);
  return { [input.name]: [1, input.shape![1], size.height, size.width] };
}

/** Shape inference at the analysis input size (batch 1). */
export function inferAtSize(model: OnnxModel, size: InputSize): Map<string, TensorInfo> {
  return inferShapes(model, analysisInputShapes(model, size));
}

/**
 * The pyramid levels of a graph, finest first: every rank-4 float graph output whose height and width
 * shrink by the same power of two (the nearest one, so odd input sizes still give 4, 8, 16, 32).
 */
export function findPyramidLevels(
  model: OnnxModel,
  size: InputSize,
  shapes: Map<string, TensorInfo> = inferAtSize(model, size),
): PyramidLevel[] {
  const found: Omit<PyramidLevel, 'name'>[] = [];
  const rejected: string[] = [];
  for (const out of model.graph.outputs) {
    const info = shapes.get(out.name);
    const dt = info?.dataType ?? out.dataType;
    const shape = info?.shape ?? out.shape;
    if (!isFloatType(dt) || !shape || shape.length !== 4) {
      rejected.push(
        `${out.name} ${describeShape(shape)}${isFloatType(dt) ? '' : ` (${DataType[dt] ?? dt})`}`,
      );
      continue;
    }
    const [, c, h, w] = shape;
    if (typeof c !== 'number' || typeof h !== 'number' || typeof w !== 'number' || h < 1 || w < 1) {
      rejected.push(`${out.name} ${describeShape(shape)} (size not inferable)`);
      continue;
    }
    const sh = nearestPowerOfTwo(size.height / h);
    const sw = nearestPowerOfTwo(size.width / w);
    if (sh !== sw) {
      rejected.push(`${out.name} ${describeShape(shape)} (strides ${sh}×${sw} differ)`);
      continue;
    }
    found.push({ output: out.name, stride: sh, channels: c, height: h, width: w });
  }
  if (found.length === 0) {
    throw new RlpkdError(
      `graph '${model.graph.name}' has no detectable pyramid outputs at ${size.height}×${size.width}: ` +
        `expected rank-4 float outputs N×C×H×W; found ${rejected.join(', ') || 'no outputs'}`,
      { hint: 'pass a ResNet-FPN backbone whose outputs are the pyramid levels (e.g. p2..p5)' },
    );
  }
  found.sort((a, b) => a.stride - b.stride);
  const seen = new Map<number, number>();
  return found.map((f) => {
    const k = (seen.get(f.stride) ?? 0) + 1;
    seen.set(f.stride, k);
    return { name: k === 1 ? levelName(f.stride) : `${levelName(f.stride)}_${k}`, ...f };
  });
}

function nearestPowerOfTwo(ratio: number): number {
  return 2 ** Math.max(0, Math.round(Math.log2(ratio)));
}

/** `[batch, 3, 224, 224]` (or `?` when unknown), for messages. */
export function describeShape(shape: readonly Dim[] | undefined): string {
  if (!shape) return '[?]';
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}
