/**
 * TFRecord framing: `uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`, all
 * little-endian. The reader verifies both CRCs of every record, so a test can prove a file is well formed.
 */
import { RlpkdError } from '../errors';
import { crc32c, maskedCrc32c, unmaskCrc } from './crc32c';

/** One framed record, ready to append to a file. */
export function encodeRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** Splits a TFRecord file into payloads, checking every length and data CRC; `what` names the file in errors. */
export function decodeRecords(bytes: Uint8Array, what = 'TFRecord data'): Uint8Array[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let off = 0;
  while (off < buf.length) {
    const index = records.length;
    if (off + 12 > buf.length)
      throw corrupt(what, index, off, `truncated header (${buf.length - off} bytes left)`);
    const lenBytes = buf.subarray(off, off + 8);
    const lenCrc = buf.readUInt32LE(off + 8);
    if (maskedCrc32c(lenBytes) !== lenCrc) {
      throw corrupt(
        what,
        index,
        off,
        `length CRC mismatch (stored ${hex(unmaskCrc(lenCrc))}, computed ${hex(crc32c(lenBytes))})`,
      );
    }
    const len = Number(buf.readBigUInt64LE(off));
    const start = off + 12;
    if (start + len + 4 > buf.length)
      throw corrupt(what, index, off, `truncated record (needs ${len + 4} bytes)`);
    const data = buf.subarray(start, start + len);
    const dataCrc = buf.readUInt32LE(start + len);
    if (maskedCrc32c(data) !== dataCrc) {
      throw corrupt(
        what,
        index,
        off,
        `data CRC mismatch (stored ${hex(unmaskCrc(dataCrc))}, computed ${hex(crc32c(data))})`,
      );
    }
    records.push(new Uint8Array(data));
    off = start + len + 4;
  }
  return records;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function corrupt(what: string, index: number, offset: number, detail: string): RlpkdError {
  return new RlpkdError(`${what}: record ${index} at byte ${offset}: ${detail}`, {
    hint: 'the file is damaged or was cut off while being written',
  });
}
