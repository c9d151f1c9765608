/**
 * A small builder for emitting ONNX graphs: nodes, initializers, inputs and outputs with unique names.
 * Used by the model builders, the autodiff and the artifact generator alike.
 */
import { GraphError } from '../errors';
import { toAttributeValue, type AttributeInput } from './attributes';
import { floatTensor, int64Tensor } from './tensor-data';
import {
  DataType,
  type AttributeValue,
  type Dim,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OpsetImport,
  type ValueInfo,
} from './types';

/** The opset generated graphs use (ReduceSum axes are inputs; other reductions still attributes). */
export const DEFAULT_OPSET = 17;

export interface NodeOptions {
  /** Node name; made unique from the op type when omitted. */
  name?: string;
  /** Output names, or how many outputs to create (default 1). */
  outputs?: string[] | number;
  domain?: string;
}

export interface GraphBuilderOptions {
  name?: string;
  opset?: number;
  producerName?: string;
}

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly valueInfo: ValueInfo[] = [];
  readonly opsetImports: OpsetImport[];
  name: string;
  producerName: string;
  metadata: Record<string, string> = {};
  private readonly used = new Set<string>();
  private readonly counters = new Map<string, number>();

  constructor(options: GraphBuilderOptions = {}) {
    this.name = options.name ?? 'graph';
    this.producerName = options.producerName ?? 'rl-pyramidkd';
    this.opsetImports = [{ domain: '', version: options.opset ?? DEFAULT_OPSET }];
  }

  /** Starts from an existing model (nodes, initializers and names are kept; the model is not mutated). */
  static fromModel(model: OnnxModel): GraphBuilder {
    const b = new GraphBuilder({ name: model.graph.name, producerName: model.producerName });
    b.opsetImports.length = 0;
    b.opsetImports.push(...model.opsetImports.map((o) => ({ ...o })));
    b.metadata = { ...model.metadata };
    const g = model.graph;
    b.nodes.push(...g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs] })));
    b.initializers.push(...g.initializers);
    b.inputs.push(...g.inputs.map((v) => ({ ...v })));
    b.outputs.push(...g.outputs.map((v) => ({ ...v })));
    b.valueInfo.push(...g.valueInfo.map((v) => ({ ...v })));
    for (const n of g.nodes) {
      if (n.name) b.used.add(n.name);
      for (const o of n.outputs) if (o) b.used.add(o);
    }
    for (const t of g.initializers) b.used.add(t.name);
    for (const v of g.inputs) b.used.add(v.name);
    return b;
  }

  /** The default-domain opset version. */
  get opset(): number {
    return this.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? DEFAULT_OPSET;
  }

  /** Returns `base` if unused, else `base_1`, `base_2`, ...; and reserves it. */
  uniqueName(base: string): string {
    let name = base;
    if (this.used.has(name)) {
      let i = this.counters.get(base) ?? 0;
      do {
        i += 1;
        name = `${base}_${i}`;
      } while (this.used.has(name));
      this.counters.set(base, i);
    }
    this.used.add(name);
    return name;
  }

  /** Marks a name as taken without creating anything (e.g. names of an enclosing graph). */
  reserve(name: string): void {
    this.used.add(name);
  }

  /** True when a tensor or node of this name exists. */
  has(name: string): boolean {
    return this.used.has(name);
  }

  /** Declares a graph input; `shape` entries may be numbers or symbolic names ('batch'). */
  input(name: string, dataType: DataType, shape?: Dim[]): string {
    if (this.used.has(name)) throw new GraphError(`graph input '${name}' clashes with an existing name`);
    this.used.add(name);
    this.inputs.push({ name, dataType, ...(shape ? { shape: [...shape] } : {}) });
    return name;
  }

  /** Declares an existing tensor as a graph output. */
  output(name: string, dataType: DataType = DataType.FLOAT, shape?: Dim[]): string {
    if (this.outputs.some((o) => o.name === name))
      throw new GraphError(`'${name}' is already a graph output`);
    this.outputs.push({ name, dataType, ...(shape ? { shape: [...shape] } : {}) });
    return name;
  }

  /** Adds an initializer; its name is made unique (the final name is returned). */
  initializer(tensor: OnnxTensor, options: { exactName?: boolean } = {}): string {
    if (options.exactName && this.used.has(tensor.name)) {
      throw new GraphError(`initializer '${tensor.name}' clashes with an existing name`);
    }
    const name = options.exactName ? tensor.name : this.uniqueName(tensor.name);
    this.used.add(name);
    this.initializers.push(name === tensor.name ? tensor : { ...tensor, name });
    return name;
  }

  /** A float32 constant initializer. */
  constFloat(values: number | ArrayLike<number>, dims?: number[], base = 'const'): string {
    const arr = typeof values === 'number' ? [values] : values;
    return this.initializer(floatTensor(base, dims ?? (typeof values === 'number' ? [] : [arr.length]), arr));
  }

  /** An int64 constant initializer (shapes, axes, indices). */
  constInt64(values: number | ArrayLike<number>, dims?: number[], base = 'const_i64'): string {
    const arr = typeof values === 'number' ? [values] : values;
    return this.initializer(int64Tensor(base, dims ?? (typeof values === 'number' ? [] : [arr.length]), arr));
  }

  /** Emits a node and returns its output names. */
  node(
    opType: string,
    inputs: string[],
    attributes: Record<string, AttributeInput> = {},
    options: NodeOptions = {},
  ): string[] {
    const name = this.uniqueName(options.name ?? opType);
    const outs =
      typeof options.outputs === 'object'
        ? options.outputs.map((o) => {
            if (this.used.has(o)) throw new GraphError(`${opType} '${name}': output '${o}' already exists`);
            this.used.add(o);
            return o;
          })
        : Array.from({ length: options.outputs ?? 1 }, (_, i) =>
            this.uniqueName(i === 0 ? `${name}_out` : `${name}_out${i}`),
          );
    const attrs: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(attributes)) if (v !== undefined) attrs[k] = toAttributeValue(v);
    this.nodes.push({
      name,
      opType,
      domain: options.domain ?? '',
      inputs: [...inputs],
      outputs: outs,
      attributes: attrs,
    });
    return outs;
  }

  /** Emits a single-output node and returns the output name. */
  op(
    opType: string,
    inputs: string[],
    attributes: Record<string, AttributeInput> = {},
    options: NodeOptions = {},
  ): string {
    return this.node(opType, inputs, attributes, options)[0];
  }

  /** The graph as it stands. */
  graph(): OnnxGraph {
    return {
      name: this.name,
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: this.inputs,
      outputs: this.outputs,
      valueInfo: this.valueInfo,
    };
  }

  /** A complete model (IR version 8 fits opsets up to 18 for onnxruntime 1.30 and torch 1.13 tooling). */
  build(): OnnxModel {
    return {
      irVersion: 8,
      opsetImports: this.opsetImports.map((o) => ({ ...o })),
      producerName: this.producerName,
      producerVersion: '',
      domain: '',
      modelVersion: 0,
      docString: '',
      graph: this.graph(),
      metadata: { ...this.metadata },
    };
  }
}
