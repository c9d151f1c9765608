import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DataType,
  GraphBuilder,
  encodeModel,
  floatTensor,
  int64Tensor,
  loadModel,
  saveModel,
  type OnnxModel,
} from '../../src/onnx';
import { encodeModelChunks } from '../../src/onnx/model-chunks';
import { createSession, hostFloat } from '../../src/runtime';
import { Rng } from '../../src/util/rng';

/** When > 0, the write call with this number (counted from when it was set) fails like a full disk. */
let mockFailingWrite = 0;
let mockWrites = 0;
jest.mock('node:fs', () => {
  const real = jest.requireActual<typeof import('node:fs')>('node:fs');
  return {
    ...real,
    writeSync: (...args: Parameters<typeof real.writeSync>) => {
      if (mockFailingWrite > 0 && ++mockWrites === mockFailingWrite) throw new Error('disk full (simulated)');
      return (real.writeSync as (...a: unknown[]) => number)(...args);
    },
  };
});

/** y = MatMul(x, w) + b with a w of `rows`×4 (large enough for multi-byte lengths), plus an int64 shape. */
function model(rows: number, seed = 1): OnnxModel {
  const rng = new Rng(seed);
  const b = new GraphBuilder({ name: 'chunks' });
  const x = b.input('x', DataType.FLOAT, [1, rows]);
  const w = b.initializer(
    floatTensor(
      'w',
      [rows, 4],
      Array.from({ length: rows * 4 }, () => rng.normal()),
    ),
  );
  const bias = b.initializer(floatTensor('b', [4], [0.5, -1, 2, 0]));
  const shape = b.initializer(int64Tensor('shape', [2], [-1, 4]));
  const y = b.op('Reshape', [b.op('Add', [b.op('MatMul', [x, w]), bias]), shape]);
  b.output(y, DataType.FLOAT, [1, 4]);
  b.metadata.purpose = 'chunk test';
  return b.build();
}

function concat(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

describe('encodeModelChunks', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-chunks-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['every tensor a view', 0],
    ['the default threshold', undefined],
    ['nothing a view', Number.MAX_SAFE_INTEGER],
  ])('concatenates to exactly encodeModel bytes (%s)', (_what, threshold) => {
    // 600 000 floats = 2.4 MB: raw_data, initializer and graph lengths each take a 4-byte varint.
    for (const m of [model(3), model(150_000)]) {
      const chunks = encodeModelChunks(m, threshold === undefined ? {} : { threshold });
      expect(concat(chunks).equals(Buffer.from(encodeModel(m)))).toBe(true);
    }
  });

  it('leaves large raw data as views of the model arrays (no copy)', () => {
    const m = model(150_000);
    const w = m.graph.initializers.find((t) => t.name === 'w')!.data as Float32Array;
    const chunks = encodeModelChunks(m);
    const views = chunks.filter((c) => c.buffer === w.buffer);
    expect(views).toHaveLength(1);
    expect(views[0].byteLength).toBe(w.byteLength);
    expect(chunks.every((c) => c.buffer === w.buffer || c.byteLength < 1024)).toBe(true);
  });

  it('saveModel writes the same bytes, which our reader and onnxruntime read back exactly', async () => {
    const m = model(150_000, 7);
    const file = path.join(dir, 'm.onnx');
    expect(saveModel(m, file)).toEqual([file]);
    expect(fs.readFileSync(file).equals(Buffer.from(encodeModel(m)))).toBe(true);
    const back = loadModel(file);
    for (const t of m.graph.initializers) {
      expect(back.graph.initializers.find((u) => u.name === t.name)!.data).toEqual(t.data);
    }
    const x = hostFloat(
      [1, 150_000],
      Array.from({ length: 150_000 }, (_, i) => Math.sin(i)),
    );
    const a = await createSession(file);
    const y = (await a.run({ x }))[m.graph.outputs[0].name].data as Float32Array;
    await a.release();
    // float64 reference of x·w + b
    const w = m.graph.initializers.find((t) => t.name === 'w')!.data as Float32Array;
    const ref = [0.5, -1, 2, 0];
    for (let i = 0; i < 150_000; i++)
      for (let j = 0; j < 4; j++) ref[j] += (x.data as Float32Array)[i] * w[i * 4 + j];
    const scale = Math.max(...ref.map(Math.abs));
    for (let j = 0; j < 4; j++) expect(Math.abs(y[j] - ref[j])).toBeLessThan(1e-4 * scale + 1e-3);
  });

  it('saveModel with external data keeps the same model file bytes as before', () => {
    const m = model(150_000, 3);
    const file = path.join(dir, 'ext.onnx');
    saveModel(m, file, { externalDataThreshold: 1024 });
    const expected = encodeModel(m, (t, raw) =>
      raw.byteLength >= 1024 && t.dataType === DataType.FLOAT
        ? { location: 'ext.onnx.data', offset: 0, length: raw.byteLength }
        : undefined,
    );
    expect(fs.readFileSync(file).equals(Buffer.from(expected))).toBe(true);
    expect(loadModel(file).graph.initializers.map((t) => t.data)).toEqual(
      m.graph.initializers.map((t) => t.data),
    );
  });

  it('a save that fails while writing leaves the previous file and no temporary file', () => {
    const file = path.join(dir, 'atomic.onnx');
    const first = model(3, 1);
    saveModel(first, file);
    const before = fs.readFileSync(file);
    mockWrites = 0;
    mockFailingWrite = 3;
    try {
      expect(() => saveModel(model(150_000, 2), file)).toThrow(/could not write .*disk full/);
    } finally {
      mockFailingWrite = 0;
    }
    expect(mockWrites).toBe(3);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('atomic.onnx.tmp'))).toEqual([]);
  });
});
