/**
 * Segmentation label maps on disk: single-channel PNGs whose pixel values are class indices (8- or 16-bit;
 * an RGB PNG is accepted when its three channels are equal). Palette PNGs are refused: sharp decodes them to
 * colours, not indices. `evaluateSegmentationFolders` pairs `<gt>/<name>.png` with `<pred>/<name>.png`.
 */
import * as fs from 'node:fs';
import fg from 'fast-glob';
import sharp from 'sharp';
import { InputFileError } from '../errors';
import { requireDir, under } from '../data/dataset-files';
import { SegmentationConfusion, type SegmentationOptions, type SegmentationResult } from './segmentation';

/** A decoded label map. */
export interface LabelMap {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Uint16Array;
}

const LABEL_HINT = "save label maps as grayscale PNGs of class indices (PIL mode 'L' or 'I;16')";

/** Decodes a label PNG to class indices. */
export async function readLabelPng(file: string): Promise<LabelMap> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch {
    throw new InputFileError(`label map '${file}' cannot be read`, { hint: 'check the path' });
  }
  const image = sharp(bytes, { failOn: 'error' });
  let meta: sharp.Metadata;
  try {
    meta = await image.metadata();
  } catch (err) {
    throw new InputFileError(`label map '${file}' is not an image: ${(err as Error).message}`, {
      hint: LABEL_HINT,
    });
  }
  if (meta.format !== 'png') {
    throw new InputFileError(`label map '${file}' is ${meta.format ?? 'not a PNG'}`, {
      hint: `${LABEL_HINT}; lossy formats change class indices`,
    });
  }
  if (meta.isPalette) {
    throw new InputFileError(`label map '${file}' is a palette PNG`, {
      hint: `${LABEL_HINT}; the palette's colours cannot be read back as indices here`,
    });
  }
  const colour = (meta.channels ?? 1) - (meta.hasAlpha ? 1 : 0);
  if (meta.depth === 'ushort' && colour === 1) {
    const { data, info } = await image
      .toColourspace('grey16')
      .raw({ depth: 'ushort' })
      .toBuffer({ resolveWithObject: true });
    const values = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
    return { width: info.width, height: info.height, data: values.slice(0, info.width * info.height) };
  }
  if (meta.depth !== 'uchar' && meta.depth !== 'ushort') {
    throw new InputFileError(`label map '${file}' has ${meta.depth ?? 'unknown'} samples`, {
      hint: LABEL_HINT,
    });
  }
  if (colour === 1) {
    const { data, info } = await image.extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data) };
  }
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const out = new Uint8Array(info.width * info.height);
  for (let i = 0; i < out.length; i++) {
    const r = data[3 * i]!;
    if (info.channels !== 3 || data[3 * i + 1] !== r || data[3 * i + 2] !== r) {
      throw new InputFileError(`label map '${file}' is a colour image, not class indices`, {
        hint: LABEL_HINT,
      });
    }
    out[i] = r;
  }
  return { width: info.width, height: info.height, data: out };
}

/** Options of {@link evaluateSegmentationFolders}. */
export interface SegmentationFolders extends SegmentationOptions {
  readonly gtDir: string;
  readonly predDir: string;
  readonly numClasses: number;
}

/** mIoU and friends over every `<gtDir>/**\/*.png` and the same-named prediction. */
export async function evaluateSegmentationFolders(
  options: SegmentationFolders,
): Promise<SegmentationResult & { readonly unmatchedPredictions: number }> {
  const { gtDir, predDir } = options;
  requireDir(gtDir, 'ground-truth folder', 'pass the folder of ground-truth label PNGs with --gt');
  requireDir(predDir, 'prediction folder', 'pass the folder of predicted label PNGs with --pred');
  const list = (dir: string): string[] =>
    fg.sync('**/*.png', { cwd: dir, caseSensitiveMatch: false, onlyFiles: true }).sort();
  const gts = list(gtDir);
  if (gts.length === 0) {
    throw new InputFileError(`ground-truth folder '${gtDir}' has no PNG files`, { hint: LABEL_HINT });
  }
  const preds = new Set(list(predDir));
  const missing = gts.filter((rel) => !preds.has(rel));
  if (missing.length > 0) {
    throw new InputFileError(
      `${missing.length} of ${gts.length} ground-truth masks have no prediction in '${predDir}' ` +
        `(first: '${missing[0]}')`,
      { hint: 'name each prediction like its ground-truth mask (same relative path, .png)' },
    );
  }
  const confusion = new SegmentationConfusion(options.numClasses, options);
  for (const rel of gts) {
    const [label, pred] = await Promise.all([
      readLabelPng(under(gtDir, rel)),
      readLabelPng(under(predDir, rel)),
    ]);
    if (label.width !== pred.width || label.height !== pred.height) {
      throw new InputFileError(
        `prediction '${rel}' is ${pred.width}×${pred.height}, its ground truth ${label.width}×${label.height}`,
        { hint: "predict at the ground truth's resolution (resize logits before the argmax)" },
      );
    }
    confusion.add(pred.data, label.data, rel);
  }
  return { ...confusion.result(), unmatchedPredictions: preds.size - gts.length };
}
