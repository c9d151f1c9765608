/**
 * .npy reading and writing against hand-built byte strings (the format spec: magic, version, little-endian
 * header length, a Python-literal dict padded to 64 bytes, raw C-order data), and, when a Python with
 * NumPy is installed, against files numpy.save writes and numpy.load reads.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputFileError } from '../../src/errors';
import { encodeNpy, parseNpy, readNpy, writeNpy, type NpyArray } from '../../src/io/npy';
import { optionalReference } from '../helpers/optional-reference';

/** A .npy file assembled by hand: header dict padded with spaces to `total` header bytes. */
function handBuilt(dict: string, data: Uint8Array, version: 1 | 2 = 1, pad = 64): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  let len = dict.length + 1;
  while ((prefix + len) % pad !== 0) len++;
  const head = Buffer.alloc(prefix + len, 0x20);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = version;
  head[7] = 0;
  if (version === 1) head.writeUInt16LE(len, 8);
  else head.writeUInt32LE(len, 8);
  head.write(dict, prefix, 'latin1');
  head[prefix + len - 1] = 0x0a;
  return Buffer.concat([head, data]);
}

const f32 = (...v: number[]): Uint8Array => new Uint8Array(Float32Array.from(v).buffer);

describe('parseNpy on hand-built files', () => {
  it('reads a v1.0 float32 matrix in C order', () => {
    const bytes = handBuilt(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
      f32(1, 2, 3, 4, 5, 6),
    );
    const a = parseNpy(bytes);
    expect(a.dtype).toBe('<f4');
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads a v2.0 header (4-byte length) and a data section that is not aligned', () => {
    // Padding to 16 instead of 64 puts the float64 data at an offset that is not a multiple of 8.
    const data = new Uint8Array(Float64Array.of(-1.5, 2.25).buffer);
    const bytes = handBuilt("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data, 2, 4);
    const sliced = new Uint8Array(bytes.length + 3);
    sliced.set(bytes, 3);
    const a = parseNpy(sliced.subarray(3));
    expect(a.dtype).toBe('<f8');
    expect(Array.from(a.data as Float64Array)).toEqual([-1.5, 2.25]);
  });

  it('reads int64, int32, uint8 and bool arrays, a scalar and an empty array', () => {
    const i8 = parseNpy(
      handBuilt(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
        new Uint8Array(BigInt64Array.of(-2n, 0n, 2n ** 40n).buffer),
      ),
    );
    expect(Array.from(i8.data as BigInt64Array)).toEqual([-2n, 0n, 2n ** 40n]);
    const i4 = parseNpy(
      handBuilt(
        "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }",
        new Uint8Array(Int32Array.of(-7, 9).buffer),
      ),
    );
    expect([i4.dtype, i4.shape, Array.from(i4.data as Int32Array)]).toEqual(['<i4', [1, 2], [-7, 9]]);
    const u1 = parseNpy(
      handBuilt("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", Uint8Array.of(0, 255)),
    );
    expect(Array.from(u1.data as Uint8Array)).toEqual([0, 255]);
    const b1 = parseNpy(
      handBuilt("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", Uint8Array.of(1, 0, 1)),
    );
    expect([b1.dtype, Array.from(b1.data as Uint8Array)]).toEqual(['|b1', [1, 0, 1]]);
    const scalar = parseNpy(handBuilt("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f32(7)));
    expect([scalar.shape, Array.from(scalar.data as Float32Array)]).toEqual([[], [7]]);
    const empty = parseNpy(handBuilt("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", f32()));
    expect([empty.shape, empty.data.length]).toEqual([[0, 4], 0]);
  });

  it('accepts keys in any order and double quotes', () => {
    const a = parseNpy(handBuilt('{"shape": (2,), "fortran_order": False, "descr": "<f4"}', f32(1, 2)));
    expect(a.shape).toEqual([2]);
  });

  it('rejects Fortran order for a matrix, with a hint, but reads a Fortran-flagged vector', () => {
    const bytes = handBuilt(
      "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
      f32(1, 2, 3, 4, 5, 6),
    );
    expect(() => parseNpy(bytes, "target 'p2'")).toThrow(/target 'p2'.*Fortran \(column-major\) order/);
    try {
      parseNpy(bytes);
    } catch (e) {
      expect(e).toBeInstanceOf(InputFileError);
      expect((e as InputFileError).hint).toContain('ascontiguousarray');
    }
    const vector = handBuilt("{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", f32(1, 2, 3));
    expect(Array.from(parseNpy(vector).data as Float32Array)).toEqual([1, 2, 3]);
  });

  it('rejects bad magic, unknown versions, big-endian and unsupported dtypes, and wrong data lengths', () => {
    expect(() => parseNpy(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11))).toThrow(
      /not a NumPy \.npy file/,
    );
    const v9 = handBuilt("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f32(1));
    v9[6] = 9;
    expect(() => parseNpy(v9)).toThrow(/format version 9\.0/);
    expect(() =>
      parseNpy(handBuilt("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", f32(1))),
    ).toThrow(/dtype '>f4' is not supported/);
    expect(() =>
      parseNpy(handBuilt("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", Uint8Array.of(0, 0))),
    ).toThrow(/dtype '<f2'/);
    expect(() =>
      parseNpy(handBuilt("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f32(1, 2))),
    ).toThrow(/needs 12 data bytes, the file has 8/);
    expect(() =>
      parseNpy(handBuilt("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f32(1, 2))),
    ).toThrow(/trailing bytes/);
    expect(() => parseNpy(handBuilt("{'descr': '<f4', 'shape': (1,), }", f32(1)))).toThrow(/lacks/);
  });
});

describe('encodeNpy', () => {
  it('writes the bytes numpy 1.24 writes for a float32 2×3 array', () => {
    // numpy.save(f, numpy.arange(6, dtype='<f4').reshape(2, 3)): header length 118, data at byte 128.
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    const header = `${dict}${' '.repeat(20)}`;
    const expected = Buffer.concat([
      Buffer.from('\x93NUMPY\x01\x00\x76\x00', 'latin1'),
      Buffer.from(`${header}${' '.repeat(118 - header.length - 1)}\n`, 'latin1'),
      Buffer.from(f32(0, 1, 2, 3, 4, 5)),
    ]);
    const got = encodeNpy({ data: Float32Array.of(0, 1, 2, 3, 4, 5), dims: [2, 3] });
    expect(Buffer.from(got).equals(expected)).toBe(true);
  });

  it('round-trips every dtype, scalars and empty arrays; aligns data to 64 bytes', () => {
    const cases: { a: NpyArray; bool?: boolean }[] = [
      { a: { dtype: '<f4', shape: [2, 2], data: Float32Array.of(1.5, -2, 0, 3e-8) } },
      { a: { dtype: '<f8', shape: [], data: Float64Array.of(Math.PI) } },
      { a: { dtype: '<i8', shape: [1, 3], data: BigInt64Array.of(-1n, 0n, 9007199254740993n) } },
      { a: { dtype: '<i4', shape: [0], data: new Int32Array(0) } },
      { a: { dtype: '|u1', shape: [3], data: Uint8Array.of(0, 128, 255) } },
      { a: { dtype: '|b1', shape: [2, 1], data: Uint8Array.of(1, 0) }, bool: true },
    ];
    for (const { a, bool } of cases) {
      const bytes = encodeNpy({ data: a.data, dims: a.shape }, { bool });
      const headerLen = Buffer.from(bytes).readUInt16LE(8);
      expect((10 + headerLen) % 64).toBe(0);
      expect(bytes[10 + headerLen - 1]).toBe(0x0a);
      const back = parseNpy(bytes);
      expect(back.dtype).toBe(a.dtype);
      expect(back.shape).toEqual(a.shape);
      expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(
        Array.from(a.data as ArrayLike<number | bigint>),
      );
    }
  });

  it('writes subarray views (data with a byte offset) correctly', () => {
    const whole = Float32Array.of(9, 9, 1, 2, 9);
    const back = parseNpy(encodeNpy({ data: whole.subarray(2, 4), dims: [2] }));
    expect(Array.from(back.data as Float32Array)).toEqual([1, 2]);
  });

  it('refuses dims that do not fit the data', () => {
    expect(() => encodeNpy({ data: new Float32Array(5), dims: [2, 3] })).toThrow(/do not fit 5 values/);
  });
});

describe('readNpy / writeNpy files', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-npy-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes atomically (no temporary file left) and reads back', () => {
    const file = path.join(dir, 'a.npy');
    writeNpy(file, { data: Float32Array.of(1, 2, 3), dims: [3] });
    expect(fs.readdirSync(dir)).toEqual(['a.npy']);
    expect(Array.from(readNpy(file).data as Float32Array)).toEqual([1, 2, 3]);
  });

  it('names the file in errors', () => {
    expect(() => readNpy(path.join(dir, 'missing.npy'), "input 'images'")).toThrow(
      /input 'images' '.*missing\.npy' does not exist/,
    );
    const bad = path.join(dir, 'bad.npy');
    fs.writeFileSync(bad, 'hello world');
    expect(() => readNpy(bad)).toThrow(/bad\.npy'.*not a NumPy/);
  });
});

/** A Python that imports numpy (the torch Python has it; any other will do). */
function numpyPython(): string | null {
  for (const py of [process.env.RLPKD_PYTHON, 'python3', '/usr/bin/python3']) {
    if (py && spawnSync(py, ['-c', 'import numpy'], { stdio: 'ignore', timeout: 60_000 }).status === 0)
      return py;
  }
  return null;
}

const python = optionalReference(
  'numpy interoperability checks',
  numpyPython(),
  'install python3-numpy (python3-torch brings it), or set RLPKD_PYTHON',
);
(python ? describe : describe.skip)('interoperability with numpy', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-npy-numpy-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const py = (code: string): string => {
    const r = spawnSync(python!, ['-c', code], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
    return r.stdout;
  };

  it('reads what numpy.save writes, and numpy.save writes the same bytes as encodeNpy', () => {
    py(`
import numpy as np
np.save('f4.npy', (np.arange(24, dtype=np.float32) * 0.5 - 3).reshape(2, 3, 4))
np.save('f8.npy', np.array([[1e-300, -2.5]]))
np.save('i8.npy', np.array([-(2**62), 5], dtype=np.int64))
np.save('i4.npy', np.array([[-3], [4]], dtype=np.int32))
np.save('u1.npy', np.array([0, 7, 255], dtype=np.uint8))
np.save('b1.npy', np.array([True, False, True]))
np.save('scalar.npy', np.float32(2.5))
np.save('fortran.npy', np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
np.save('f2.npy', np.zeros(2, dtype=np.float16))
`);
    const f4 = readNpy(path.join(dir, 'f4.npy'));
    expect(f4.shape).toEqual([2, 3, 4]);
    expect(Array.from(f4.data as Float32Array)).toEqual(Array.from({ length: 24 }, (_, i) => i * 0.5 - 3));
    expect(Array.from(readNpy(path.join(dir, 'f8.npy')).data as Float64Array)).toEqual([1e-300, -2.5]);
    expect(Array.from(readNpy(path.join(dir, 'i8.npy')).data as BigInt64Array)).toEqual([-(2n ** 62n), 5n]);
    expect(readNpy(path.join(dir, 'i4.npy')).shape).toEqual([2, 1]);
    expect(Array.from(readNpy(path.join(dir, 'u1.npy')).data as Uint8Array)).toEqual([0, 7, 255]);
    const b1 = readNpy(path.join(dir, 'b1.npy'));
    expect([b1.dtype, Array.from(b1.data as Uint8Array)]).toEqual(['|b1', [1, 0, 1]]);
    expect(readNpy(path.join(dir, 'scalar.npy')).shape).toEqual([]);
    expect(() => readNpy(path.join(dir, 'fortran.npy'))).toThrow(/Fortran/);
    expect(() => readNpy(path.join(dir, 'f2.npy'))).toThrow(/'<f2' is not supported/);
    for (const name of ['f4', 'f8', 'i8', 'i4', 'u1', 'b1', 'scalar']) {
      const a = readNpy(path.join(dir, `${name}.npy`));
      const ours = encodeNpy({ data: a.data, dims: a.shape }, { bool: a.dtype === '|b1' });
      expect(Buffer.from(ours).equals(fs.readFileSync(path.join(dir, `${name}.npy`)))).toBe(true);
    }
  });

  it('numpy.load reads what writeNpy writes', () => {
    writeNpy(path.join(dir, 'ours_f4.npy'), { data: Float32Array.of(1, -2, 3.5, 4, 5, 6), dims: [3, 2] });
    writeNpy(path.join(dir, 'ours_i8.npy'), { data: BigInt64Array.of(-5n, 2n ** 50n), dims: [2] });
    writeNpy(path.join(dir, 'ours_b1.npy'), { data: Uint8Array.of(0, 1), dims: [2] }, { bool: true });
    const out = py(`
import numpy as np
a = np.load('ours_f4.npy'); b = np.load('ours_i8.npy'); c = np.load('ours_b1.npy')
print(a.dtype, a.shape, a.tolist()); print(b.dtype, b.tolist()); print(c.dtype, c.tolist())
`);
    expect(out.trim().split('\n')).toEqual([
      'float32 (3, 2) [[1.0, -2.0], [3.5, 4.0], [5.0, 6.0]]',
      `int64 [-5, ${2 ** 50}]`,
      'bool [False, True]',
    ]);
  });
});
