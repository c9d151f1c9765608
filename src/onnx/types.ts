/**
 * Plain TypeScript view of an ONNX model. The codec converts protobuf messages to and from these; every
 * other module works on them. int64 tensor data is a BigInt64Array; dims and integer attributes are numbers
 * (values beyond 2^53, such as INT64_MAX used as "to the end" in Slice, survive a round trip because they
 * saturate back to the same int64).
 */

/** ONNX TensorProto.DataType values this toolkit handles. */
export enum DataType {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  BFLOAT16 = 16,
}

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** Where an initializer's bytes live when stored outside the model file (ONNX external data). */
export interface ExternalDataRef {
  location: string;
  offset: number;
  length: number;
}

/** A constant tensor: an initializer or a Constant node's value. */
export interface OnnxTensor {
  name: string;
  dataType: DataType;
  dims: number[];
  /** Element data; for STRING tensors `strings` is used instead. */
  data: TensorData;
  strings?: Uint8Array[];
  docString?: string;
}

/** A dimension is a number, a symbolic name (dynamic axis), or unknown (null). */
export type Dim = number | string | null;

export interface ValueInfo {
  name: string;
  /** Element type; UNDEFINED when the graph does not say. */
  dataType: DataType;
  /** Undefined when the shape is unknown (not even the rank). */
  shape?: Dim[];
  docString?: string;
}

export type AttributeValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: OnnxTensor }
  | { type: 'graph'; value: OnnxGraph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensors'; value: OnnxTensor[] }
  | { type: 'graphs'; value: OnnxGraph[] };

export interface OnnxNode {
  name: string;
  opType: string;
  /** '' is the default ai.onnx domain. */
  domain: string;
  /** Input tensor names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttributeValue>;
  docString?: string;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  valueInfo: ValueInfo[];
  docString?: string;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface OnnxModel {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  graph: OnnxGraph;
  metadata: Record<string, string>;
  /** Set by withoutWeightData: large initializers have dims but no data, so the model cannot be serialized. */
  weightsDropped?: boolean;
}
