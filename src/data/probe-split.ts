/**
 * A split that cannot feed a single image must fail before a run starts, not after a phase "completed" 0
 * steps: decode the split's images in order until one succeeds (usually the first), and report the split as
 * unusable when none does.
 */
import { InputFileError } from '../errors';
import { corruptImageError, describeFailure, loadRecordInto } from './batch-loader';
import type { Preprocess } from './image-loader';
import type { Dataset } from './types';

/** What probing a split found. */
export interface SplitProbe {
  /** Images that failed before the first one that decoded (0 for a healthy split). */
  failedBeforeFirst: number;
}

/**
 * Decodes `ds`'s images in order until one succeeds (with its mask, when the split has masks). With
 * `onCorrupt: 'fatal'` the first failure is the error (as it would be in training); otherwise a split where
 * no image decodes is one InputFileError naming the split, its folder and the first failure.
 * @param name what the split is for, in the message (e.g. "training split 'train'")
 */
export async function probeSplit(
  ds: Dataset,
  pre: Preprocess,
  name: string,
  onCorrupt: 'skip' | 'fatal',
): Promise<SplitProbe> {
  const images = new Float32Array(3 * pre.height * pre.width);
  const masks = ds.maskConvention ? new Uint8Array(pre.height * pre.width) : undefined;
  let first: { what: string; reason: string } | undefined;
  for (const [i, rec] of ds.records.entries()) {
    try {
      await loadRecordInto(rec, pre, false, images, 0, masks);
      return { failedBeforeFirst: i };
    } catch (err) {
      const failure = describeFailure(rec, err);
      if (onCorrupt === 'fatal') throw corruptImageError(failure.what, failure.reason);
      first ??= failure;
    }
  }
  throw new InputFileError(
    `none of the ${ds.records.length} images of the ${name} under '${ds.root}' can be decoded ` +
      `(first: ${first?.what ?? 'none'}: ${first?.reason ?? 'the split is empty'})`,
    {
      hint:
        'check data.root and the split keys (data.split, data.val_split); images must be jpg, png, webp, ' +
        'tiff, gif or avif files sharp can decode',
    },
  );
}
