/**
 * TensorBoard event files written without TensorFlow: Event protobufs (protobufjs reflection) in TFRecord
 * framing. Scalars use the legacy `simple_value`, images `Summary.Image` with PNG bytes, histograms
 * `HistogramProto`; TensorBoard reads all three. The reader decodes a file back with every CRC verified.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { RlpkdError } from '../errors';
import { EventType } from './tfevents-schema';
import { decodeRecords, encodeRecord } from './tfrecord';

/** The version string TensorBoard expects in the first event of a file. */
export const FILE_VERSION = 'brain.Event:2';

/** Summary.Image colorspace codes (1 grayscale, 3 RGB, 4 RGBA). */
export type ImageChannels = 1 | 3 | 4;

/** An encoded image for a TensorBoard image summary. */
export interface TbImage {
  png: Uint8Array;
  width: number;
  height: number;
  channels: ImageChannels;
}

/** One value of a decoded summary. */
export interface DecodedValue {
  tag: string;
  simpleValue?: number;
  image?: { height: number; width: number; colorspace: number; encodedImageString: Uint8Array };
  histo?: {
    min: number;
    max: number;
    num: number;
    sum: number;
    sumSquares: number;
    bucketLimit: number[];
    bucket: number[];
  };
}

/** One decoded event. */
export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  summary?: { value: DecodedValue[] };
}

/** Options of a TensorBoardWriter. */
export interface TensorBoardWriterOptions {
  /** Appended to the file name (TensorBoard only requires "tfevents" in it). */
  filenameSuffix?: string;
  /** Clock in seconds since the epoch (tests pass a fixed one). */
  now?: () => number;
}

/** Appends events to `events.out.tfevents.<seconds>.<host>[suffix]` in a log folder. */
export class TensorBoardWriter {
  readonly file: string;
  private fd: number | undefined;
  private readonly now: () => number;

  constructor(logDir: string, options: TensorBoardWriterOptions = {}) {
    this.now = options.now ?? (() => Date.now() / 1000);
    fs.mkdirSync(logDir, { recursive: true });
    const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'host';
    this.file = path.join(
      logDir,
      `events.out.tfevents.${Math.floor(this.now())}.${host}${options.filenameSuffix ?? ''}`,
    );
    try {
      this.fd = fs.openSync(this.file, 'a');
    } catch (err) {
      throw new RlpkdError(`cannot create TensorBoard file '${this.file}': ${(err as Error).message}`, {
        hint: 'check that the run directory is writable',
        cause: err,
      });
    }
    this.writeEvent({ wallTime: this.now(), step: 0, fileVersion: FILE_VERSION });
  }

  /** Logs one scalar; non-finite values are written as they are (TensorBoard shows NaN/Inf). */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    this.addScalars({ [tag]: value }, step, wallTime);
  }

  /** Logs several scalars at one step in a single event. */
  addScalars(values: Readonly<Record<string, number>>, step: number, wallTime?: number): void {
    const value = Object.entries(values).map(([tag, v]) => ({ tag, simpleValue: v }));
    if (value.length === 0) return;
    this.writeEvent({ wallTime: wallTime ?? this.now(), step, summary: { value } });
  }

  /** Logs an already PNG-encoded image. */
  addImage(tag: string, image: TbImage, step: number, wallTime?: number): void {
    const img = {
      height: image.height,
      width: image.width,
      colorspace: image.channels,
      encodedImageString: image.png,
    };
    this.writeEvent({ wallTime: wallTime ?? this.now(), step, summary: { value: [{ tag, image: img }] } });
  }

  /** Encodes 8-bit interleaved pixels (HWC) as PNG with sharp and logs them. */
  async addImagePixels(
    tag: string,
    pixels: Uint8Array,
    width: number,
    height: number,
    channels: ImageChannels,
    step: number,
  ): Promise<void> {
    this.addImage(tag, await encodePng(pixels, width, height, channels), step);
  }

  /** Logs a histogram of `values` with `bins` equal-width buckets. */
  addHistogram(tag: string, values: ArrayLike<number>, step: number, bins = 30): void {
    this.writeEvent({
      wallTime: this.now(),
      step,
      summary: { value: [{ tag, histo: histogram(values, bins) }] },
    });
  }

  /** Forces written events to disk. */
  flush(): void {
    if (this.fd !== undefined) fs.fsyncSync(this.fd);
  }

  /** Flushes and closes the file; later writes throw. */
  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private writeEvent(event: Record<string, unknown>): void {
    if (this.fd === undefined) throw new RlpkdError(`TensorBoard file '${this.file}' is already closed`);
    const err = EventType.verify(event);
    if (err) throw new RlpkdError(`TensorBoard event is malformed: ${err}`);
    fs.writeSync(this.fd, encodeRecord(EventType.encode(EventType.fromObject(event)).finish()));
  }
}

/** PNG-encodes 8-bit interleaved pixels with sharp. */
export async function encodePng(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: ImageChannels,
): Promise<TbImage> {
  if (pixels.length !== width * height * channels) {
    throw new RangeError(
      `encodePng: ${pixels.length} bytes do not make a ${width}x${height}x${channels} image`,
    );
  }
  const png = await sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), {
    raw: { width, height, channels },
  })
    .png()
    .toBuffer();
  return { png: new Uint8Array(png), width, height, channels };
}

/** Equal-width histogram in TensorBoard's HistogramProto layout (bucket_limit = right edges). */
export function histogram(values: ArrayLike<number>, bins: number): NonNullable<DecodedValue['histo']> {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSquares = 0;
  let num = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    sumSquares += v * v;
    num++;
  }
  if (num === 0) return { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [], bucket: [] };
  const width = max > min ? (max - min) / bins : 1;
  const n = max > min ? bins : 1;
  const bucket = new Array<number>(n).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) bucket[Math.min(n - 1, Math.floor((v - min) / width))]!++;
  }
  const bucketLimit = bucket.map((_, i) => (i === n - 1 ? max : min + (i + 1) * width));
  return { min, max, num, sum, sumSquares, bucketLimit, bucket };
}

/** Decodes every event of an event file, verifying the CRCs of every record. */
export function readEventFile(file: string): DecodedEvent[] {
  return decodeEvents(fs.readFileSync(file), `'${file}'`);
}

/** Decodes events from TFRecord bytes. */
export function decodeEvents(bytes: Uint8Array, what = 'event data'): DecodedEvent[] {
  return decodeRecords(bytes, what).map((rec, i) => {
    try {
      const obj = EventType.toObject(EventType.decode(rec), { longs: Number, defaults: false });
      return { wallTime: 0, step: 0, ...obj } as DecodedEvent;
    } catch (err) {
      throw new RlpkdError(`${what}: record ${i} is not a tensorflow.Event: ${(err as Error).message}`);
    }
  });
}
