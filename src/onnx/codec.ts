/**
 * ModelProto bytes <-> plain OnnxModel. int64 `Long`s are normalized here and nowhere else.
 */
import Long from 'long';
import { GraphError, InputFileError } from '../errors';
import { ModelProtoType } from './onnx-schema';
import { bytesToString, stringToBytes } from './text';
import { checkTensorSize, tensorDataFromBytes, tensorDataToBytes } from './tensor-data';
import {
  DataType,
  type AttributeValue,
  type Dim,
  type ExternalDataRef,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type TensorData,
  type ValueInfo,
} from './types';

/* eslint-disable @typescript-eslint/no-explicit-any -- protobufjs reflection messages are untyped */
type Msg = any;

/** Resolves an external-data reference to the tensor's raw bytes. */
export type ExternalDataResolver = (ref: ExternalDataRef, tensorName: string) => Uint8Array;
/** Decides whether an initializer is written as external data; returns where it went, or undefined. */
export type ExternalDataWriter = (tensor: OnnxTensor, bytes: Uint8Array) => ExternalDataRef | undefined;

const ATTRIBUTE_TYPE = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (Long.isLong(v)) return (v as Long).toNumber();
  if (typeof v === 'string') return Number(v);
  return 0;
}

function toBigInt(v: unknown): bigint {
  if (typeof v === 'number') return BigInt(v);
  if (Long.isLong(v)) return BigInt((v as Long).toString());
  if (typeof v === 'string') return BigInt(v);
  return 0n;
}

// ---------------------------------------------------------------- decode

/** Decodes serialized ModelProto bytes. `what` names the source in error messages (usually the path). */
export function decodeModel(
  bytes: Uint8Array,
  what: string,
  resolveExternal?: ExternalDataResolver,
): OnnxModel {
  let msg: Msg;
  try {
    msg = ModelProtoType.decode(bytes);
  } catch (err) {
    throw new InputFileError(`${what} is not a valid ONNX model: ${(err as Error).message}`, {
      hint: 'check that the file is a complete .onnx file (a truncated download or a different format gives this)',
      cause: err,
    });
  }
  if (!msg.graph || ((msg.graph.node?.length ?? 0) === 0 && (msg.graph.output?.length ?? 0) === 0)) {
    throw new InputFileError(`${what} is not an ONNX model: it holds no graph`, {
      hint: 'pass an .onnx file exported by torch.onnx.export, tools/export_fpn.py or `rlpkd models build`',
    });
  }
  const metadata: Record<string, string> = {};
  for (const e of msg.metadataProps ?? []) metadata[e.key] = e.value;
  return {
    irVersion: toNumber(msg.irVersion),
    opsetImports: (msg.opsetImport ?? []).map((o: Msg) => ({
      domain: o.domain ?? '',
      version: toNumber(o.version),
    })),
    producerName: msg.producerName ?? '',
    producerVersion: msg.producerVersion ?? '',
    domain: msg.domain ?? '',
    modelVersion: toNumber(msg.modelVersion),
    docString: msg.docString ?? '',
    graph: decodeGraph(msg.graph, what, resolveExternal),
    metadata,
  };
}

function decodeGraph(g: Msg, what: string, resolveExternal?: ExternalDataResolver): OnnxGraph {
  return {
    name: g.name ?? '',
    nodes: (g.node ?? []).map((n: Msg) => decodeNode(n, what, resolveExternal)),
    initializers: (g.initializer ?? []).map((t: Msg) => decodeTensor(t, what, resolveExternal)),
    inputs: (g.input ?? []).map(decodeValueInfo),
    outputs: (g.output ?? []).map(decodeValueInfo),
    valueInfo: (g.valueInfo ?? []).map(decodeValueInfo),
    ...(g.docString ? { docString: g.docString } : {}),
  };
}

function decodeValueInfo(v: Msg): ValueInfo {
  const info: ValueInfo = { name: v.name ?? '', dataType: DataType.UNDEFINED };
  const tt = v.type?.tensorType;
  if (tt) {
    info.dataType = tt.elemType ?? DataType.UNDEFINED;
    if (tt.shape) {
      info.shape = (tt.shape.dim ?? []).map((d: Msg): Dim => {
        if (d.dimValue !== undefined && d.dimValue !== null && d.value === 'dimValue')
          return toNumber(d.dimValue);
        if (d.dimParam) return d.dimParam as string;
        return null;
      });
    }
  }
  if (v.docString) info.docString = v.docString;
  return info;
}

function decodeNode(n: Msg, what: string, resolveExternal?: ExternalDataResolver): OnnxNode {
  const attributes: Record<string, AttributeValue> = {};
  for (const a of n.attribute ?? []) attributes[a.name] = decodeAttribute(a, what, resolveExternal);
  return {
    name: n.name ?? '',
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attributes,
    ...(n.docString ? { docString: n.docString } : {}),
  };
}

function decodeAttribute(a: Msg, what: string, resolveExternal?: ExternalDataResolver): AttributeValue {
  switch (a.type) {
    case ATTRIBUTE_TYPE.FLOAT:
      return { type: 'float', value: a.f ?? 0 };
    case ATTRIBUTE_TYPE.INT:
      return { type: 'int', value: toNumber(a.i) };
    case ATTRIBUTE_TYPE.STRING:
      return { type: 'string', value: bytesToString(a.s ?? new Uint8Array()) };
    case ATTRIBUTE_TYPE.TENSOR:
      return { type: 'tensor', value: decodeTensor(a.t, what, resolveExternal) };
    case ATTRIBUTE_TYPE.GRAPH:
      return { type: 'graph', value: decodeGraph(a.g, what, resolveExternal) };
    case ATTRIBUTE_TYPE.FLOATS:
      return { type: 'floats', value: [...(a.floats ?? [])] };
    case ATTRIBUTE_TYPE.INTS:
      return { type: 'ints', value: (a.ints ?? []).map(toNumber) };
    case ATTRIBUTE_TYPE.STRINGS:
      return { type: 'strings', value: (a.strings ?? []).map(bytesToString) };
    case ATTRIBUTE_TYPE.TENSORS:
      return {
        type: 'tensors',
        value: (a.tensors ?? []).map((t: Msg) => decodeTensor(t, what, resolveExternal)),
      };
    case ATTRIBUTE_TYPE.GRAPHS:
      return {
        type: 'graphs',
        value: (a.graphs ?? []).map((g: Msg) => decodeGraph(g, what, resolveExternal)),
      };
    default:
      throw new GraphError(`${what}: attribute '${a.name}' has unsupported type ${a.type}`);
  }
}

function decodeTensor(t: Msg, what: string, resolveExternal?: ExternalDataResolver): OnnxTensor {
  const name: string = t.name ?? '';
  const dataType: DataType = t.dataType ?? DataType.UNDEFINED;
  const dims: number[] = (t.dims ?? []).map(toNumber);
  const label = `${what}: tensor '${name}'`;
  const tensor: OnnxTensor = { name, dataType, dims, data: new Float32Array(0) };
  if (t.docString) tensor.docString = t.docString;
  if (dataType === DataType.STRING) {
    tensor.strings = [...(t.stringData ?? [])];
    return tensor;
  }
  if (t.dataLocation === 1) {
    const ref = externalRef(t.externalData ?? [], label);
    if (!resolveExternal) {
      throw new InputFileError(
        `${label} is stored as external data in '${ref.location}', which cannot be read here`,
        {
          hint: 'load the model from its file path so the external data file next to it can be found',
        },
      );
    }
    tensor.data = tensorDataFromBytes(dataType, resolveExternal(ref, name), label);
  } else if (t.rawData && t.rawData.length > 0) {
    tensor.data = tensorDataFromBytes(dataType, t.rawData, label);
  } else {
    tensor.data = typedFieldData(t, dataType, label);
  }
  checkTensorSize(tensor);
  return tensor;
}

function externalRef(entries: Msg[], label: string): ExternalDataRef {
  const kv: Record<string, string> = {};
  for (const e of entries) kv[e.key] = e.value;
  if (!kv.location) throw new InputFileError(`${label}: external data without a 'location'`);
  return {
    location: kv.location,
    offset: kv.offset ? Number(kv.offset) : 0,
    length: kv.length ? Number(kv.length) : -1,
  };
}

/** Reads the typed repeated fields (float_data, int64_data, ...) where raw_data is absent. */
function typedFieldData(t: Msg, dataType: DataType, label: string): TensorData {
  switch (dataType) {
    case DataType.FLOAT:
      return Float32Array.from(t.floatData ?? []);
    case DataType.DOUBLE:
      return Float64Array.from(t.doubleData ?? []);
    case DataType.INT64:
      return BigInt64Array.from((t.int64Data ?? []).map(toBigInt));
    case DataType.UINT64:
      return BigUint64Array.from((t.uint64Data ?? []).map((v: unknown) => BigInt.asUintN(64, toBigInt(v))));
    case DataType.UINT32:
      return Uint32Array.from((t.uint64Data ?? []).map(toNumber));
    case DataType.INT32:
      return Int32Array.from(t.int32Data ?? []);
    case DataType.INT16:
      return Int16Array.from(t.int32Data ?? []);
    case DataType.INT8:
      return Int8Array.from(t.int32Data ?? []);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return Uint16Array.from(t.int32Data ?? []);
    case DataType.UINT8:
    case DataType.BOOL:
      return Uint8Array.from(t.int32Data ?? []);
    default:
      throw new GraphError(`${label}: unsupported element type ${dataType}`);
  }
}

// ---------------------------------------------------------------- encode

/** Serializes a model. Initializers for which `writeExternal` returns a reference are stored outside. */
export function encodeModel(model: OnnxModel, writeExternal?: ExternalDataWriter): Uint8Array {
  return ModelProtoType.encode(modelMessage(model, writeExternal)).finish();
}

/**
 * The model as a protobufjs message object (tensor bytes are views of the model's arrays, not copies);
 * encodeModel serializes it whole, encodeModelChunks (model-chunks.ts) piece by piece.
 */
export function modelMessage(model: OnnxModel, writeExternal?: ExternalDataWriter): Msg {
  if (model.weightsDropped) {
    throw new GraphError(`model '${model.graph.name}': its large weights were dropped to save memory`, {
      hint: 'load the model from its file to save it or run it',
    });
  }
  return {
    irVersion: model.irVersion,
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: model.docString,
    graph: encodeGraph(model.graph, writeExternal),
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
  };
}

function encodeGraph(g: OnnxGraph, writeExternal?: ExternalDataWriter): Msg {
  return {
    name: g.name,
    node: g.nodes.map(encodeNode),
    initializer: g.initializers.map((t) => encodeTensor(t, writeExternal)),
    input: g.inputs.map(encodeValueInfo),
    output: g.outputs.map(encodeValueInfo),
    valueInfo: g.valueInfo.map(encodeValueInfo),
    docString: g.docString ?? '',
  };
}

function encodeValueInfo(v: ValueInfo): Msg {
  const out: Msg = { name: v.name, docString: v.docString ?? '' };
  if (v.dataType !== DataType.UNDEFINED || v.shape) {
    const tensorType: Msg = { elemType: v.dataType };
    if (v.shape) {
      tensorType.shape = {
        dim: v.shape.map((d) =>
          typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {},
        ),
      };
    }
    out.type = { tensorType };
  }
  return out;
}

function encodeNode(n: OnnxNode): Msg {
  return {
    name: n.name,
    opType: n.opType,
    domain: n.domain,
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attributes).map(([name, a]) => encodeAttribute(name, a)),
    docString: n.docString ?? '',
  };
}

function encodeAttribute(name: string, a: AttributeValue): Msg {
  switch (a.type) {
    case 'float':
      return { name, type: ATTRIBUTE_TYPE.FLOAT, f: a.value };
    case 'int':
      return { name, type: ATTRIBUTE_TYPE.INT, i: Long.fromNumber(a.value) };
    case 'string':
      return { name, type: ATTRIBUTE_TYPE.STRING, s: stringToBytes(a.value) };
    case 'tensor':
      return { name, type: ATTRIBUTE_TYPE.TENSOR, t: encodeTensor(a.value) };
    case 'graph':
      return { name, type: ATTRIBUTE_TYPE.GRAPH, g: encodeGraph(a.value) };
    case 'floats':
      return { name, type: ATTRIBUTE_TYPE.FLOATS, floats: a.value };
    case 'ints':
      return { name, type: ATTRIBUTE_TYPE.INTS, ints: a.value.map((v) => Long.fromNumber(v)) };
    case 'strings':
      return { name, type: ATTRIBUTE_TYPE.STRINGS, strings: a.value.map(stringToBytes) };
    case 'tensors':
      return { name, type: ATTRIBUTE_TYPE.TENSORS, tensors: a.value.map((t) => encodeTensor(t)) };
    case 'graphs':
      return { name, type: ATTRIBUTE_TYPE.GRAPHS, graphs: a.value.map((g) => encodeGraph(g)) };
  }
}

function encodeTensor(t: OnnxTensor, writeExternal?: ExternalDataWriter): Msg {
  const msg: Msg = {
    name: t.name,
    dataType: t.dataType,
    dims: t.dims.map((d) => Long.fromNumber(d)),
    docString: t.docString ?? '',
  };
  if (t.dataType === DataType.STRING) {
    msg.stringData = t.strings ?? [];
    return msg;
  }
  const bytes = tensorDataToBytes(t.data);
  const ref = writeExternal?.(t, bytes);
  if (ref) {
    msg.dataLocation = 1;
    msg.externalData = [
      { key: 'location', value: ref.location },
      { key: 'offset', value: String(ref.offset) },
      { key: 'length', value: String(ref.length) },
    ];
  } else {
    msg.rawData = bytes;
  }
  return msg;
}
