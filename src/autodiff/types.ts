/**
 * The contract between the autodiff driver and the per-op gradient rules.
 *
 * A rule receives the forward node and the gradients flowing into its outputs, and emits standard ONNX
 * nodes (through `ctx.b`) that compute the gradients of its inputs. It never runs anything.
 */
import type { GraphBuilder } from '../onnx/graph-builder';
import type { TensorInfo } from '../onnx/shape-inference';
import type { Dim, OnnxNode } from '../onnx/types';

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
  /**
   * Sums `grad` over the axes broadcasting expanded, and reshapes it to the shape of `like`. Pass
   * `gradShape` (the static shape of `grad`, e.g. the node's output shape) whenever known: the axes are then
   * decided at build time; without it (or when a symbolic dim makes it ambiguous) they are computed at run
   * time from `Shape(grad)` and `Shape(like)`.
   */
  unbroadcast(grad: string, like: string, gradShape?: readonly Dim[]): string;
  /**
   * ReduceSum in the form the opset requires (axes as input from opset 13). Empty `axes` reduce every axis;
   * a string is an int64 axes tensor (opset ≥ 13 only).
   */
  reduceSum(x: string, axes: readonly number[] | string, keepdims: boolean): string;
  /** Unsqueeze in the form the opset requires (axes as input from opset 13); a string is an axes tensor. */
  unsqueeze(x: string, axes: readonly number[] | string): string;
  /** A float32 zero tensor of the (run-time) shape of `like`. */
  zerosLike(like: string): string;
  /** A float32 scalar constant, shared by every rule that asks for the same value. */
  scalar(value: number): string;
  /** An int64 1-D constant, shared by every rule that asks for the same values. */
  ints(values: readonly number[]): string;
  /**
   * Declares that the emitted nodes need at least this default-domain opset (e.g. 16 for ScatterElements
   * with reduction='add'). The driver raises the model's opset import when every forward op keeps its
   * meaning, else it throws a GraphError naming `why`. Rules keep using `opset` (the model's) for choosing
   * attribute-vs-input forms: those do not change between 13 and 17.
   */
  requireOpset(version: number, why: string): void;
  /**
   * Adds output `index` to the forward node (e.g. MaxPool's Indices) and returns its name; for rules that
   * need a by-product of the forward computation.
   */
  forwardOutput(index: number): string;
  /** Human-readable label for errors: `Conv 'body.conv1'`. */
  readonly label: string;
}

/**
 * Emits the gradients of a node's inputs: one entry per input, undefined where no gradient exists. Where
 * `needs[i]` is true an entry is required (the driver throws otherwise), and it must have input i's shape
 * (checked by shape inference on the finished graph).
 */
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
