/**
 * A model's protobuf bytes as a list of chunks whose concatenation is exactly `encodeModel`'s output, with
 * every large tensor's raw data left as a view of the model's own array. Writing the chunks one after the
 * other saves a model without ever holding its serialization in one buffer (a ResNet-50 student with its
 * AdamW moments is 0.3 GB, which a whole-buffer save adds to the process's peak memory).
 *
 * Protobuf fields may be written in any order and a message field is its tag, its length and its bytes, so
 * the model message is written as: the ModelProto fields numbered below `graph`, the graph's tag and
 * length, the GraphProto fields below `initializer`, each initializer (small ones encoded whole; large ones
 * as their fields below `raw_data`, raw_data's tag and length, the raw bytes view, then the fields after
 * it), the GraphProto fields after `initializer`, then the ModelProto fields after `graph`. protobufjs
 * writes fields in field-number order, which is what makes the result byte-identical to `encodeModel`.
 */
import type * as protobuf from 'protobufjs';
import { RlpkdError } from '../errors';
import { modelMessage, type ExternalDataWriter } from './codec';
import { ModelProtoType } from './onnx-schema';
import type { OnnxModel } from './types';

/** Tensors with at least this many raw bytes are written from views (smaller ones are encoded whole). */
export const DEFAULT_CHUNK_THRESHOLD = 64 * 1024;

/** A protobuf message can be at most 2 GB (readers refuse larger ones). */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

const WIRE_LENGTH_DELIMITED = 2;

const GraphProtoType = ModelProtoType.lookupType('onnx.GraphProto');
const TensorProtoTypeRef = ModelProtoType.lookupType('onnx.TensorProto');

/* eslint-disable @typescript-eslint/no-explicit-any -- protobufjs reflection messages are untyped */
type Msg = Record<string, any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

export interface ModelChunksOptions {
  /** Where initializers go instead of inline (see saveModel's external data). */
  writeExternal?: ExternalDataWriter;
  /** Raw data of at least this many bytes stays a view (default DEFAULT_CHUNK_THRESHOLD). */
  threshold?: number;
}

/**
 * Serializes a model as chunks (see module doc); the large tensors' chunks are views of the model's arrays,
 * so they must be written before the arrays change.
 */
export function encodeModelChunks(model: OnnxModel, options: ModelChunksOptions = {}): Uint8Array[] {
  const threshold = options.threshold ?? DEFAULT_CHUNK_THRESHOLD;
  const msg = modelMessage(model, options.writeExternal) as Msg;
  const graphMsg = msg.graph as Msg;
  const [graphHead, graphTail] = encodeAround(GraphProtoType, graphMsg, 'initializer');
  const graphChunks: Uint8Array[] = [graphHead];
  for (const t of (graphMsg.initializer ?? []) as Msg[]) {
    const tensorChunks = tensorToChunks(t, threshold);
    graphChunks.push(fieldHeader(GraphProtoType, 'initializer', byteLength(tensorChunks)), ...tensorChunks);
  }
  graphChunks.push(graphTail);
  const [modelHead, modelTail] = encodeAround(ModelProtoType, msg, 'graph');
  const graphLength = byteLength(graphChunks);
  const chunks = [modelHead, fieldHeader(ModelProtoType, 'graph', graphLength), ...graphChunks, modelTail];
  const total = byteLength(chunks);
  if (total > PROTOBUF_LIMIT) {
    throw new RlpkdError(
      `model '${model.graph.name}' is ${(total / 2 ** 30).toFixed(2)} GB, past protobuf's 2 GB limit`,
      { hint: 'save it with external data (saveModel option externalDataThreshold)' },
    );
  }
  return chunks;
}

/** One initializer: encoded whole when small (or not raw), else around a view of its raw data. */
function tensorToChunks(t: Msg, threshold: number): Uint8Array[] {
  const raw = t.rawData as Uint8Array | undefined;
  if (!raw || raw.byteLength < threshold) return [TensorProtoTypeRef.encode(t).finish()];
  const [head, tail] = encodeAround(TensorProtoTypeRef, t, 'rawData');
  return [head, fieldHeader(TensorProtoTypeRef, 'rawData', raw.byteLength), raw, tail];
}

/** The message's fields numbered below `field`, and those above it, each encoded (`field` left out). */
function encodeAround(type: protobuf.Type, msg: Msg, field: string): [Uint8Array, Uint8Array] {
  const id = type.fields[field].id;
  const before: Msg = {};
  const after: Msg = {};
  for (const [name, value] of Object.entries(msg)) {
    if (name === field) continue;
    const f = type.fields[name];
    if (!f) throw new RlpkdError(`encodeModelChunks: '${type.name}' has no field '${name}'`);
    (f.id < id ? before : after)[name] = value;
  }
  return [type.encode(before).finish(), type.encode(after).finish()];
}

/** Tag and length of a length-delimited field whose content is `length` bytes. */
function fieldHeader(type: protobuf.Type, field: string, length: number): Uint8Array {
  const tag = (type.fields[field].id << 3) | WIRE_LENGTH_DELIMITED;
  return Uint8Array.from([...varint(tag), ...varint(length)]);
}

/** Base-128 varint of a non-negative integer (protobuf's encoding of tags and lengths). */
function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function byteLength(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  return n;
}
