/**
 * The safetensors codec against hand-computed bytes (header length, JSON header, space padding to 8,
 * little-endian data), round trips of every dtype with alignment checks, and one clear error per kind of
 * damage a reader must refuse.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputFileError, RlpkdError } from '../../src/errors';
import {
  encodeSafetensors,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
  type SafetensorsTensor,
} from '../../src/io/safetensors';

/** A file assembled by hand: u64 LE header length, the header text, the data bytes. */
function handMade(header: string, data: number[]): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const out = Buffer.alloc(8 + h.length + data.length);
  out.writeBigUInt64LE(BigInt(h.length), 0);
  h.copy(out, 8);
  Buffer.from(data).copy(out, 8 + h.length);
  return new Uint8Array(out);
}

describe('safetensors encoding', () => {
  it('writes the bytes the format prescribes (hand-computed)', () => {
    const bytes = encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], data: Float32Array.of(1, -2) }]);
    const json = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes → padded to 56
    expect(json.length).toBe(54);
    expect(Buffer.from(bytes.subarray(0, 8)).readBigUInt64LE(0)).toBe(56n);
    expect(Buffer.from(bytes.subarray(8, 64)).toString('utf8')).toBe(`${json}  `);
    // 1.0f = 0x3f800000, -2.0f = 0xc0000000, little-endian.
    expect([...bytes.subarray(64)]).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    expect(bytes.length).toBe(72);
  });

  it('round-trips every dtype with metadata; data 8-aligned, each tensor aligned, largest items first', () => {
    const tensors: SafetensorsTensor[] = [
      { name: 'u8', dtype: 'U8', shape: [3], data: Uint8Array.of(0, 7, 255) },
      { name: 'f32', dtype: 'F32', shape: [2, 2], data: Float32Array.of(0.5, -1.25, 3e-8, 1e30) },
      { name: 'half', dtype: 'F16', shape: [1], data: Uint16Array.of(0x3c00) },
      { name: 'f64', dtype: 'F64', shape: [1], data: Float64Array.of(Math.PI) },
      { name: 'i64', dtype: 'I64', shape: [2], data: BigInt64Array.of(-3n, 2n ** 40n) },
      { name: 'bf16', dtype: 'BF16', shape: [2], data: Uint16Array.of(0x3f80, 0xbf80) },
      { name: 'i32', dtype: 'I32', shape: [1, 1], data: Int32Array.of(-7) },
      { name: 'bool', dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
      { name: 'i16', dtype: 'I16', shape: [1], data: Int16Array.of(-300) },
      { name: 'i8', dtype: 'I8', shape: [1], data: Int8Array.of(-5) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      { name: 'scalar', dtype: 'F32', shape: [], data: Float32Array.of(2) },
    ];
    const bytes = encodeSafetensors(tensors, { format: 'pt', note: 'ünïcode' });
    const headerLength = Number(Buffer.from(bytes).readBigUInt64LE(0));
    expect((8 + headerLength) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8')) as Record<
      string,
      { dtype: string; data_offsets: [number, number] }
    >;
    const itemSize: Record<string, number> = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2 };
    for (const [name, e] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      expect(e.data_offsets[0] % (itemSize[e.dtype] ?? 1)).toBe(0);
    }
    const parsed = parseSafetensors(bytes);
    expect(parsed.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    // File order: 8-byte items first (in the given order), then 4, 2, 1.
    expect(parsed.tensors.map((t) => t.name)).toEqual([
      'f64',
      'i64',
      'f32',
      'i32',
      'empty',
      'scalar',
      'half',
      'bf16',
      'i16',
      'u8',
      'bool',
      'i8',
    ]);
    const byName = new Map(parsed.tensors.map((t) => [t.name, t]));
    for (const t of tensors) {
      const back = byName.get(t.name)!;
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect(back.data.constructor).toBe(t.data.constructor);
      expect([...back.data]).toEqual([...t.data]);
    }
  });

  it('writes atomically and reads a file back; no metadata means no __metadata__ key', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-st-'));
    const file = path.join(dir, 'w.safetensors');
    writeSafetensors(file, [{ name: 'a.b', dtype: 'F32', shape: [1], data: Float32Array.of(4) }]);
    expect(fs.readdirSync(dir)).toEqual(['w.safetensors']);
    expect(fs.readFileSync(file).toString('utf8')).not.toContain('__metadata__');
    const back = readSafetensors(file);
    expect(back.metadata).toEqual({});
    expect([...back.tensors[0].data]).toEqual([4]);
  });

  it('refuses to write duplicate names, reserved names, wrong array types and shapes that do not fit', () => {
    const t = (over: Partial<SafetensorsTensor>): SafetensorsTensor => ({
      name: 'x',
      dtype: 'F32',
      shape: [2],
      data: new Float32Array(2),
      ...over,
    });
    expect(() => encodeSafetensors([t({}), t({})])).toThrow(/'x' appears twice/);
    expect(() => encodeSafetensors([t({ name: '__metadata__' })])).toThrow(RlpkdError);
    expect(() => encodeSafetensors([t({ data: new Float64Array(2) })])).toThrow(
      /F32 needs a Float32Array, got Float64Array/,
    );
    expect(() => encodeSafetensors([t({ shape: [3] })])).toThrow(/does not fit 2 values/);
  });
});

describe('safetensors decoding refuses damaged files', () => {
  const ok =
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}';
  const data = [0, 0, 128, 63, 1, 2];

  it('reads a hand-made file (unpadded header, keys in any order)', () => {
    const f = parseSafetensors(handMade(ok, data));
    expect(f.tensors.map((t) => [t.name, [...t.data]])).toEqual([
      ['a', [1]],
      ['b', [1, 2]],
    ]);
  });

  it.each([
    ['too short', new Uint8Array(5), /too short/],
    [
      'header length beyond the file',
      handMade('{}', []).map((v, i) => (i === 0 ? 200 : v)),
      /header length 200 exceeds/,
    ],
    ['header not an object', handMade('[1]', []), /does not start with "\{"/],
    ['header not JSON', handMade('{"a":', []), /not JSON/],
    ['unknown dtype', handMade('{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}', [0]), /dtype "F8"/],
    ['bad shape', handMade('{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}', [0]), /invalid shape/],
    [
      'offsets that do not fit the shape',
      handMade('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', [0, 0, 0, 0]),
      /needs 8 bytes, its offsets span 4/,
    ],
    [
      'a hole',
      handMade('{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', [0, 0]),
      /a hole before tensor 'a'/,
    ],
    [
      'overlap',
      handMade(
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
        [0, 0],
      ),
      /'b' overlaps/,
    ],
    ['truncated data', handMade(ok, data.slice(0, 5)), /cover 6 data bytes, the file holds 5 \(truncated\)/],
    ['trailing bytes', handMade(ok, [...data, 9]), /trailing bytes/],
    ['non-string metadata', handMade('{"__metadata__":{"k":1}}', []), /__metadata__.k is not a string/],
  ])('%s', (_what, bytes, message) => {
    expect(() => parseSafetensors(bytes, 'f.safetensors')).toThrow(InputFileError);
    expect(() => parseSafetensors(bytes, 'f.safetensors')).toThrow(message);
  });
});
