import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  FILE_VERSION,
  TensorBoardWriter,
  crc32c,
  decodeEvents,
  decodeRecords,
  encodeRecord,
  histogram,
  maskCrc,
  maskedCrc32c,
  readEventFile,
  unmaskCrc,
} from '../../src/logging';
import { Rng } from '../../src/util/rng';

/** Independent reference: bit-at-a-time CRC-32C straight from the polynomial definition (no table). */
function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Independent reference for TensorFlow's mask, written with BigInt arithmetic mod 2^32. */
function maskBig(crc: number): number {
  const c = BigInt(crc);
  const rot = ((c >> 15n) | (c << 17n)) & 0xffffffffn;
  return Number((rot + 0xa282ead8n) & 0xffffffffn);
}

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-tb-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('CRC-32C', () => {
  it('matches the published test vectors (notes/algorithms.md section 7)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(maskedCrc32c(Buffer.from('123456789'))).toBe(0xc78ab0e5);
    expect(crc32c(new Uint8Array(8))).toBe(0x8c28b28a);
    expect(maskedCrc32c(new Uint8Array(8))).toBe(0x07980329);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(maskedCrc32c(new Uint8Array(0))).toBe(0xa282ead8);
  });

  it('agrees with a bitwise implementation on seeded random buffers, also when chained', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 50; trial++) {
      const bytes = Uint8Array.from({ length: rng.int(300) }, () => rng.int(256));
      const c = crc32c(bytes);
      expect(c).toBe(crc32cBitwise(bytes));
      expect(maskCrc(c)).toBe(maskBig(c));
      expect(unmaskCrc(maskCrc(c))).toBe(c);
      const cut = rng.int(bytes.length + 1);
      expect(crc32c(bytes.subarray(cut), crc32c(bytes.subarray(0, cut)))).toBe(c);
    }
  });
});

describe('TFRecord framing', () => {
  it('round-trips records and rejects any flipped byte or truncation', () => {
    const payloads = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello tensorboard')];
    const file = Buffer.concat(payloads.map((p) => encodeRecord(p)));
    expect(decodeRecords(file).map((r) => Buffer.from(r).toString())).toEqual(['a', '', 'hello tensorboard']);
    // header of record 1 starts after record 0 (12 + 1 + 4 bytes)
    const badLen = Buffer.from(file);
    badLen[17] ^= 1;
    expect(() => decodeRecords(badLen, 'x')).toThrow('x: record 1 at byte 17: length CRC mismatch');
    const badData = Buffer.from(file);
    badData[12] ^= 0x20;
    expect(() => decodeRecords(badData, 'x')).toThrow('x: record 0 at byte 0: data CRC mismatch');
    expect(() => decodeRecords(file.subarray(0, file.length - 1), 'x')).toThrow(
      /record 2 at byte 33: truncated record/,
    );
  });
});

/** Reads protobuf wire format without any schema: field number -> list of raw values. */
function wireFields(buf: Uint8Array): Map<number, (number | bigint | Uint8Array)[]> {
  const out = new Map<number, (number | bigint | Uint8Array)[]>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let value: number | bigint | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 1) {
      value = view.getFloat64(i, true);
      i += 8;
    } else if (wire === 5) {
      value = view.getFloat32(i, true);
      i += 4;
    } else if (wire === 2) {
      const len = Number(varint());
      value = buf.subarray(i, i + len);
      i += len;
    } else throw new Error(`unexpected wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

/** Splits a file into payloads by hand, checking each CRC with the bitwise reference. */
function framesByHand(bytes: Buffer): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    const len = Number(bytes.readBigUInt64LE(off));
    expect(bytes.readUInt32LE(off + 8)).toBe(maskBig(crc32cBitwise(bytes.subarray(off, off + 8))));
    const data = bytes.subarray(off + 12, off + 12 + len);
    expect(bytes.readUInt32LE(off + 12 + len)).toBe(maskBig(crc32cBitwise(data)));
    frames.push(data);
    off += 16 + len;
  }
  expect(off).toBe(bytes.length);
  return frames;
}

describe('TensorBoardWriter', () => {
  it('writes scalars, an image and a histogram that read back with every CRC verified', async () => {
    let clock = 1_700_000_000;
    const w = new TensorBoardWriter(tmp, { now: () => clock++, filenameSuffix: '.test' });
    expect(path.basename(w.file)).toMatch(/^events\.out\.tfevents\.1700000000\..+\.test$/);
    w.addScalar('loss/p2', 0.1, 1);
    w.addScalars({ 'loss/p3': 0.25, 'reward/mean': -1.5 }, 2);
    const pixels = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 37) % 256);
    await w.addImagePixels('policy/heatmap', pixels, 4, 3, 3, 3);
    w.addHistogram('gradnorm/weights', [0.1, 0.2, 0.3, 0.4], 4, 2);
    w.close();

    const bytes = fs.readFileSync(w.file);
    const events = readEventFile(w.file);
    expect(events).toHaveLength(5);
    expect(events[0]).toEqual({ wallTime: 1_700_000_001, step: 0, fileVersion: FILE_VERSION });
    expect(events[1]!.summary!.value).toEqual([{ tag: 'loss/p2', simpleValue: Math.fround(0.1) }]);
    expect(events[2]!.step).toBe(2);
    expect(events[2]!.summary!.value).toEqual([
      { tag: 'loss/p3', simpleValue: 0.25 },
      { tag: 'reward/mean', simpleValue: -1.5 },
    ]);
    const img = events[3]!.summary!.value[0]!.image!;
    expect([img.width, img.height, img.colorspace]).toEqual([4, 3, 3]);
    const back = await sharp(Buffer.from(img.encodedImageString)).raw().toBuffer();
    expect([...back]).toEqual([...pixels]);
    const h = events[4]!.summary!.value[0]!.histo!;
    expect(h).toMatchObject({ min: 0.1, max: 0.4, num: 4, bucket: [2, 2], bucketLimit: [0.25, 0.4] });
    expect(h.sum).toBeCloseTo(1.0, 12);
    expect(h.sumSquares).toBeCloseTo(0.3, 12);

    // independent check of framing and field numbers (event.proto / summary.proto) without the module's schema
    const frames = framesByHand(bytes);
    expect(frames).toHaveLength(5);
    const first = wireFields(frames[0]!);
    expect(first.get(1)).toEqual([1_700_000_001]); // double wall_time = 1
    expect(Buffer.from(first.get(3)![0] as Uint8Array).toString()).toBe('brain.Event:2'); // string file_version = 3
    const scalar = wireFields(frames[1]!);
    expect(scalar.get(2)).toEqual([1n]); // int64 step = 2
    const summary = wireFields(scalar.get(5)![0] as Uint8Array); // Summary summary = 5
    const value = wireFields(summary.get(1)![0] as Uint8Array); // repeated Value value = 1
    expect(Buffer.from(value.get(1)![0] as Uint8Array).toString()).toBe('loss/p2'); // string tag = 1
    expect(value.get(2)).toEqual([Math.fround(0.1)]); // float simple_value = 2
    const image = wireFields(
      wireFields(wireFields(wireFields(frames[3]!).get(5)![0] as Uint8Array).get(1)![0] as Uint8Array).get(
        4,
      )![0] as Uint8Array,
    );
    expect([image.get(1), image.get(2), image.get(3)]).toEqual([[3n], [4n], [3n]]); // height 1, width 2, colorspace 3
    expect(
      Buffer.from(image.get(4)![0] as Uint8Array)
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG'); // encoded_image_string 4
  });

  it('refuses writes after close and reports a damaged file by record', () => {
    const w = new TensorBoardWriter(tmp, { now: () => 5 });
    w.addScalar('a', 1, 1);
    w.close();
    expect(() => w.addScalar('a', 2, 2)).toThrow(/already closed/);
    const bytes = fs.readFileSync(w.file);
    bytes[bytes.length - 6] ^= 0xff;
    expect(() => decodeEvents(bytes, 'f')).toThrow('f: record 1 at byte');
  });

  it('histogram buckets count every finite value once', () => {
    const rng = new Rng(3);
    const values = Array.from({ length: 1000 }, () => rng.normal());
    const h = histogram([...values, NaN, Infinity], 30);
    expect(h.num).toBe(1000);
    expect(h.bucket.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(h.bucketLimit[h.bucketLimit.length - 1]).toBe(Math.max(...values));
    expect(histogram([2, 2, 2], 10)).toMatchObject({ min: 2, max: 2, bucket: [3], bucketLimit: [2] });
  });
});
