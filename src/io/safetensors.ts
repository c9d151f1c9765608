/**
 * The safetensors format (Hugging Face), written and read without the `safetensors` package: an 8-byte
 * little-endian header length N, N bytes of UTF-8 JSON (`{"name": {"dtype", "shape", "data_offsets":
 * [begin, end]}, "__metadata__": {string: string}}`, space-padded so the data starts 8-byte aligned),
 * then one byte buffer that the tensors cover exactly (no holes, no overlap; offsets relative to the
 * buffer's start). Tensors are C-order little-endian. The writer orders tensors by element size
 * (largest first, the given order within a size), as the reference implementation does, so every
 * tensor starts at a multiple of its element size without padding inside the buffer.
 */
import { InputFileError, RlpkdError } from '../errors';
import { readInputFile, writeFileAtomic } from '../onnx/model-io';

/** The dtypes this module reads and writes (safetensors names). F16 and BF16 are raw 16-bit patterns. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** The typed array that holds each dtype's values. */
export type SafetensorsData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** One named tensor. */
export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsData;
}

/** A decoded file: tensors in file order and the `__metadata__` strings. */
export interface SafetensorsFile {
  tensors: SafetensorsTensor[];
  metadata: Record<string, string>;
}

/** Key of the free-form string map in the header. */
const SAFETENSORS_METADATA_KEY = '__metadata__';

/** The reference implementation refuses headers above 100 MB; so do we (a corrupt length otherwise allocates). */
const MAX_HEADER_BYTES = 100_000_000;

const ITEM_SIZE: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

function arrayFor(dtype: SafetensorsDType, buffer: ArrayBuffer): SafetensorsData {
  switch (dtype) {
    case 'F64':
      return new Float64Array(buffer);
    case 'F32':
      return new Float32Array(buffer);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buffer);
    case 'I64':
      return new BigInt64Array(buffer);
    case 'I32':
      return new Int32Array(buffer);
    case 'I16':
      return new Int16Array(buffer);
    case 'I8':
      return new Int8Array(buffer);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buffer);
  }
}

/** The typed array class a dtype needs (for checking what a caller passes). */
function expectedArrayName(dtype: SafetensorsDType): string {
  return arrayFor(dtype, new ArrayBuffer(0)).constructor.name;
}

const elementCount = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function checkTensor(t: SafetensorsTensor): void {
  const what = `safetensors: tensor '${t.name}'`;
  if (t.name === '' || t.name === SAFETENSORS_METADATA_KEY) {
    throw new RlpkdError(`safetensors: a tensor cannot be named '${t.name}'`);
  }
  if (!(t.dtype in ITEM_SIZE)) throw new RlpkdError(`${what} has unknown dtype '${String(t.dtype)}'`);
  if (t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new RlpkdError(`${what} has an invalid shape [${t.shape.join(', ')}]`);
  }
  if (t.data.constructor.name !== expectedArrayName(t.dtype)) {
    throw new RlpkdError(
      `${what}: ${t.dtype} needs a ${expectedArrayName(t.dtype)}, got ${t.data.constructor.name}`,
    );
  }
  if (elementCount(t.shape) !== t.data.length) {
    throw new RlpkdError(`${what}: shape [${t.shape.join(', ')}] does not fit ${t.data.length} values`);
  }
}

/** Encodes tensors (unique names) and string metadata as the bytes of a .safetensors file. */
export function encodeSafetensors(
  tensors: readonly SafetensorsTensor[],
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const seen = new Set<string>();
  for (const t of tensors) {
    checkTensor(t);
    if (seen.has(t.name)) throw new RlpkdError(`safetensors: tensor name '${t.name}' appears twice`);
    seen.add(t.name);
  }
  // Stable sort by element size, largest first: every tensor then starts aligned for its type.
  const ordered = tensors
    .map((t, i) => ({ t, i }))
    .sort((a, b) => ITEM_SIZE[b.t.dtype] - ITEM_SIZE[a.t.dtype] || a.i - b.i)
    .map((x) => x.t);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[SAFETENSORS_METADATA_KEY] = { ...metadata };
  let offset = 0;
  for (const t of ordered) {
    const end = offset + t.data.byteLength;
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let at = 8 + padded;
  for (const t of ordered) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decodes the bytes of a .safetensors file; `what` names the source in errors. */
export function parseSafetensors(bytes: Uint8Array, what = 'safetensors data'): SafetensorsFile {
  const fail = (message: string): never => {
    throw new InputFileError(`${what}: ${message}`, {
      hint: 'pass a file written by `rlpkd export-weights` or safetensors.torch.save_file',
    });
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes is too short for a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8))) {
    fail(`header length ${headerLength} exceeds the file (${bytes.length} bytes) or 100 MB`);
  }
  const n = Number(headerLength);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(8, 8 + n));
  if (!text.startsWith('{')) fail('the header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`the header is not JSON (${(err as Error).message})`);
  }
  if (!isRecord(header)) return fail('the header is not a JSON object');
  const buffer = bytes.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] =
    [];
  for (const [name, value] of Object.entries(header)) {
    if (name === SAFETENSORS_METADATA_KEY) {
      if (!isRecord(value)) fail(`${SAFETENSORS_METADATA_KEY} is not an object`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`${SAFETENSORS_METADATA_KEY}.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (!isRecord(value)) return fail(`entry '${name}' is not an object`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string' || !(dtype in ITEM_SIZE)) {
      fail(
        `tensor '${name}' has dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(ITEM_SIZE).join(', ')})`,
      );
    }
    const isIndex = (d: unknown): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0;
    if (!Array.isArray(shape) || !shape.every(isIndex)) fail(`tensor '${name}' has an invalid shape`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every(isIndex) ||
      offsets[0] > offsets[1]
    ) {
      fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const dt = dtype as SafetensorsDType;
    const bytesNeeded = elementCount(shape as number[]) * ITEM_SIZE[dt];
    if (end - begin !== bytesNeeded) {
      fail(
        `tensor '${name}' (${dt} [${(shape as number[]).join(', ')}]) needs ${bytesNeeded} bytes, its offsets span ${end - begin}`,
      );
    }
    entries.push({ name, dtype: dt, shape: [...(shape as number[])], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  // The buffer must be covered exactly: each tensor starts where the previous one ended.
  let covered = 0;
  for (const e of entries) {
    if (e.begin !== covered) {
      fail(
        e.begin < covered
          ? `tensor '${e.name}' overlaps the one before it`
          : `a hole before tensor '${e.name}'`,
      );
    }
    covered = e.end;
  }
  if (covered !== buffer.length) {
    fail(
      `the tensors cover ${covered} data bytes, the file holds ${buffer.length} (${covered > buffer.length ? 'truncated' : 'trailing bytes'})`,
    );
  }
  const tensors = entries.map((e) => {
    // Copy: a tensor's offset need not be aligned for its element size in a file written elsewhere.
    // (A fresh Uint8Array, not Buffer#slice, which would share the whole pool's memory.)
    const copy = new Uint8Array(e.end - e.begin);
    copy.set(buffer.subarray(e.begin, e.end));
    return { name: e.name, dtype: e.dtype, shape: e.shape, data: arrayFor(e.dtype, copy.buffer) };
  });
  return { tensors, metadata };
}

/** Reads a .safetensors file; errors name it. */
export function readSafetensors(file: string, what = 'safetensors file'): SafetensorsFile {
  return parseSafetensors(readInputFile(file, what), `${what} '${file}'`);
}

/** Writes a .safetensors file through a temporary sibling and a rename. */
export function writeSafetensors(
  file: string,
  tensors: readonly SafetensorsTensor[],
  metadata: Readonly<Record<string, string>> = {},
): void {
  writeFileAtomic(file, [encodeSafetensors(tensors, metadata)]);
}
