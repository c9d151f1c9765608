/**
 * Loading and saving ONNX models on disk, including ONNX external data (weights in a side file, needed
 * past protobuf's 2 GB limit and convenient for big teachers). Saves are atomic: temp file, then rename.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputFileError, RlpkdError } from '../errors';
import { decodeModel, encodeModel } from './codec';
import { encodeModelChunks } from './model-chunks';
import { shapeSize, bytesPerElement } from './tensor-data';
import { DataType, type ExternalDataRef, type OnnxModel, type OnnxTensor } from './types';

const FLOAT_TYPES = new Set<DataType>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

/** Reads an ONNX model from a file; external data files are resolved relative to the model's folder. */
export function loadModel(file: string): OnnxModel {
  const bytes = readInputFile(file, 'ONNX model');
  const dir = path.dirname(path.resolve(file));
  const cache = new Map<string, Buffer>();
  return decodeModel(bytes, `'${file}'`, (ref, tensorName) => {
    if (path.isAbsolute(ref.location) || ref.location.split(/[\\/]/).includes('..')) {
      throw new InputFileError(
        `'${file}': tensor '${tensorName}' points outside the model folder ('${ref.location}')`,
        {
          hint: 'ONNX external data locations must be relative paths inside the model folder',
        },
      );
    }
    const dataPath = path.join(dir, ref.location);
    let data = cache.get(dataPath);
    if (!data) {
      data = readInputFile(dataPath, `external data of '${file}'`);
      cache.set(dataPath, data);
    }
    const length = ref.length >= 0 ? ref.length : data.length - ref.offset;
    if (ref.offset + length > data.length) {
      throw new InputFileError(
        `'${dataPath}' is too short for tensor '${tensorName}' (needs bytes ${ref.offset}..${ref.offset + length}, file has ${data.length})`,
        { hint: 'the external data file is truncated or belongs to another model; re-export the model' },
      );
    }
    return data.subarray(ref.offset, ref.offset + length);
  });
}

/** Decodes a model held in memory (no external data possible). */
export function loadModelFromBytes(bytes: Uint8Array, what = 'model bytes'): OnnxModel {
  return decodeModel(bytes, what);
}

/** Serializes a model to bytes (all tensors inline). */
export function modelToBytes(model: OnnxModel): Uint8Array {
  return encodeModel(model);
}

export interface SaveModelOptions {
  /**
   * Store float initializers of at least this many bytes in a side file `<model file name>.data` (ONNX external
   * data, 4096-byte aligned offsets). Undefined keeps everything inline.
   */
  externalDataThreshold?: number;
}

/** Writes a model atomically. Returns the files written (model first, then the data file if any). */
export function saveModel(model: OnnxModel, file: string, options: SaveModelOptions = {}): string[] {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const dataName = `${path.basename(file)}.data`;
  const dataPath = path.join(dir, dataName);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const threshold = options.externalDataThreshold;
  // Chunks, not one buffer: large tensors are written from views of the model's arrays (model-chunks.ts).
  const modelChunks = encodeModelChunks(
    model,
    threshold === undefined
      ? {}
      : {
          writeExternal: (tensor: OnnxTensor, raw: Uint8Array): ExternalDataRef | undefined => {
            // Integer tensors (shapes, axes) stay inline: onnxruntime's shape inference cannot read them outside.
            if (raw.byteLength < threshold || !FLOAT_TYPES.has(tensor.dataType)) return undefined;
            const aligned = Math.ceil(offset / 4096) * 4096;
            if (aligned > offset) chunks.push(new Uint8Array(aligned - offset));
            chunks.push(raw);
            offset = aligned + raw.byteLength;
            return { location: dataName, offset: aligned, length: raw.byteLength };
          },
        },
  );
  const written = [file];
  if (chunks.length > 0) {
    writeFileAtomic(dataPath, chunks);
    written.push(dataPath);
  } else if (fs.existsSync(dataPath) && threshold !== undefined) {
    fs.rmSync(dataPath); // a stale side file from an earlier save would mislead readers
  }
  writeFileAtomic(file, modelChunks);
  return written;
}

/** Writes chunks to `file` through a temporary sibling and a rename, so readers never see half a file. */
export function writeFileAtomic(file: string, chunks: readonly Uint8Array[] | string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      if (typeof chunks === 'string') fs.writeSync(fd, chunks);
      else for (const c of chunks) fs.writeSync(fd, c);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new RlpkdError(`could not write '${file}': ${(err as Error).message}`, {
      hint: 'check that the folder is writable and the disk is not full',
      cause: err,
    });
  }
}

/** Reads a whole input file, turning the usual failures into one clear message. */
export function readInputFile(file: string, what: string): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new InputFileError(`${what} '${file}' does not exist`, {
      hint: 'check the path (relative paths start at the current folder)',
    });
  }
  if (stat.isDirectory()) {
    throw new InputFileError(`${what} '${file}' is a folder, not a file`, {
      hint: 'pass the path of the file itself',
    });
  }
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new InputFileError(`${what} '${file}' cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** Total bytes of a model's initializers (for reporting). */
export function initializerBytes(model: OnnxModel): number {
  let n = 0;
  for (const t of model.graph.initializers) n += shapeSize(t.dims) * bytesPerElement(t.dataType);
  return n;
}
