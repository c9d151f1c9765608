/**
 * The state one gradient-graph build shares across rules and targets (shape info, Shape() and constant
 * caches, the opset a rule asked for), and the per-node GradContext handed to each rule.
 */
import { GraphError } from '../errors';
import type { GraphBuilder, NodeOptions } from '../onnx/graph-builder';
import type { AttributeInput } from '../onnx/attributes';
import type { TensorInfo } from '../onnx/shape-inference';
import type { Dim, OnnxNode } from '../onnx/types';
import { unbroadcast } from './broadcast';
import { emitReduce, emitUnsqueeze, scalarTensorAttr, type EmitTarget } from './emit';
import type { GradContext } from './types';

/** Human-readable node label used in every error: `Conv 'body.conv1'`. */
export function nodeLabel(node: OnnxNode): string {
  return `${node.opType} '${node.name || node.outputs[0]}'`;
}

/** Shared state of one build. */
export class GradBuildState implements EmitTarget {
  /** Highest opset a rule asked for, and why. */
  required: { version: number; why: string } | undefined;
  /** Prefix for the names of nodes emitted without an explicit name (set per rule call). */
  namePrefix = '';
  private readonly shapes = new Map<string, string>();
  private readonly zeros = new Map<string, string>();
  private readonly scalars = new Map<string, string>();
  private readonly int64s = new Map<string, string>();

  constructor(
    readonly b: GraphBuilder,
    readonly opset: number,
    private readonly infos: ReadonlyMap<string, TensorInfo>,
  ) {
    const emit = b.node.bind(b);
    b.node = (
      opType: string,
      inputs: string[],
      attrs?: Record<string, AttributeInput>,
      options: NodeOptions = {},
    ) => emit(opType, inputs, attrs, { ...options, name: options.name ?? `${this.namePrefix}${opType}` });
  }

  /** Shape info of a forward tensor, or undefined. */
  tryInfo(name: string): TensorInfo | undefined {
    return this.infos.get(name);
  }

  /** Shape info of a forward tensor; throws naming `label` when unknown. */
  info(name: string, label: string): TensorInfo {
    const i = this.infos.get(name);
    if (!i) {
      throw new GraphError(`${label}: no type/shape information for tensor '${name}'`, {
        hint: 'the producing op has no shape-inference rule; give static shapes with inputShapes or report the op',
      });
    }
    return i;
  }

  /** Static shape of a forward tensor when known. */
  staticShape(name: string): Dim[] | undefined {
    return this.infos.get(name)?.shape;
  }

  /** Shape(name): an int64 constant when the shape is static, else one Shape node per tensor. */
  shapeOf(name: string): string {
    let s = this.shapes.get(name);
    if (s) return s;
    const shape = this.infos.get(name)?.shape;
    if (shape && shape.every((d): d is number => typeof d === 'number')) s = this.ints(shape);
    else s = this.b.op('Shape', [name], {}, { name: `${name}/Shape` });
    this.shapes.set(name, s);
    return s;
  }

  /** Float zeros of the run-time shape of `like`. */
  zerosLike(like: string): string {
    let z = this.zeros.get(like);
    if (!z) {
      z = this.b.op('ConstantOfShape', [this.shapeOf(like)], { value: scalarTensorAttr(0) });
      this.zeros.set(like, z);
    }
    return z;
  }

  /** Shared float32 scalar constant. */
  scalar(value: number): string {
    const key = Object.is(value, -0) ? '-0' : String(value);
    let s = this.scalars.get(key);
    if (!s) {
      s = this.b.constFloat(value, [], 'grad_const');
      this.scalars.set(key, s);
    }
    return s;
  }

  /** Shared int64 1-D constant. */
  ints(values: readonly number[]): string {
    const key = values.join(',');
    let s = this.int64s.get(key);
    if (!s) {
      s = this.b.constInt64(values, [values.length], 'grad_ints');
      this.int64s.set(key, s);
    }
    return s;
  }

  requireOpset(version: number, why: string): void {
    if (version > this.opset && (!this.required || version > this.required.version)) {
      this.required = { version, why };
    }
  }

  /** The context for one rule call. */
  context(node: OnnxNode, dY: readonly (string | undefined)[], needs: readonly boolean[]): GradContext {
    const label = nodeLabel(node);
    const b = this.b;
    return {
      b,
      node,
      opset: this.opset,
      dY,
      needs,
      label,
      info: (name) => this.info(name, label),
      shapeOf: (name) => this.shapeOf(name),
      unbroadcast: (grad, like, gradShape) =>
        unbroadcast(
          {
            b,
            opset: this.opset,
            ints: (v) => this.ints(v),
            likeShape: this.staticShape(like),
            shapeOfLike: () => this.shapeOf(like),
          },
          grad,
          gradShape,
          label,
        ),
      reduceSum: (x, axes, keepdims) => emitReduce(this, 'ReduceSum', x, axes, keepdims),
      unsqueeze: (x, axes) => emitUnsqueeze(this, x, axes),
      zerosLike: (like) => this.zerosLike(like),
      scalar: (v) => this.scalar(v),
      ints: (v) => this.ints(v),
      requireOpset: (version, why) => this.requireOpset(version, `${why} for ${label}`),
      forwardOutput: (index) => {
        while (node.outputs.length <= index) node.outputs.push('');
        if (!node.outputs[index])
          node.outputs[index] = b.uniqueName(`${node.name || node.outputs[0]}_out${index}`);
        return node.outputs[index];
      },
    };
  }
}
