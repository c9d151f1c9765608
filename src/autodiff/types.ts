/**
 * The contract between the autodiff driver and the per-op gradient rules.
 *
 * A rule receives the forward node and the gradients flowing into its outputs, and emits standard ONNX
 * nodes (through `ctx.b`) that compute the gradients of its inputs. It never runs anything.
 */
import type { GraphBuilder } from '../onnx/graph-builder';
import type { TensorInfo } from '../onnx/shape-inference';
import type { OnnxNode } from '../onnx/types';

export interface GradContext {
  /** Builder of the gradient graph (forward nodes already emitted). */
  readonly b: GraphBuilder;
  /** The forward node being differentiated (as emitted in the gradient graph). */
  readonly node: OnnxNode;
  /** Default-domain opset of the graph (decides attribute-vs-input forms of axes). */
  readonly opset: number;
  /** Gradient flowing into each output of the node; undefined where none flows. */
  readonly dY: readonly (string | undefined)[];
  /** For each input: does the caller need its gradient? Rules skip work for inputs marked false. */
  readonly needs: readonly boolean[];
  /** Static type/shape (and constant value, where known) of a forward tensor; throws if unknown. */
  info(name: string): TensorInfo;
  /** `Shape(name)` as an int64 tensor, emitted once per tensor and reused. */
  shapeOf(name: string): string;
  /** Sums `grad` over the axes broadcasting expanded, and reshapes it to the shape of `like`. */
  unbroadcast(grad: string, like: string): string;
  /** ReduceSum in the form the opset requires (axes as input from opset 13). */
  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string;
  /**
   * Adds output `index` to the forward node (e.g. MaxPool's Indices) and returns its name; for rules that
   * need a by-product of the forward computation.
   */
  forwardOutput(index: number): string;
  /** Human-readable label for errors: `Conv 'body.conv1'`. */
  readonly label: string;
}

/** Emits the gradients of a node's inputs: one entry per input, undefined where no gradient exists. */
export type GradientRule = (ctx: GradContext) => (string | undefined)[];

export interface GradientRuleEntry {
  opType: string;
  rule: GradientRule;
  /**
   * Inputs through which no gradient flows by definition (shape/axes/indices inputs, e.g. Reshape's
   * `shape`). A parameter reaching the loss only through these is not an error.
   */
  nonDifferentiableInputs?: readonly number[];
}
