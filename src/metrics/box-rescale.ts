/**
 * Boxes back to the original image's coordinates. The data loader resizes every image to the model's input
 * size with `fit: 'fill'` (each axis scaled on its own), so a box predicted on the input maps back by the two
 * scale factors. IoU does not change under that map, but areas do, and COCO's area ranges (APs/APm/APl) are
 * defined in original pixels: evaluate there.
 */
import { RlpkdError } from '../errors';
import type { XywhBox } from './box-iou';

/** A width × height in pixels. */
export interface ImageSize {
  readonly width: number;
  readonly height: number;
}

/** Maps `[x, y, w, h]` on an `input`-sized (resized) image to the `original` image it was resized from. */
export function boxToOriginal(box: XywhBox, input: ImageSize, original: ImageSize): XywhBox {
  for (const [what, s] of [
    ['input', input],
    ['original', original],
  ] as const) {
    if (!(s.width > 0 && s.height > 0)) {
      throw new RlpkdError(`boxToOriginal: ${what} size ${s.width}×${s.height} is not positive`, {
        hint: 'pass the model input size and the decoded image size (DecodedImage.width/height)',
      });
    }
  }
  const sx = original.width / input.width;
  const sy = original.height / input.height;
  return [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy];
}
