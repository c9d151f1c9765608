/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), the lingua franca for handing tensors to and from
 * Python: `rlpkd grad` reads inputs and targets from them and writes one gradient per parameter, so a
 * PyTorch script can compare with `np.load`. Little-endian numeric dtypes in C order only; anything else
 * is a clear error that says how to convert it in NumPy.
 */
import { InputFileError, RlpkdError } from '../errors';
import { readInputFile, writeFileAtomic } from '../onnx/model-io';
import type { TensorData } from '../onnx/types';

/** The dtypes this module reads and writes (NumPy `descr` strings). */
export type NpyDType = '<f4' | '<f8' | '<i8' | '<i4' | '|u1' | '|b1';

/** A decoded array: dtype, shape and a typed array (Uint8Array of 0/1 for `|b1`). */
export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy ≥ 1.14 pads headers so the data starts at a multiple of 64 bytes. */
const ALIGN = 64;
/** numpy ≥ 1.23 leaves room in the header for the first axis to grow to 21 digits. */
const GROWTH_AXIS_MAX_DIGITS = 21;

const ITEM_SIZE: Record<NpyDType, number> = { '<f4': 4, '<f8': 8, '<i8': 8, '<i4': 4, '|u1': 1, '|b1': 1 };

/** Descr spellings NumPy may write for the same little-endian types. */
const DESCR_ALIASES: Record<string, NpyDType> = {
  '<f4': '<f4',
  '<f8': '<f8',
  '<i8': '<i8',
  '<i4': '<i4',
  '|u1': '|u1',
  '<u1': '|u1',
  '|b1': '|b1',
  '<b1': '|b1',
};

function fail(what: string, message: string, hint?: string): never {
  throw new InputFileError(`${what}: ${message}`, hint === undefined ? {} : { hint });
}

/** Parses the Python-literal header dict `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`. */
function parseHeader(header: string, what: string): { descr: string; fortran: boolean; shape: number[] } {
  const text = header.trim();
  if (!text.startsWith('{') || !text.endsWith('}'))
    fail(what, `malformed .npy header ${JSON.stringify(text)}`);
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    fail(what, `the .npy header lacks descr, fortran_order or shape: ${JSON.stringify(text)}`);
  }
  const parts = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const shape = parts.map((s) => {
    const n = /^\d+L?$/.test(s) ? Number.parseInt(s, 10) : NaN;
    if (!Number.isSafeInteger(n)) fail(what, `bad dimension '${s}' in the .npy shape (${shapeText})`);
    return n;
  });
  return { descr, fortran: fortran === 'True', shape };
}

function typedView(dtype: NpyDType, bytes: Uint8Array, count: number): NpyArray['data'] {
  // Copy into a fresh buffer: the data offset of a file need not be aligned for the element size.
  // (Uint8Array.prototype.slice copies; Buffer#slice would share the whole pool's memory.)
  const copy = new Uint8Array(count * ITEM_SIZE[dtype]);
  copy.set(bytes.subarray(0, copy.length));
  const buf = copy.buffer;
  switch (dtype) {
    case '<f4':
      return new Float32Array(buf);
    case '<f8':
      return new Float64Array(buf);
    case '<i8':
      return new BigInt64Array(buf);
    case '<i4':
      return new Int32Array(buf);
    case '|u1':
      return new Uint8Array(buf);
    case '|b1': {
      const u = new Uint8Array(buf);
      for (let i = 0; i < u.length; i++) if (u[i] > 1) u[i] = 1;
      return u;
    }
  }
}

/** Decodes the bytes of a `.npy` file; `what` names the file in errors. */
export function parseNpy(bytes: Uint8Array, what = '.npy data'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    fail(
      what,
      'not a NumPy .npy file (the \\x93NUMPY magic is missing)',
      'save arrays with numpy.save(FILE, array)',
    );
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLen: number;
  if (major === 1) {
    headerStart = 10;
    headerLen = view.getUint16(8, true);
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail(what, 'truncated .npy header');
    headerStart = 12;
    headerLen = view.getUint32(8, true);
  } else {
    fail(what, `unsupported .npy format version ${major}.${bytes[7]} (1.0, 2.0 and 3.0 are supported)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) fail(what, 'truncated .npy header');
  const headerBytes = bytes.subarray(headerStart, dataStart);
  const header =
    major === 3 ? new TextDecoder().decode(headerBytes) : Buffer.from(headerBytes).toString('latin1');
  const { descr, fortran, shape } = parseHeader(header, what);
  const dtype = DESCR_ALIASES[descr];
  if (dtype === undefined) {
    const bigEndian = descr.startsWith('>');
    fail(
      what,
      `dtype '${descr}' is not supported (supported: ${Object.keys(ITEM_SIZE).join(', ')})`,
      bigEndian
        ? "convert it to little-endian first: numpy.save(FILE, a.astype(a.dtype.newbyteorder('<')))"
        : 'convert it first, e.g. numpy.save(FILE, a.astype(numpy.float32))',
    );
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (fortran && shape.filter((d) => d > 1).length > 1) {
    fail(
      what,
      `the array is stored in Fortran (column-major) order, shape ${shapeLiteral(shape)}`,
      'save it in C order: numpy.save(FILE, numpy.ascontiguousarray(a))',
    );
  }
  const expected = count * ITEM_SIZE[dtype];
  const available = bytes.length - dataStart;
  if (available !== expected) {
    const short = available < expected;
    fail(
      what,
      `shape ${shapeLiteral(shape)} of ${descr} needs ${expected} data bytes, the file has ${available} ` +
        `(${short ? 'truncated' : 'trailing bytes'})`,
      'write the file again with numpy.save',
    );
  }
  return { dtype, shape, data: typedView(dtype, bytes.subarray(dataStart), count) };
}

/** The .npy dtype of a typed array (Uint8Array is `|u1` unless `bool` is asked for). */
export function npyDTypeOf(data: TensorData, bool = false): NpyDType {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof BigInt64Array) return '<i8';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Uint8Array) return bool ? '|b1' : '|u1';
  throw new RlpkdError(
    `.npy: cannot store a ${data.constructor.name} (float32/64, int32/64, uint8, bool only)`,
  );
}

function shapeLiteral(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/** Encodes a tensor as `.npy` bytes (format 1.0, or 2.0 for very long headers), C order, little-endian. */
export function encodeNpy(
  array: { data: TensorData; dims: readonly number[] },
  options: { bool?: boolean } = {},
): Uint8Array {
  const dtype = npyDTypeOf(array.data, options.bool);
  const dims = [...array.dims];
  const count = dims.reduce((a, b) => a * b, 1);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0) || count !== array.data.length) {
    throw new RlpkdError(`.npy: dims [${dims.join(', ')}] do not fit ${array.data.length} values`);
  }
  // Laid out exactly as numpy ≥ 1.23 writes it (room to grow the first axis, aligned to 64 bytes, and
  // a full 64 bytes of padding when already aligned), so files are byte-identical to numpy.save's.
  const dict =
    `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeLiteral(dims)}, }` +
    (dims.length > 0 ? ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(dims[0]).length)) : '');
  let major = 1;
  let prefix = 10;
  let padded = dict.length + 1 + (ALIGN - ((prefix + dict.length + 1) % ALIGN));
  if (padded > 0xffff) {
    major = 2;
    prefix = 12;
    padded = dict.length + 1 + (ALIGN - ((prefix + dict.length + 1) % ALIGN));
  }
  const header = dict + ' '.repeat(padded - dict.length - 1) + '\n';
  const out = new Uint8Array(prefix + padded + array.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, padded, true);
  else view.setUint32(8, padded, true);
  out.set(Buffer.from(header, 'latin1'), prefix);
  const src = new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  if (dtype === '|b1') {
    for (let i = 0; i < src.length; i++) out[prefix + padded + i] = src[i] ? 1 : 0;
  } else out.set(src, prefix + padded);
  return out;
}

/** Reads a `.npy` file; errors name the file (and say how to fix it in NumPy). */
export function readNpy(file: string, what = 'array file'): NpyArray {
  return parseNpy(readInputFile(file, what), `${what} '${file}'`);
}

/** Writes a tensor as a `.npy` file through a temporary sibling and a rename. */
export function writeNpy(
  file: string,
  array: { data: TensorData; dims: readonly number[] },
  options: { bool?: boolean } = {},
): void {
  writeFileAtomic(file, [encodeNpy(array, options)]);
}
