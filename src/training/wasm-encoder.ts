/**
 * A minimal WebAssembly binary encoder (core spec 2.0 with 128-bit SIMD): just enough to emit small
 * numeric kernels from TypeScript without a toolchain or an npm dependency. It writes LEB128 integers,
 * the type/import/function/export/code sections, and the handful of instructions the kernels use.
 */
import { RlpkdError } from '../errors';

/** Value types by their binary encoding. */
export const ValType = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
/** One of the value types a parameter or local can have. */
export type ValType = (typeof ValType)[keyof typeof ValType];

/** Unsigned LEB128 encoding of a non-negative integer below 2^32 (indices, sizes, alignments). */
export function uleb128(value: number): number[] {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RlpkdError(`wasm encoder: uleb128 needs an integer in [0, 2^32), got ${value}`);
  }
  const out: number[] = [];
  let v = value;
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 encoding of an integer in the int32 range (i32.const immediates). */
export function sleb128(value: number): number[] {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new RlpkdError(`wasm encoder: sleb128 needs an int32, got ${value}`);
  }
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7; // arithmetic shift keeps the sign
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/** A name as the binary format stores it: byte length, then its bytes (ASCII only: UTF-8 is then the same). */
export function encodeName(name: string): number[] {
  const bytes = [...name].map((c) => c.charCodeAt(0));
  if (bytes.some((b) => b > 0x7f)) throw new RlpkdError(`wasm encoder: name '${name}' is not ASCII`);
  return [...uleb128(bytes.length), ...bytes];
}

/** A vector: element count, then the concatenated encoded elements. */
function encodeVec(items: readonly (readonly number[])[]): number[] {
  return [...uleb128(items.length), ...items.flat()];
}

/** A section: id byte, payload size, payload. */
function encodeSection(id: number, payload: readonly number[]): number[] {
  return [id, ...uleb128(payload.length), ...payload];
}

/** Single-byte opcodes of the core instructions the emitter offers. */
const OP = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  f32Load: 0x2a,
  f32Store: 0x38,
  i32Const: 0x41,
  f32Const: 0x43,
  i32Eqz: 0x45,
  i32LtU: 0x49,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Shl: 0x74,
  f32Sqrt: 0x91,
  f32Add: 0x92,
  f32Sub: 0x93,
  f32Mul: 0x94,
  f32Div: 0x95,
} as const;

/** The 0xfd-prefixed SIMD instructions the emitter offers (sub-opcodes, LEB128-encoded after the prefix). */
const SIMD = {
  v128Load: 0x00,
  v128Store: 0x0b,
  f32x4Splat: 0x13,
  f32x4Sqrt: 0xe3,
  f32x4Add: 0xe4,
  f32x4Sub: 0xe5,
  f32x4Mul: 0xe6,
  f32x4Div: 0xe7,
} as const;
const SIMD_PREFIX = 0xfd;
const BLOCK_TYPE_EMPTY = 0x40;

/** Arithmetic shared by the scalar f32 and the f32x4 lanes forms. */
export type FloatBinaryOp = 'add' | 'sub' | 'mul' | 'div';

/**
 * Emits one function's body: declare locals with `local`, then append instructions in order; `encode`
 * closes the expression. Parameters occupy local indices 0..params.length-1.
 */
export class FunctionBody {
  private readonly code: number[] = [];
  private readonly locals: ValType[] = [];
  private depth = 0;

  constructor(readonly params: readonly ValType[]) {}

  /** Declares a local of `type` and returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  localGet(index: number): this {
    return this.emit(OP.localGet, ...uleb128(index));
  }

  localSet(index: number): this {
    return this.emit(OP.localSet, ...uleb128(index));
  }

  localTee(index: number): this {
    return this.emit(OP.localTee, ...uleb128(index));
  }

  i32Const(value: number): this {
    return this.emit(OP.i32Const, ...sleb128(value));
  }

  /** f32.const: the value rounded to float32, as 4 little-endian IEEE 754 bytes. */
  f32Const(value: number): this {
    const bytes = new Uint8Array(Float32Array.of(value).buffer);
    return this.emit(OP.f32Const, ...bytes);
  }

  i32Add(): this {
    return this.emit(OP.i32Add);
  }

  i32And(): this {
    return this.emit(OP.i32And);
  }

  i32Shl(): this {
    return this.emit(OP.i32Shl);
  }

  i32Eqz(): this {
    return this.emit(OP.i32Eqz);
  }

  i32LtU(): this {
    return this.emit(OP.i32LtU);
  }

  i32GeU(): this {
    return this.emit(OP.i32GeU);
  }

  /** f32.load from the i32 address on the stack plus `offset` (4-byte alignment hint). */
  f32Load(offset = 0): this {
    return this.emit(OP.f32Load, ...uleb128(2), ...uleb128(offset));
  }

  /** f32.store of [address, value] (4-byte alignment hint). */
  f32Store(offset = 0): this {
    return this.emit(OP.f32Store, ...uleb128(2), ...uleb128(offset));
  }

  f32(op: FloatBinaryOp | 'sqrt'): this {
    const code = {
      add: OP.f32Add,
      sub: OP.f32Sub,
      mul: OP.f32Mul,
      div: OP.f32Div,
      sqrt: OP.f32Sqrt,
    }[op];
    return this.emit(code);
  }

  /** v128.load from the i32 address on the stack plus `offset` (16-byte alignment hint; never traps). */
  v128Load(offset = 0): this {
    return this.simd(SIMD.v128Load, ...uleb128(4), ...uleb128(offset));
  }

  /** v128.store of [address, value] (16-byte alignment hint). */
  v128Store(offset = 0): this {
    return this.simd(SIMD.v128Store, ...uleb128(4), ...uleb128(offset));
  }

  /** Broadcasts the f32 on the stack to four lanes. */
  f32x4Splat(): this {
    return this.simd(SIMD.f32x4Splat);
  }

  f32x4(op: FloatBinaryOp | 'sqrt'): this {
    const code = {
      add: SIMD.f32x4Add,
      sub: SIMD.f32x4Sub,
      mul: SIMD.f32x4Mul,
      div: SIMD.f32x4Div,
      sqrt: SIMD.f32x4Sqrt,
    }[op];
    return this.simd(code);
  }

  /** Opens a block (a `br` to it jumps past its end). */
  block(): this {
    this.depth++;
    return this.emit(OP.block, BLOCK_TYPE_EMPTY);
  }

  /** Opens a loop (a `br` to it jumps back to its start). */
  loop(): this {
    this.depth++;
    return this.emit(OP.loop, BLOCK_TYPE_EMPTY);
  }

  /** Closes the innermost block or loop. */
  end(): this {
    if (this.depth === 0) throw new RlpkdError('wasm encoder: end() without an open block or loop');
    this.depth--;
    return this.emit(OP.end);
  }

  br(label: number): this {
    return this.emit(OP.br, ...uleb128(label));
  }

  brIf(label: number): this {
    return this.emit(OP.brIf, ...uleb128(label));
  }

  /** The code-section entry: size, run-length encoded locals, instructions, final `end`. */
  encode(): number[] {
    if (this.depth !== 0) throw new RlpkdError(`wasm encoder: ${this.depth} block(s) left open`);
    const groups: number[][] = [];
    for (let i = 0; i < this.locals.length;) {
      let j = i;
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++;
      groups.push([...uleb128(j - i), this.locals[i]]);
      i = j;
    }
    const body = [...encodeVec(groups), ...this.code, OP.end];
    return [...uleb128(body.length), ...body];
  }

  private simd(sub: number, ...immediates: number[]): this {
    return this.emit(SIMD_PREFIX, ...uleb128(sub), ...immediates);
  }

  private emit(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }
}

/** An exported function of a module being encoded. */
export interface WasmFunction {
  name: string;
  results: readonly ValType[];
  body: FunctionBody;
}

/** What `encodeModule` writes: an optional imported memory and exported functions, in index order. */
export interface WasmModuleSpec {
  /** Imports a memory as `module`.`name` with at least `minPages` 64 KiB pages and no declared maximum. */
  memoryImport?: { module: string; name: string; minPages: number };
  functions: readonly WasmFunction[];
}

/** The bytes of a module: header, then the type, import, function, export and code sections. */
export function encodeModule(spec: WasmModuleSpec): Uint8Array {
  const types: number[][] = [];
  const typeKeys = new Map<string, number>();
  const typeIndex = spec.functions.map((fn) => {
    const encoded = [
      0x60,
      ...encodeVec(fn.body.params.map((t) => [t])),
      ...encodeVec(fn.results.map((t) => [t])),
    ];
    const key = encoded.join(',');
    let index = typeKeys.get(key);
    if (index === undefined) {
      index = types.length;
      types.push(encoded);
      typeKeys.set(key, index);
    }
    return index;
  });
  const names = new Set<string>();
  for (const fn of spec.functions) {
    if (names.has(fn.name)) throw new RlpkdError(`wasm encoder: duplicate export '${fn.name}'`);
    names.add(fn.name);
  }
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]; // "\0asm", version 1
  out.push(...encodeSection(1, encodeVec(types)));
  if (spec.memoryImport) {
    const { module, name, minPages } = spec.memoryImport;
    const memoryType = [0x02, 0x00, ...uleb128(minPages)]; // import kind memory; limits without maximum
    out.push(...encodeSection(2, encodeVec([[...encodeName(module), ...encodeName(name), ...memoryType]])));
  }
  out.push(...encodeSection(3, encodeVec(typeIndex.map((i) => uleb128(i)))));
  out.push(
    ...encodeSection(
      7,
      encodeVec(spec.functions.map((fn, i) => [...encodeName(fn.name), 0x00, ...uleb128(i)])),
    ),
  );
  out.push(...encodeSection(10, encodeVec(spec.functions.map((fn) => fn.body.encode()))));
  return Uint8Array.from(out);
}
