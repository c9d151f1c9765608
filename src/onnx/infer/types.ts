/**
 * The contract between the shape-inference driver (`../shape-inference.ts`) and its per-op rules. A rule
 * reads what is known about a node's inputs and says what it knows about the outputs; it never throws for
 * what it cannot know (it returns undefined shapes), only for graphs that are malformed.
 */
import type { DataType, Dim, OnnxNode, TensorData } from '../types';

/** One element of a partially known small tensor: a number, a symbolic dim name, or unknown (null). */
export type Scalar = number | string | null;

/** What inference knows about one tensor. */
export interface Inferred {
  dataType: DataType;
  /** Undefined when even the rank is unknown. */
  shape: Dim[] | undefined;
  /** The whole value, when a compile-time constant held as a typed array (initializers, Constant). */
  value?: TensorData;
  /**
   * Per-element values of a small tensor with a static shape, in row-major order; some may be symbolic
   * or unknown (e.g. `Shape` of a `[batch, 256, 14, 14]` tensor is `['batch', 256, 14, 14]`).
   */
  elems?: Scalar[];
}

/** A node as a rule sees it. */
export interface InferContext {
  readonly node: OnnxNode;
  /** Default-domain opset of the model (decides attribute-vs-input forms). */
  readonly opset: number;
  /** `Conv 'body.conv1'`, for error messages. */
  readonly label: string;
  /** True when input `i` is present (not omitted with ''). */
  has(i: number): boolean;
  /** What is known about input `i`; undefined when omitted or unknown. */
  input(i: number): Inferred | undefined;
  /** Element type of input `i` (UNDEFINED when unknown). */
  dataType(i: number): DataType;
  /** Shape of input `i`; undefined when omitted or rank unknown. */
  shape(i: number): Dim[] | undefined;
  /** Per-element values of input `i` when it is small and its shape static. */
  elems(i: number): Scalar[] | undefined;
  /** Input `i` as numbers when every element is known. */
  ints(i: number): number[] | undefined;
  /** Throws a GraphError prefixed with the node label. */
  fail(message: string): never;
}

/** Infers a node's outputs; entries may be undefined (nothing known). */
export type ShapeRule = (ctx: InferContext) => (Inferred | undefined)[];
